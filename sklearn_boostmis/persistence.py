"""Weights-only persistence through safetensors (no pickle, no code execution).

:func:`save_weights` writes the student and EMA-teacher weights and the facts
needed to rebuild the network (classes, sample shape, ...); :func:`load_weights`
rebuilds a prediction-ready estimator from them and an estimator with the same
parameters.
"""

import copy
import json

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._utils import atomic_write
from .classifier import BoostMISClassifier, fitted_attributes, initialized_net
from .engine import load_module_states, module_states
from .modules import resolve_device

FORMAT = "sklearn_boostmis.weights.v1"


def save_weights(estimator, path):
    """Write a fitted estimator's weights to ``path`` (safetensors).

    Parameters
    ----------
    estimator : BoostMISClassifier
        A fitted estimator.
    path : str or path-like
        Destination file, conventionally ``*.safetensors``.
    """
    from safetensors.torch import save

    _check_is_boostmis(estimator)
    check_is_fitted(estimator, "net_")
    tensors = {
        f"{prefix}.{key}": value.detach().cpu().contiguous()
        for prefix, state in module_states(estimator.net_).items()
        for key, value in state.items()
    }
    metadata = {
        "format": FORMAT,
        "classes": json.dumps(estimator.classes_.tolist()),
        "n_features_in": str(estimator.n_features_in_),
        "input_shape": json.dumps(list(estimator.input_shape_)),
        "ema_updates": str(estimator.net_.ema_updates_),  # the teacher's warm-up
        "class_prior": json.dumps(estimator.class_prior_.tolist()),
        "settled_threshold": repr(estimator.settled_threshold_),
    }
    if hasattr(estimator, "feature_names_in_"):  # fitted on a DataFrame
        metadata["feature_names_in"] = json.dumps(estimator.feature_names_in_.tolist())
    # Serialised in memory and written by open(): safetensors' save_file
    # creates the file readable by its owner only, whatever the umask.
    atomic_write(path, save(tensors, metadata=metadata))


def load_weights(estimator, path, device=None):
    """Load weights saved by :func:`save_weights` into an estimator.

    Parameters
    ----------
    estimator : BoostMISClassifier
        An estimator with the same ``module``, ``module_params`` and
        ``prior_correction`` as the one saved; it is returned ready for
        ``predict``, ``predict_proba`` and queries (its ``transduction_`` and
        training history are not restored; those of an earlier fit of
        ``estimator`` are removed).
    path : str or path-like
        A file written by :func:`save_weights`.
    device : str, default=None
        Where to put the weights; None uses the estimator's ``device``.
        Building the network takes torch's process-wide random stream, so a
        call waits for a fit running in another thread of the process.

    Returns
    -------
    estimator : BoostMISClassifier

    Raises
    ------
    ValueError
        If ``path`` is not a weights file of this package, or its weights do
        not fit the estimator's network; the estimator is then left unchanged.
    TypeError
        If ``module_params`` names an argument the module does not take (as
        in ``fit``); the estimator is then left unchanged.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_boostmis import BoostMISClassifier, load_weights, save_weights
    >>> X, y = load_iris(return_X_y=True)
    >>> y[::2] = -1
    >>> clf = BoostMISClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> save_weights(clf, path)
    >>> loaded = load_weights(BoostMISClassifier(), path)
    >>> bool(np.allclose(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    """
    from safetensors import SafetensorError, safe_open

    _check_is_boostmis(estimator)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ValueError(
                    f"{path} is not a sklearn_boostmis weights file "
                    f"(format {metadata.get('format')!r}, expected {FORMAT!r})"
                )
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except SafetensorError as exc:
        raise ValueError(f"{path} is not a safetensors file ({exc})") from None
    classes = json.loads(metadata["classes"])
    has_strings = any(isinstance(c, str) for c in classes)
    fitted = {
        "classes_": np.asarray(classes, dtype=object if has_strings else None),
        "n_features_in_": int(metadata["n_features_in"]),
        "input_shape_": tuple(json.loads(metadata["input_shape"])),
        "class_prior_": np.asarray(
            json.loads(metadata["class_prior"]), dtype=np.float32
        ),
        "settled_threshold_": float(metadata["settled_threshold"]),
    }
    if "feature_names_in" in metadata:
        names = json.loads(metadata["feature_names_in"])
        fitted["feature_names_in_"] = np.asarray(names, dtype=object)
    staged = copy.copy(estimator)  # the estimator changes only once all loaded
    for name, value in fitted.items():
        setattr(staged, name, value)
    net = _rebuild_net(staged, tensors, device, path)
    net.ema_updates_ = int(metadata["ema_updates"])
    for name in fitted_attributes(estimator):  # those of an earlier fit
        delattr(estimator, name)
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator.net_ = net
    return estimator


def _rebuild_net(estimator, tensors, device, path):
    net = initialized_net(estimator, resolve_device(device or estimator.device))
    states = {}
    for prefix in ("module", "ema_module"):
        start = prefix + "."  # "ema_module.x" does not start with "module."
        states[prefix] = {
            k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)
        }
    try:
        load_module_states(net, states)
    except RuntimeError as exc:
        raise ValueError(
            f"the weights in {path} do not fit this estimator's network: was "
            f"it saved with another module or module_params? {exc}"
        ) from None
    return net


def _check_is_boostmis(estimator):
    if not isinstance(estimator, BoostMISClassifier):
        raise TypeError(
            "expected a BoostMISClassifier, got "
            f"{type(estimator).__name__}: for a Pipeline pass its last step "
            "(pipe[-1]) and persist the preprocessing steps separately"
        )
