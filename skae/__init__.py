"""skae: autoencoders as first-class scikit-learn estimators, on skorch and PyTorch."""

from skae._ae import AE
from skae._conv import ConvAE
from skae._sparse import SparseAE
from skae._vae import VAE

__version__ = "0.1.0"

__all__ = ["AE", "ConvAE", "SparseAE", "VAE", "__version__"]
