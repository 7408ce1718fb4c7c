"""skae: autoencoders as first-class scikit-learn estimators, on skorch and PyTorch."""

from skae._ae import AE
from skae._conv import ConvAE
from skae._display import (
    AnomalyScoreDisplay,
    LatentSpaceDisplay,
    ReconstructionDisplay,
    TrainingCurveDisplay,
)
from skae._imputer import AEImputer
from skae._onnx import register_onnx_converters, to_onnx
from skae._outlier import AEOutlierDetector
from skae._persistence import load, save
from skae._sparse import SparseAE
from skae._vae import VAE
from skae._version import __version__

__all__ = [
    "AE",
    "AEImputer",
    "AEOutlierDetector",
    "AnomalyScoreDisplay",
    "ConvAE",
    "LatentSpaceDisplay",
    "ReconstructionDisplay",
    "SparseAE",
    "TrainingCurveDisplay",
    "VAE",
    "__version__",
    "load",
    "register_onnx_converters",
    "save",
    "to_onnx",
]
