"""Checks of the skorch settings a user passes through ``BoostMISClassifier``.

``net_params`` and ``callbacks`` reach the skorch engine as they are; these
checks refuse the ones that an estimator parameter already sets, that training
never reads, or that would fail obscurely, with what to do instead.
"""

from skorch.callbacks import (
    Checkpoint,
    EarlyStopping,
    LoadInitState,
    LRScheduler,
    TrainEndCheckpoint,
)
from skorch.callbacks.scoring import ScoringBase

# A file name for the EMA teacher in skorch checkpoints (skorch saves a
# net's extra modules only when given a file for them).
TEACHER_FILE = "ema_module.pt"

# skorch settings made from estimator parameters: the parameter of each.
_NET_PARAMS_OWNED = {
    **{
        name: name
        for name in (
            "module optimizer lr max_epochs batch_size mu lambda_u threshold "
            "ema_decay weak_augment strong_augment unsup_normalizer class_weight "
            "class_prior classes callbacks precision verbose device accelerator"
        ).split()
    },
    "optimizer__weight_decay": "weight_decay",
    "optimizer__momentum": "momentum",
    "optimizer__lr": "lr",
    "seed": "random_state",
}

# skorch settings that training never reads, with what to do instead.
_NET_PARAMS_UNUSED = {
    "criterion": "the losses are the paper's cross-entropies (weigh classes with "
    "class_weight)",
    "train_split": "fit trains on every row; validate with cross-validation or "
    "AnnotationLoop(...).fit(X, y, X_val, y_val)",
    "iterator_train": "training batches are B labeled + mu * B unlabeled rows "
    "(batch_size, mu)",
}


def check_net_params(net_params):
    """Raise ``ValueError`` for a ``net_params`` key that must not be set."""
    for key in net_params or {}:
        if key in _NET_PARAMS_OWNED:
            raise ValueError(
                f"net_params sets {key!r}, which BoostMISClassifier sets itself: "
                f"use the estimator parameter {_NET_PARAMS_OWNED[key]!r} instead"
            )
        if key.startswith("module__"):
            raise ValueError(
                f"net_params sets {key!r}: pass module arguments in "
                f"module_params={{{key[len('module__') :]!r}: ...}}"
            )
        prefix = key.split("__")[0]
        if prefix in _NET_PARAMS_UNUSED:
            raise ValueError(
                f"net_params sets {key!r}, which BoostMISClassifier does not "
                f"use: {_NET_PARAMS_UNUSED[prefix]}"
            )


def check_callbacks(callbacks, net_params):
    """Raise ``ValueError`` for callbacks that would do nothing or fail obscurely."""
    cosine_on = (net_params or {}).get("callbacks__cosine_lr", "on")
    for entry in callbacks or []:
        callback = entry[1] if isinstance(entry, tuple) else entry
        if isinstance(callback, ScoringBase):
            raise ValueError(
                f"{type(callback).__name__} is not supported: fit has no "
                "validation split and its training rows are mostly unlabeled. "
                "history_ holds sup_loss, unsup_loss, mask_ratio and threshold; "
                "score held-out rows with make_labeled_scorer after fit, or "
                "pass X_val, y_val to AnnotationLoop.fit"
            )
        if isinstance(callback, LRScheduler) and cosine_on is not None:
            raise ValueError(
                "the built-in cosine schedule sets the learning rate at every "
                "step and would override this LRScheduler: to use your own, "
                "also pass net_params={'callbacks__cosine_lr': None}"
            )
        _check_checkpointing(callback)


def _check_checkpointing(callback):
    """Refuse callbacks that watch validation scores, or that save or restore the
    student network without the EMA teacher that predicts."""
    name = type(callback).__name__
    monitor = getattr(callback, "monitor", None)
    if isinstance(monitor, str) and monitor.startswith("valid"):
        raise ValueError(
            f"{name} monitors {monitor!r}, but fit has no validation split: "
            "monitor a training record ('train_loss', or 'train_loss_best' for "
            "Checkpoint; history_ also holds sup_loss, unsup_loss and mask_ratio)"
        )
    if isinstance(callback, EarlyStopping) and callback.load_best:
        raise ValueError(
            "EarlyStopping(load_best=True) restores the student network only, "
            "but predictions come from its EMA teacher: to restore both, use "
            "Checkpoint(monitor='train_loss_best', load_best=True, "
            f"f_ema_module={TEACHER_FILE!r})"
        )
    saver = callback.checkpoint if isinstance(callback, LoadInitState) else callback
    if (
        isinstance(saver, (Checkpoint, TrainEndCheckpoint))
        and saver.f_params
        and not getattr(saver, "f_ema_module", None)
    ):
        raise ValueError(
            f"{name} saves or loads the student network (f_params) but not the "
            f"EMA teacher that predicts: add f_ema_module={TEACHER_FILE!r} to "
            f"the {type(saver).__name__}"
        )
