"""BoostMIS for scikit-learn: semi-supervised learning with adaptive
pseudo-labeling and informative active annotation (Zhang et al., CVPR 2022).

The public names below are imported on first use (PEP 562), as in SciPy:
``import sklearn_boostmis`` does not load torch or scikit-learn, so that the
``boostmis`` command answers ``--help`` and ``--version`` at once.
"""

import importlib
import importlib.util

__version__ = "0.1.0.dev0"

# Public name -> the submodule that defines it.
_LAZY_NAMES = {
    "AdaptiveThreshold": "thresholds",
    "AnnotationLoop": "loop",
    "BoostMISClassifier": "classifier",
    "BoostMISNet": "engine",
    "FeatureDropoutNoise": "augment",
    "FixedThreshold": "thresholds",
    "GaussianFeatureNoise": "augment",
    "InformativeQuerySampler": "query",
    "LabeledStratifiedKFold": "model_selection",
    "MLPClassifierModule": "modules",
    "MarginalResamplingNoise": "augment",
    "PriorCorrection": "imbalance",
    "PseudoLabelCollapseWarning": "diagnostics",
    "load_weights": "persistence",
    "make_labeled_scorer": "scoring",
    "save_weights": "persistence",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name):
    if name in _LAZY_NAMES:
        module = importlib.import_module(f".{_LAZY_NAMES[name]}", __name__)
        value = getattr(module, name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        # A submodule used as an attribute (``sklearn_boostmis.datasets``).
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
