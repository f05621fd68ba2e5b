"""BoostMISClassifier: the scikit-learn face of the method."""

import contextlib
import copy
import inspect
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._labels import (
    check_no_missing_labels,
    check_partial_labels,
    label_array,
    labeled_rows,
    labeled_sample_weight,
)
from ._threads import torch_threads
from ._utils import cuda_indices, torch_seeded
from .data import SemiSupervisedBatches, SemiSupervisedDataset, fits_on_device
from .diagnostics import warn_on_collapse
from .engine import (
    AcceleratedBoostMISNet,
    BoostMISNet,
    load_module_states,
    module_states,
)
from .imbalance import (
    PriorCorrection,
    check_class_prior,
    make_prior_correction,
    smoothed_prior,
)
from .modules import (
    MLPClassifierModule,
    eval_mode,
    resolve_device,
    supports_embedding,
)
from .net_params import check_callbacks, check_net_params
from .thresholds import BaseThreshold, make_threshold


class BoostMISClassifier(ClassifierMixin, BaseEstimator):
    """Semi-supervised neural classifier with BoostMIS adaptive pseudo-labeling.

    Trains a network on the labeled rows and, through a FixMatch-style
    consistency loss, on the unlabeled rows (``y == -1``) whose weak-view
    pseudo-label passes the paper's adaptive threshold eps_t. Prediction uses
    the exponential moving average (EMA) of the weights. Training runs on a
    :class:`skorch.NeuralNetClassifier` engine kept as ``net_``. The method
    page states the equations and the authors' settings (:ref:`method-training`).

    Parameters
    ----------
    module : None, torch.nn.Module class or instance, default=None
        The network; its ``forward`` returns logits, and ``embed``/``head``
        enable representation-space queries (:ref:`method-module-protocol`).
        None: :class:`~sklearn_boostmis.modules.MLPClassifierModule` for 2-D
        ``X``, :func:`~sklearn_boostmis.cnn.make_image_module` for images
        ``(N, H, W)`` or ``(N, C, H, W)``. A class is instantiated with
        ``module_params`` plus those of ``n_features``, ``n_classes``,
        ``n_channels`` and ``image_size`` (images) that its ``__init__``, or
        a parent's through ``**kwargs``, accepts. An instance is copied,
        never trained in place.
    module_params : dict, default=None
        Keyword arguments for the module class (e.g. ``{"hidden_units": (512,)}``).
    optimizer : torch optimizer class, default=torch.optim.SGD
        With SGD, ``momentum`` and Nesterov momentum are used.
    lr : float, default=0.03
        Initial learning rate, decayed per step as ``lr cos(7 pi k / 16 K)``.
    momentum : float, default=0.9
        SGD momentum (ignored by other optimizers).
    weight_decay : float, default=5e-4
        Weight decay on weights only (not on biases and normalisation layers);
        must be 0 with an optimizer that takes none (such as ``Rprop``).
    max_epochs : int, default=200
        Passes over the unlabeled rows (one step = a labeled batch of
        ``batch_size`` and an unlabeled batch of ``mu * batch_size``).
    max_steps : int or None, default=None
        Bound on the optimiser steps of a fit, in whole passes: ``max(1,
        min(max_epochs, max_steps // steps_per_pass))`` passes (as
        ``net_.max_epochs`` says). None: ``max_epochs`` passes.
    batch_size : int, default=64
        Labeled rows per step (B); with no unlabeled rows, at least 2
        (BatchNorm cannot train on one row).
    mu : int, default=2
        Ratio of unlabeled to labeled rows per step.
    lambda_u : float, default=1.0
        Weight of the unsupervised loss; 0 trains on the labels only with the
        same steps.
    threshold : {"adaptive", "fixed"} or threshold object, default="adaptive"
        ``"adaptive"``: the paper's eps_t
        (:class:`~sklearn_boostmis.thresholds.AdaptiveThreshold`); ``"fixed"``:
        FixMatch at ``alpha + beta``; or a policy object, an instance of a
        subclass of :class:`~sklearn_boostmis.thresholds.BaseThreshold`.
    alpha : float, default=0.9
        eps_t's learning-status weight.
    beta : float, default=0.05
        eps_t's annotation weight; ``alpha + beta`` is the settled threshold.
    t_max : int, default=None
        Pass from which eps_t = alpha + beta; None = half the passes of the fit
        (``max(1, net_.max_epochs // 2)``).
    ema_decay : float, default=0.999
        Decay of the EMA teacher, with a warm-up for short runs
        (:func:`~sklearn_boostmis.ema.effective_decay`).
    weak_augment, strong_augment : "auto", None or callable, default="auto"
        A callable maps a batch tensor to a batch tensor; None: no
        augmentation. ``"auto"``: the views of :ref:`method-augmentations`, for
        feature vectors or images (pass ``WeakImageAugment(flip=False)`` when
        a mirrored image changes its class, as with digits).
    unsup_normalizer : {"batch", "selected"}, default="batch"
        Divide L_u by the unlabeled batch size (FixMatch) or the selected count.
    class_weight : None, "balanced" or dict, default=None
        Class weights of the supervised loss, as in scikit-learn's
        classifiers, computed from the labeled rows (a declared class without
        any weighs 1, as do labels a dict leaves out). The consistency loss
        stays unweighted; see the user guide (:ref:`user-guide-imbalance`).
    prior_correction : {"classwise", "align", "adjust"}, PriorCorrection or \
None, default="classwise"
        How training and ``predict_proba`` account for the class prior, the
        smoothed prior of the labeled rows or ``class_prior`` (:ref:`method-imbalance`;
        :class:`~sklearn_boostmis.imbalance.PriorCorrection`): a string gives
        logit-adjusted losses and prior-calibrated pseudo-labels, aligned to
        the prior for ``"align"`` and ``"classwise"``, which adds per-class
        thresholds. None: the paper's method, which on imbalanced data tends
        to collapse onto the majority class.
    class_prior : array-like of shape (n_classes,), default=None
        The share of each class (in ``classes_`` order; counts are normalised)
        among the unlabeled rows and the data ``predict`` will see, when it is
        known better than the labeled rows tell, as the prevalence of each
        grade in a clinic usually is (:ref:`user-guide-imbalance`).
        ``prior_correction`` then aligns the pseudo-labels to it, adjusts the
        consistency loss and the decision rule by it; the supervised loss keeps
        the labeled prior. None: the smoothed prior of the labeled rows. Needs
        a ``prior_correction``.
    classes : array-like of shape (n_classes,), default=None
        Every class the model knows (as ``partial_fit(classes=...)``); None
        takes the classes of the labeled rows. Declare a class without labeled
        rows yet so that the network gets an output for it and a ``warm_start``
        fit (an :class:`~sklearn_boostmis.AnnotationLoop` cycle) can take its
        first labels. Labeled rows must hold two of them or more; -1 is not one.
    callbacks : list of skorch callbacks, default=None
        Passed to the skorch engine (e.g. ``EarlyStopping(monitor="train_loss")``).
        There is no validation split: scoring callbacks and callbacks that
        monitor ``valid_*`` records are refused; checkpoints need
        ``f_ema_module`` (user guide, :ref:`user-guide-callbacks`).
    net_params : dict, default=None
        Any other skorch parameter (e.g. ``{"iterator_valid__batch_size": 256}``).
        A setting that an estimator parameter already makes (``lr``,
        ``module__*``, ...) or that training never reads (``criterion``,
        ``train_split``, ``iterator_train__*``) is refused.
    device : str or torch.device, default="auto"
        ``"auto"`` = CUDA when available, else CPU. Ignored when
        ``accelerator`` is given (its device is used).
    precision : {None, "32", "bf16", "fp16"}, default=None
        Mixed precision of the forward passes (:func:`torch.autocast`);
        weights, EMA teacher, losses and thresholds stay float32. None and
        ``"32"``: float32; ``"fp16"`` needs a CUDA device and adds a gradient
        scaler; with ``accelerator``, leave it None.
    data_on_device : "auto" or bool, default="auto"
        True moves the training arrays to the device once; False copies each
        batch from host memory, for arrays larger than the GPU memory.
        ``"auto"``: True on the CPU, and on a GPU when the arrays take less
        than half of its free memory. The result does not depend on it.
    accelerator : None or accelerate.Accelerator, default=None
        Train through Hugging Face ``accelerate``
        (:class:`~sklearn_boostmis.engine.AcceleratedBoostMISNet`), which then
        handles ``device`` and ``precision``. Not picklable in general: export
        with :func:`~sklearn_boostmis.save_weights`. Under ``accelerate
        launch`` ``batch_size`` is per process (:ref:`user-guide-gpu`).
    warm_start : bool, default=False
        Continue from the previous fit's weights, EMA teacher and history
        (each annotation cycle), with the current parameters; the optimizer,
        LR schedule and callbacks start afresh. A ``module`` or
        ``module_params`` whose network those weights do not fit raises a
        ``ValueError``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, data order, augmentations and dropout: the same
        value gives identical results on the CPU, also in threads of one
        process, which then fit one at a time (torch's random stream is
        process-wide; a callback must not wait for another thread's fit).
    n_jobs : int, default=None
        CPU threads torch uses during ``fit``, ``predict`` and queries, with
        joblib's convention: None means 1 (unless in a
        :func:`joblib.parallel_config` context), -1 all cores; the caller's
        count is restored afterwards. torch's default, one per core, trains
        small networks many times slower when other jobs share the cores.
    verbose : int, default=0
        Print skorch's per-epoch log when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (never -1).
    class_prior_ : ndarray of shape (n_classes,)
        The prior ``prior_correction`` aligns pseudo-labels to and
        ``predict_proba`` decides under, in ``classes_`` order: ``class_prior``
        normalised, or the smoothed prior of the labeled rows, ``(n_c + 1) /
        (n_L + C)``.
    n_features_in_ : int
        Number of features (for images: of channels).
    input_shape_ : tuple of int
        Shape of one sample: ``(n_features,)``, or ``(channels, height, width)``
        for images.
    net_ : BoostMISNet
        The fitted skorch engine; ``net_.module_`` is the student network and
        ``net_.ema_module_`` the EMA teacher used for prediction.
    history_ : skorch.History
        skorch's records, plus per batch ``sup_loss``, ``unsup_loss``,
        ``mask_ratio`` and ``threshold`` (written at each epoch's end) and per
        epoch their means weighted by batch size (what ``verbose=1`` prints).
    transduction_ : ndarray of shape (n_samples,)
        The given labels, and for unlabeled rows the last pseudo-label if its
        last visit passed the threshold, else -1.
    collapsed_classes_ : list
        Labels named by a :class:`~sklearn_boostmis.PseudoLabelCollapseWarning`
        in the last ``fit`` (empty when it did not warn), also for a fit in a
        parallel worker whose warnings are not seen.
    labeled_iter_ : ndarray of shape (n_samples,)
        0 for given labels, the epoch (1-based) since which an unlabeled row's
        pseudo-label has passed the threshold, -1 otherwise.
    threshold_history_ : ndarray of shape (n_iter_,)
        eps_t at the end of each epoch.
    n_iter_ : int
        Epochs run by the last fit (also when a ``Checkpoint(load_best=True)``
        restored an earlier epoch).
    settled_threshold_ : float
        The threshold the pseudo-labels settled at (``alpha + beta`` for the
        adaptive threshold, a ``FixedThreshold``'s value, a policy's last
        threshold); the default candidate threshold of the queries.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : wrapper self-training.
    sklearn.semi_supervised.LabelSpreading : graph-based label propagation.

    References
    ----------
    Zhang et al., "BoostMIS: Boosting Medical Image Semi-supervised Learning with
    Adaptive Pseudo Labeling and Informative Active Annotation", CVPR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import scale
    >>> from sklearn_boostmis import BoostMISClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = scale(X)
    >>> rng = np.random.RandomState(0)
    >>> y_partial = np.copy(y)
    >>> y_partial[rng.rand(len(y)) < 0.7] = -1
    >>> clf = BoostMISClassifier(max_epochs=20, random_state=0).fit(X, y_partial)
    >>> clf.classes_
    array([0, 1, 2])
    >>> bool(clf.score(X, y) > 0.8)
    True
    """

    _parameter_constraints: dict = {
        "module": [None, type, torch.nn.Module],
        "module_params": [None, dict],
        "optimizer": [type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_steps": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "mu": [Interval(Integral, 1, None, closed="left")],
        "lambda_u": [Interval(Real, 0, None, closed="left")],
        "threshold": [
            StrOptions({"adaptive", "fixed"}),
            BaseThreshold,
        ],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "beta": [Interval(Real, 0, 1, closed="both")],
        "t_max": [None, Interval(Integral, 0, None, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="both")],
        "weak_augment": [StrOptions({"auto"}), None, callable],
        "strong_augment": [StrOptions({"auto"}), None, callable],
        "unsup_normalizer": [StrOptions({"batch", "selected"})],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "prior_correction": [
            None,
            StrOptions({"align", "adjust", "classwise"}),
            PriorCorrection,
        ],
        "class_prior": [None, "array-like"],
        "classes": [None, "array-like"],
        "callbacks": [None, list],
        "net_params": [None, dict],
        "device": [str, torch.device],
        "precision": [None, StrOptions({"32", "bf16", "fp16"})],
        "data_on_device": [StrOptions({"auto"}), "boolean"],
        "accelerator": [None, HasMethods(["prepare", "backward", "autocast"])],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        module=None,
        module_params=None,
        optimizer=torch.optim.SGD,
        lr=0.03,
        momentum=0.9,
        weight_decay=5e-4,
        max_epochs=200,
        max_steps=None,
        batch_size=64,
        mu=2,
        lambda_u=1.0,
        threshold="adaptive",
        alpha=0.9,
        beta=0.05,
        t_max=None,
        ema_decay=0.999,
        weak_augment="auto",
        strong_augment="auto",
        unsup_normalizer="batch",
        class_weight=None,
        prior_correction="classwise",
        class_prior=None,
        classes=None,
        callbacks=None,
        net_params=None,
        device="auto",
        precision=None,
        data_on_device="auto",
        accelerator=None,
        warm_start=False,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.module = module
        self.module_params = module_params
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.mu = mu
        self.lambda_u = lambda_u
        self.threshold = threshold
        self.alpha = alpha
        self.beta = beta
        self.t_max = t_max
        self.ema_decay = ema_decay
        self.weak_augment = weak_augment
        self.strong_augment = strong_augment
        self.unsup_normalizer = unsup_normalizer
        self.class_weight = class_weight
        self.prior_correction = prior_correction
        self.class_prior = class_prior
        self.classes = classes
        self.callbacks = callbacks
        self.net_params = net_params
        self.device = device
        self.precision = precision
        self.data_on_device = data_on_device
        self.accelerator = accelerator
        self.warm_start = warm_start
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit on labeled rows and unlabeled rows (``y == -1``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels of any type; -1 marks an unlabeled row. String labels need
            object dtype so that -1 can stand beside them (a list such as
            ``["cat", -1, "dog"]`` is read as one).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the labeled rows in the supervised loss (a
            weighted mean per step, ``class_weight`` multiplied in); those of
            unlabeled rows are not used. None weighs every row 1. The class
            prior of ``prior_correction`` counts rows, not weights.

        Returns
        -------
        self : BoostMISClassifier

        Warns
        -----
        PseudoLabelCollapseWarning
            When a labeled class got less than a tenth of its labeled share
            among the accepted pseudo-labels and the predictions on the
            unlabeled rows (:func:`~sklearn_boostmis.diagnostics.warn_on_collapse`).

        Raises
        ------
        ValueError
            For invalid input, and when training diverged (non-finite weights).
            A fit that raises leaves the estimator as it was before the call.
        """
        with _unchanged_on_error(self), torch_threads(self.n_jobs):
            warm = self.warm_start and hasattr(self, "net_")
            y = label_array(y)
            check_no_missing_labels(y)
            X, y = self._validate_input(X, y, reset=not warm)
            # 4: check_partial_labels, fit, sklearn's _fit_context wrapper, the caller
            labeled, classes = check_partial_labels(y, self.classes, stacklevel=4)
            if labeled.all():
                warnings.warn(
                    "y contains no unlabeled samples", UserWarning, stacklevel=3
                )
            if warm and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"warm_start=True needs the same classes as the previous fit: "
                    f"{self.classes_.tolist()} then {classes.tolist()} (declare "
                    f"every class with classes={self.classes_.tolist()!r} when "
                    "some have no labeled row)"
                )
            self.classes_ = classes
            encoded = np.searchsorted(self.classes_, y[labeled])
            self.class_prior_ = self._class_prior(encoded, len(classes))

            weights = self._labeled_weights(sample_weight, X, labeled)
            net = self._train(X, y, labeled, encoded, warm, weights)
            _check_finite(net, self.lr)
            self.net_ = net
            # one eps_t per epoch run: history_ may be shorter after a
            # Checkpoint(load_best=True) restored an earlier epoch's history
            self.threshold_history_ = np.asarray(net.threshold_history_, dtype=float)
            self.n_iter_ = len(self.threshold_history_)
            self.settled_threshold_ = float(net.threshold_.settled_threshold())
            pseudo = self._set_transduction(y, labeled)
            self.collapsed_classes_ = []
            if self.lambda_u > 0:
                self.collapsed_classes_ = warn_on_collapse(
                    self.classes_,
                    encoded,
                    pseudo,
                    lambda: self.net_.predict_proba(X[~labeled]).argmax(axis=1),
                    stacklevel=4,  # past fit's _fit_context wrapper, at the caller
                )
            return self

    @staticmethod
    def _labeled_weights(sample_weight, X, labeled):
        """The labeled rows' sample weights (float32), or None."""
        if sample_weight is None:
            return None
        weights = _check_sample_weight(
            sample_weight, X, dtype=np.float32, ensure_non_negative=True
        )[labeled]
        if not weights.sum() > 0:
            raise ValueError(
                "sample_weight is 0 on every labeled row: the supervised loss "
                "would have nothing to learn from"
            )
        return weights

    def _train(self, X, y, labeled, encoded, warm, weights=None):
        """Build the network (continuing the previous one when ``warm``), train it."""
        device = self._resolve_device()
        on_device = self.data_on_device
        if on_device == "auto":
            on_device = fits_on_device(X.nbytes, device)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        with torch_seeded(seed, device):
            dataset = SemiSupervisedDataset(
                X[labeled], encoded, X[~labeled], device, on_device, weights
            )
            class_weight = self._class_weight(y[labeled])
            n_passes = self._n_passes(dataset)
            if warm:
                with torch.random.fork_rng(devices=cuda_indices(device)):
                    # building the network must not move training's random stream
                    net = self._make_net(device, seed, class_weight, n_passes)
                    net.initialize()
                _continue_from(net, self.net_)
                net.partial_fit(dataset, None)
            else:
                net = self._make_net(device, seed, class_weight, n_passes)
                net.fit(dataset, None)
        return net

    def _n_passes(self, dataset):
        """Passes over the unlabeled rows of a fit on ``dataset`` (``max_steps``)."""
        if self.max_steps is None:
            return self.max_epochs
        per_pass = len(SemiSupervisedBatches(dataset, self.batch_size, self.mu, None))
        return max(1, min(self.max_epochs, self.max_steps // per_pass))

    def _validate_input(self, X, y="no_validation", reset=True):
        """Validate like scikit-learn; images (N, H, W) become (N, 1, H, W)."""
        if not hasattr(X, "shape"):  # a list: converted once, for ndim and shape
            X = np.asarray(X)
        ndim = X.ndim
        if ndim > 4 and (reset or len(self.input_shape_) != 3):
            raise ValueError(
                f"X has {ndim} dimensions: give feature vectors (n_samples, "
                "n_features) or images (n_samples, height, width) or (n_samples, "
                "channels, height, width)"
            )
        if not reset and len(self.input_shape_) == 1 and ndim in (3, 4):
            self._check_sample_shape(X.shape[1:])  # before "n_features" talk
        if ndim == 3:
            X = np.asarray(X)[:, None]
        if reset and ndim == 4 and X.shape[-1] in (1, 3, 4) and X.shape[1] > 4:
            warnings.warn(
                f"X of shape {tuple(X.shape)} looks channels-last (n_samples, "
                "height, width, channels), but images are read as (n_samples, "
                "channels, height, width): if so, pass np.moveaxis(X, -1, 1)",
                UserWarning,
                stacklevel=4,
            )
        image_model = not reset and len(self.input_shape_) == 3
        if image_model:
            # name the shapes before validate_data speaks of features or "dim <= 2"
            self._check_sample_shape(X.shape[1:])
        # C order: torch views (and some augmentations) assume row-major rows;
        # images given as np.moveaxis(X, -1, 1) are not
        kwargs = dict(dtype=np.float32, order="C", reset=reset, allow_nd=ndim in (3, 4))
        only_X = isinstance(y, str) and y == "no_validation"
        if only_X:
            X = validate_data(self, X, **kwargs)
        else:
            X, y = validate_data(self, X, y, ensure_min_samples=2, **kwargs)
        if not X.flags.writeable:  # e.g. a pandas view: torch warns on those
            X = X.copy()
        if reset:
            self.input_shape_ = tuple(X.shape[1:])
        elif not image_model:
            self._check_sample_shape(X.shape[1:])
        return X if only_X else (X, y)

    def _check_sample_shape(self, shape):
        if tuple(shape) != self.input_shape_:
            hint = (
                " (images: (n_samples, channels, height, width), or (n_samples, "
                "height, width) for one channel)"
                if len(self.input_shape_) == 3
                else " (feature vectors: (n_samples, n_features))"
            )
            raise ValueError(
                f"X has samples of shape {tuple(shape)}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{self.input_shape_}{hint}"
            )

    def _resolve_device(self):
        """The compute device; checks ``precision`` against it."""
        precision = None if self.precision == "32" else self.precision
        if self.accelerator is not None:
            if precision is not None:
                raise ValueError(
                    "precision must be None with an accelerator: set "
                    "Accelerator(mixed_precision=...) instead"
                )
            return str(self.accelerator.device)
        device = resolve_device(self.device)
        if precision == "fp16" and not device.startswith("cuda"):
            raise ValueError(
                f"precision='fp16' needs a CUDA device, got device={device!r}; "
                "use precision='bf16' on the CPU"
            )
        return device

    def _make_module(self):
        n_features, n_classes = self.n_features_in_, len(self.classes_)
        params = dict(self.module_params or {})
        sizes = {"n_features": n_features, "n_classes": n_classes}
        if self.module is None and len(self.input_shape_) == 3:
            from .cnn import make_image_module

            module, defaults = make_image_module(self.input_shape_, n_classes)
            return module, {**defaults, **params}
        if self.module is None:
            return MLPClassifierModule, {**sizes, **params}
        if isinstance(self.module, torch.nn.Module):
            if params:
                raise ValueError("module_params only apply when module is a class")
            return copy.deepcopy(self.module), {}
        accepted = _init_parameters(self.module)
        if len(self.input_shape_) == 3:  # images: as the built-in CNNs take them
            sizes.update(n_channels=n_features, image_size=self.input_shape_[1:])
        for name, value in sizes.items():
            if name in accepted and name not in params:
                params[name] = value
        return self.module, params

    def _class_prior(self, encoded, n_classes):
        if self.class_prior is None:
            return smoothed_prior(encoded, n_classes).numpy()
        if self.prior_correction is None:
            raise ValueError(
                "class_prior is used by a prior_correction; with "
                "prior_correction=None (the paper's method) leave it None"
            )
        return check_class_prior(self.class_prior, n_classes).numpy()

    def _class_weight(self, y_labeled):
        """Per-class weights of the supervised loss, in ``classes_`` order (1 for a
        class without labeled rows, which is never a target)."""
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            known = set(self.classes_)
            unknown = [k for k in self.class_weight if k not in known]
            if unknown:
                raise ValueError(
                    f"class_weight has labels {unknown} that are not among the "
                    f"classes {self.classes_.tolist()}"
                )
            weights = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y_labeled
            )
            return [float(w) for w in weights]
        present = np.unique(y_labeled)  # "balanced" refuses a class absent from y
        weights = compute_class_weight(self.class_weight, classes=present, y=y_labeled)
        by_class = dict(zip(present.tolist(), weights.tolist(), strict=True))
        return [float(by_class.get(c, 1.0)) for c in self.classes_.tolist()]

    def _make_net(self, device, seed, class_weight=None, n_passes=None):
        check_net_params(self.net_params)
        check_callbacks(self.callbacks, self.net_params)
        if not issubclass(self.optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a torch.optim.Optimizer subclass (such as "
                f"torch.optim.SGD or torch.optim.AdamW), got {self.optimizer!r}"
            )
        module, module_kwargs = self._make_module()
        optimizer_kwargs = {}
        if "weight_decay" in inspect.signature(self.optimizer).parameters:
            optimizer_kwargs["optimizer__weight_decay"] = self.weight_decay
        elif self.weight_decay:
            raise ValueError(
                f"{self.optimizer.__name__} takes no weight_decay: set weight_decay=0"
            )
        if issubclass(self.optimizer, torch.optim.SGD):
            optimizer_kwargs.update(
                optimizer__momentum=self.momentum,
                optimizer__nesterov=self.momentum > 0,
            )
        net_kwargs = {
            "iterator_valid__batch_size": max(self.batch_size, 1024),
            **{f"module__{k}": v for k, v in module_kwargs.items()},
            **optimizer_kwargs,
            **(self.net_params or {}),
        }
        net_class, placement = BoostMISNet, {"device": device}
        if self.accelerator is not None:
            net_class = AcceleratedBoostMISNet
            placement = {
                "device": None,
                "accelerator": self.accelerator,
                # "auto" prints through the accelerator whatever the verbosity
                "callbacks__print_log__sink": "auto" if self.verbose else print,
            }
        return net_class(
            module,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs if n_passes is None else n_passes,
            batch_size=self.batch_size,
            mu=self.mu,
            lambda_u=self.lambda_u,
            threshold=make_threshold(self.threshold, self.alpha, self.beta, self.t_max),
            ema_decay=self.ema_decay,
            weak_augment=self.weak_augment,
            strong_augment=self.strong_augment,
            unsup_normalizer=self.unsup_normalizer,
            class_weight=class_weight,
            prior_correction=self.prior_correction,
            class_prior=None if self.class_prior is None else self.class_prior_,
            classes=list(range(len(self.classes_))),
            callbacks=copy.deepcopy(self.callbacks),
            precision=None if self.precision == "32" else self.precision,
            seed=seed,
            verbose=self.verbose,
            **placement,
            **net_kwargs,
        )

    def _set_transduction(self, y, labeled):
        """Set ``transduction_`` and ``labeled_iter_``; return the accepted
        pseudo-labels (encoded)."""
        pseudo, since = self.net_.memory_.transduction()
        unlabeled_pos = np.flatnonzero(~labeled)
        self.transduction_ = np.array(y, copy=True)
        self.labeled_iter_ = np.where(labeled, 0, -1)
        passed = pseudo >= 0
        self.transduction_[unlabeled_pos[passed]] = self.classes_[pseudo[passed]]
        self.labeled_iter_[unlabeled_pos[passed]] = since[passed]
        return pseudo[passed]

    # -- prediction ---------------------------------------------------------
    @property
    def history_(self):
        check_is_fitted(self, "net_")
        return self.net_.history

    def predict_proba(self, X):
        """Class probabilities of the EMA teacher.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``. With a ``prior_correction``, the
            posterior its ``decision`` names (under ``class_prior_``, by
            default).
        """
        if self.prior_correction is not None:
            return torch.softmax(self._decision_logits_of(X), dim=1).numpy()
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        with torch_threads(self.n_jobs):
            return self.net_.predict_proba(X)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, from the logits (finite where it underflows).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return torch.log_softmax(self._decision_logits_of(X), dim=1).numpy()

    def _decision_logits_of(self, X):
        """The teacher's float32 logits of ``X``, through :meth:`_decision_logits`."""
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        with torch_threads(self.n_jobs):
            logits = self.net_.forward(X, training=False)
        return self._decision_logits(logits.float())

    def _decision_logits(self, logits):
        """The teacher's logits as ``predict_proba`` reads them (``decision``)."""
        policy = make_prior_correction(self.prior_correction)
        return (
            logits
            if policy is None
            else policy.decision_logits(logits, self.class_prior_)
        )

    def predict(self, X):
        """Predicted class labels (elements of ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy on the labeled rows; rows with ``y == -1`` are ignored.

        This keeps cross-validation on partially labeled data meaningful. A
        ``ValueError`` says so when no row of ``y`` is labeled.
        """
        X_labeled, y_labeled, mask = labeled_rows(X, y)
        weights = labeled_sample_weight(y, sample_weight, mask)
        return super().score(X_labeled, y_labeled, weights)

    # -- what queries read ---------------------------------------------------
    @property
    def teacher_(self):
        """The fitted EMA teacher network (``net_.ema_module_``), which predicts
        and which queries score with."""
        check_is_fitted(self, "net_")
        return self.net_.ema_module_

    def teacher_outputs(self, X, *, batch_size=1024):
        """The EMA teacher's class probabilities and representations of ``X``.

        Runs :attr:`teacher_` in eval mode without gradient, batch by batch,
        on its device, and restores every submodule's train/eval mode after.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            Validated as :meth:`predict_proba` validates it.
        batch_size : int, default=1024
            Rows per forward pass.

        Returns
        -------
        proba : torch.Tensor of shape (n_samples, n_classes)
            Class probabilities (columns follow ``classes_``).
        embedding : torch.Tensor of shape (n_samples, ...) or None
            ``teacher_.embed(X)`` as the module returns it, when it has the
            ``embed``/``head`` split (:ref:`method-module-protocol`), else None.
        X : torch.Tensor
            The validated ``X`` on the teacher's device (images as
            ``(n_samples, channels, height, width)``).

        Raises
        ------
        ValueError
            If the module's ``head(embed(x))`` differs from its ``forward(x)``.
        """
        teacher = self.teacher_
        X = torch.as_tensor(self._validate_input(X, reset=False))
        X = X.to(next(teacher.parameters()).device)  # net_.device: None with accelerate
        embedding = supports_embedding(teacher)
        probas, zs = [], []
        with torch_threads(self.n_jobs), eval_mode(teacher), torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                x = X[start : start + batch_size]
                if embedding:
                    zs.append(teacher.embed(x))
                    logits = teacher.head(zs[-1])
                    if start == 0:  # on two rows: the pool is embedded once
                        _check_split(teacher, x[:2], logits[:2])
                else:
                    logits = teacher(x)
                probas.append(torch.softmax(self._decision_logits(logits), dim=1))
        return torch.cat(probas), torch.cat(zs) if embedding else None, X

    def set_params(self, **params):
        """Set parameters; ``module_params__<name>`` and ``net_params__<name>`` set
        one entry of those dicts (a copy: the dict passed before is unchanged),
        so that a search grid can name them.

        Returns
        -------
        self : BoostMISClassifier
        """
        dicts = {}
        for key in list(params):
            name, nested, entry = key.partition("__")
            if nested and name in ("module_params", "net_params"):
                if name not in dicts:  # a whole dict given alongside comes first
                    whole = params.pop(name) if name in params else getattr(self, name)
                    dicts[name] = dict(whole or {})
                dicts[name][entry] = params.pop(key)
            elif nested and name in ("module", "callbacks"):
                hint = {
                    "module": f"the module's arguments go to module_params, e.g. "
                    f"module_params__{entry}",
                    "callbacks": "callbacks is a list: set the whole list",
                }[name]
                raise ValueError(f"Invalid parameter {key!r}: {hint}")
        return super().set_params(**params, **dicts)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.target_tags.required = True
        return tags


def _check_split(module, x, logits):
    """Refuse ``embed``/``head`` attributes that do not split ``forward``."""
    full = module(x)
    if full.shape != logits.shape or not torch.allclose(
        full, logits, rtol=1e-4, atol=1e-4
    ):
        raise ValueError(
            f"{type(module).__name__}.head(embed(x)) differs from its forward(x): "
            "the queries read embed/head as the two halves of forward (the "
            "module protocol), and these do not compose to it (layers named "
            "embed and head?). Make forward(x) == head(embed(x)), or rename "
            "them so that the queries work on the inputs."
        )


def _continue_from(net, previous):
    """Give the initialized ``net`` the weights, EMA teacher and history of the
    ``previous`` fit's network (warm start)."""
    try:
        load_module_states(net, module_states(previous))
    except RuntimeError as exc:
        raise ValueError(
            "warm_start=True continues the fitted network, but the current module "
            "and module_params build a network its weights do not fit; keep them "
            f"or set warm_start=False to train a new network ({exc})"
        ) from None
    net.ema_updates_ = previous.ema_updates_
    net.history = copy.deepcopy(previous.history)  # a fit that fails leaves it


def _init_parameters(module_class):
    """Names that ``module_class(...)`` accepts as keywords, following
    ``**kwargs`` up the class hierarchy."""
    names = set()
    for klass in inspect.getmro(module_class):
        if klass is object or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names.update(
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


@contextlib.contextmanager
def _unchanged_on_error(estimator):
    """Put back the fitted attributes that ``estimator`` had if the block raises."""
    previous = fitted_attributes(estimator)
    try:
        yield
    except BaseException:
        for name in fitted_attributes(estimator):
            delattr(estimator, name)
        vars(estimator).update(previous)
        raise


def initialized_net(estimator, device):
    """A new initialized engine for ``estimator``, whose fitted attributes are
    set, on ``device``; its weights are to be replaced (``load_weights``)."""
    with torch_seeded(0):
        return estimator._make_net(device, seed=0).initialize()


def fitted_attributes(estimator):
    """The attributes that ``fit`` sets (public names ending in ``_``)."""
    return {
        name: value
        for name, value in vars(estimator).items()
        if name.endswith("_") and not name.startswith("_")
    }


def _check_finite(net, lr):
    """Refuse a diverged fit, as scikit-learn's MLPClassifier does."""
    tensors = [t for state in module_states(net).values() for t in state.values()]
    finite = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    if torch.stack(finite).all():  # one sync
        return
    losses = np.asarray(net.history[:, "train_loss"], dtype=float)
    diverged = np.flatnonzero(~np.isfinite(losses))
    when = ""
    if diverged.size:
        when = f" (train_loss non-finite from epoch {diverged[0] + 1})"
    raise ValueError(
        "Training diverged: the network's weights or BatchNorm statistics became "
        f"NaN or infinite{when}. "
        f"Lower lr (now {lr:g}) or standardise X (e.g. with StandardScaler)."
    )
