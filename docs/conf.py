"""Sphinx configuration for skae's documentation.

Build with ``make docs`` (``sphinx-build -W -b html docs docs/_build/html``).
The gallery in ``examples/`` is executed on every build; nothing is
downloaded (no intersphinx: CI only reaches package registries).
"""

from datetime import date

import torch
from docutils import nodes

import skae

# The gallery trains small networks, for which extra threads buy little and
# cost a lot on a busy machine: one torch thread keeps each example at a
# steady ~10-20 s of CPU time, on a 2-core CI machine as on a workstation.
torch.set_num_threads(1)

project = "skae"
author = "The skae developers"
copyright = f"{date.today().year}, {author}"
version = release = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sg_execution_times.rst"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery ---------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skae",),
    "reference_url": {"skae": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
}

# -- HTML -------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:  # pragma: no cover - the docs extra installs it
    html_theme = "alabaster"
    html_theme_options = {}
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "github_url": "https://github.com/skae-dev/skae",
        "navigation_with_keys": False,
        "show_prev_next": False,
        "header_links_before_dropdown": 8,
    }
html_title = f"skae {release}"
html_static_path = []
html_show_sourcelink = False


# -- references into scikit-learn's own documentation ------------------------
# Methods inherited unchanged from scikit-learn (set_output,
# get_metadata_routing, ...) keep scikit-learn's docstrings, which refer to
# labels of scikit-learn's documentation. Without intersphinx (the build has no
# network) those labels do not exist here: link gallery examples to
# scikit-learn's site, whose URLs follow from the label, and render any other
# reference as plain text.
SKLEARN_URL = "https://scikit-learn.org/stable/"


def _resolve_sklearn_label(app, env, node, contnode):
    if node.get("refdomain") != "std" or "docstring of sklearn." not in (node.source or ""):
        return None
    target = node.get("reftarget", "")
    prefix = "sphx_glr_auto_examples_"
    if target.startswith(prefix) and target.endswith(".py"):
        section, _, name = target[len(prefix) : -len(".py")].partition("_plot_")
        path = f"auto_examples/{section}/plot_{name}.html" if name else None
        if path:
            return nodes.reference("", "a scikit-learn example", refuri=SKLEARN_URL + path)
    return contnode


def setup(app):
    app.connect("missing-reference", _resolve_sklearn_label)
