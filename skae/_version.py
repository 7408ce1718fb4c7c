"""The package version (read statically by the build, imported by ``skae``)."""

__version__ = "0.2.0"
