"""BoostMIS for scikit-learn: semi-supervised learning with adaptive
pseudo-labeling and informative active annotation (Zhang et al., CVPR 2022)."""

from .augment import FeatureDropoutNoise, GaussianFeatureNoise
from .classifier import BoostMISClassifier
from .diagnostics import PseudoLabelCollapseWarning
from .engine import BoostMISNet
from .loop import AnnotationLoop
from .model_selection import LabeledStratifiedKFold
from .modules import MLPClassifierModule
from .persistence import load_weights, save_weights
from .query import InformativeQuerySampler
from .scoring import make_labeled_scorer
from .thresholds import AdaptiveThreshold, FixedThreshold

__version__ = "0.1.0.dev0"

__all__ = [
    "AdaptiveThreshold",
    "AnnotationLoop",
    "BoostMISClassifier",
    "BoostMISNet",
    "FeatureDropoutNoise",
    "FixedThreshold",
    "GaussianFeatureNoise",
    "InformativeQuerySampler",
    "LabeledStratifiedKFold",
    "MLPClassifierModule",
    "PseudoLabelCollapseWarning",
    "load_weights",
    "make_labeled_scorer",
    "save_weights",
]
