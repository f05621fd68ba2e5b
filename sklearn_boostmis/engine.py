"""The skorch training engine of :class:`BoostMISClassifier`.

:class:`BoostMISNet` is a :class:`skorch.NeuralNetClassifier` that overrides only
documented seams (``initialize_module``, ``initialize_optimizer``,
``get_iterator``, ``train_step``, ``train_step_single``, ``evaluation_step``,
``_default_callbacks`` and its own ``on_*`` hooks) and only ever sees encoded
labels 0..C-1, never -1. :class:`AcceleratedBoostMISNet` adds skorch's
:class:`~skorch.hf.AccelerateMixin` (Hugging Face ``accelerate``).
"""

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator, to_tensor
from torch.utils.data import DataLoader

from ._deferred import PendingFloat, defer_item
from .augment import default_augmentations, make_augmentation
from .data import SemiSupervisedBatches, SemiSupervisedDataset
from .ema import effective_decay, ema_pairs, ema_update, make_teacher
from .imbalance import make_prior_correction, smoothed_prior
from .losses import masked_consistency_loss, supervised_loss
from .memory import PseudoLabelMemory
from .modules import eval_mode, no_weight_decay_names
from .thresholds import AdaptiveThreshold

STEP_RECORDS = ("sup_loss", "unsup_loss", "mask_ratio", "threshold")
PRECISIONS = {None: None, "32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision):
    """The autocast dtype of a ``precision`` value (None = full float32)."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be None, '32', 'bf16' or 'fp16'; got {precision!r}"
        )
    return PRECISIONS[precision]


def _grad_scaler(device_type):
    """A gradient scaler for fp16 (``torch.cuda.amp`` before torch 2.3)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device_type)
    return torch.cuda.amp.GradScaler()  # pragma: no cover


def _move_tensor_state(obj, device, _depth=0):
    """Move the tensors an object keeps (a fitted augmentation) to ``device``."""
    if _depth > 2 or not hasattr(obj, "__dict__"):
        return
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            setattr(obj, name, value.to(device))
        elif hasattr(value, "fit") and callable(value):
            _move_tensor_state(value, device, _depth + 1)


class CosineLR(Callback):
    """Per-step cosine decay ``lr0 * cos(7 pi k / (16 K))``, the authors' schedule.

    ``K`` is the number of steps of the current ``fit``, at each of which the
    schedule restarts (:ref:`method-training`).
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.step_ = 0
        self.base_lrs_ = [group["lr"] for group in net.optimizer_.param_groups]
        self.total_steps_ = max(1, net.max_epochs * len(net.get_iterator(X, True)))
        self._set(net)

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.step_ += 1
            self._set(net)

    def _set(self, net):
        factor = math.cos(7.0 * math.pi * self.step_ / (16.0 * self.total_steps_))
        groups = net.optimizer_.param_groups
        for group, base_lr in zip(groups, self.base_lrs_, strict=True):
            group["lr"] = base_lr * factor


class BoostMISNet(NeuralNetClassifier):
    """skorch engine: FixMatch-style consistency with a swappable threshold.

    ``fit`` takes a :class:`~sklearn_boostmis.data.SemiSupervisedDataset` as
    ``X`` (and ``y=None``); prediction takes plain arrays and uses the EMA
    teacher ``ema_module_``.

    Parameters
    ----------
    module : torch.nn.Module class or instance
    mu : int, default=2
        Unlabeled rows per labeled row in a step.
    lambda_u : float, default=1.0
        Weight of the unsupervised loss.
    threshold : threshold policy, default=None
        A :class:`~sklearn_boostmis.thresholds.BaseThreshold` object, used as
        given (``fit`` restarts it); None = ``AdaptiveThreshold()``.
    ema_decay : float, default=0.999
    weak_augment, strong_augment : callable or "auto", default="auto"
    unsup_normalizer : {"batch", "selected"}, default="batch"
    class_weight : None or sequence of float, default=None
        Weight of each encoded class (0..C-1) in the supervised loss.
    prior_correction : None, str or PriorCorrection, default=None
        Class-prior correction of the losses and pseudo-labels
        (:func:`~sklearn_boostmis.imbalance.make_prior_correction`); None is
        the paper's method.
    class_prior : None or sequence of float, default=None
        The prior of the unlabeled rows (encoded class order, summing to 1)
        that ``prior_correction`` aligns pseudo-labels to; None: the smoothed
        labeled prior.
    precision : {None, "32", "bf16", "fp16"}, default=None
        Forward passes under :func:`torch.autocast` with this dtype (losses in
        float32); ``"fp16"`` adds a :class:`torch.amp.GradScaler`.
    seed : int, default=0
        Seeds data order and augmentations.
    **kwargs
        Any :class:`skorch.NeuralNetClassifier` parameter.
    """

    def __init__(
        self,
        module,
        *args,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=None,
        mu=2,
        lambda_u=1.0,
        threshold=None,
        ema_decay=0.999,
        weak_augment="auto",
        strong_augment="auto",
        unsup_normalizer="batch",
        class_weight=None,
        prior_correction=None,
        class_prior=None,
        precision=None,
        seed=0,
        **kwargs,
    ):
        super().__init__(
            module, *args, criterion=criterion, train_split=train_split, **kwargs
        )
        self.mu = mu
        self.lambda_u = lambda_u
        self.threshold = threshold
        self.ema_decay = ema_decay
        self.weak_augment = weak_augment
        self.strong_augment = strong_augment
        self.unsup_normalizer = unsup_normalizer
        self.class_weight = class_weight
        self.prior_correction = prior_correction
        self.class_prior = class_prior
        self.precision = precision
        self.seed = seed

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("cosine_lr", CosineLR()),
            ("print_log", PrintLog()),
        ]

    # -- initialisation -------------------------------------------------------
    def initialize_module(self):
        super().initialize_module()
        self.ema_module_ = make_teacher(self.module_)
        self.ema_updates_ = 0
        return self

    def initialize_optimizer(self, *args, **kwargs):
        """Build the optimizer over ``module_`` only (not the teacher), with no
        weight decay on biases and normalisation layers."""
        named = list(self.module_.named_parameters())
        exempt = {id(p) for n, p in named if n in no_weight_decay_names(self.module_)}
        (groups,), opt_kwargs = self.get_params_for_optimizer("optimizer", named)
        if "weight_decay" not in opt_kwargs:  # an optimizer without weight decay
            exempt = set()
        split = []
        for group in groups:
            decay = [p for p in group["params"] if id(p) not in exempt]
            no_decay = [p for p in group["params"] if id(p) in exempt]
            if decay:
                split.append({**group, "params": decay})
            if no_decay:
                split.append({**group, "params": no_decay, "weight_decay": 0.0})
        self.optimizer_ = self.optimizer(split, **opt_kwargs)
        return self

    # -- data -------------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        if training and isinstance(dataset, SemiSupervisedDataset):
            if getattr(self, "generator_", None) is None:
                self._new_generators(dataset.device)
            num_shards, shard_index = self._shards()
            return SemiSupervisedBatches(
                dataset,
                self.batch_size,
                self.mu,
                self.order_generator_,
                num_shards=num_shards,
                shard_index=shard_index,
            )
        iterator = super().get_iterator(dataset, training=training)
        if isinstance(iterator, DataLoader) and iterator.generator is None:
            # the worker seed a DataLoader draws each pass comes from its own
            # generator: predicting never shifts another thread's seeded fit
            iterator.generator = torch.Generator()
        return iterator

    def _shards(self):
        """``(number of data-parallel processes, this process's index)``."""
        return 1, 0

    def _reduce_sum(self, tensor):
        """Sum of ``tensor`` over the data-parallel processes."""
        return tensor

    def _merge_shards(self):
        """Merge the per-row state (``row_state_attributes``) over the processes,
        each of which visited its own rows, and average the floating-point
        buffers (BatchNorm statistics), which DDP does not keep equal."""
        visited = self._visited_rows
        for owner in (self.threshold_, self.memory_):
            for name in getattr(owner, "row_state_attributes", ()):
                state = getattr(owner, name)
                local = torch.where(visited, state.to(torch.long), 0)
                setattr(owner, name, self._reduce_sum(local).to(state.dtype))
        visited.zero_()
        num_shards = self._shards()[0]
        for module in (_unwrapped(self, self.module_), self.ema_module_):
            for buffer in module.buffers():
                if buffer.is_floating_point():
                    buffer.copy_(self._reduce_sum(buffer) / num_shards)

    def _new_generators(self, device):
        """Seed ``generator_`` (augmentations) and ``order_generator_`` (batches):
        one generator, unless data-parallel processes, which draw the same batch
        order, augment their own shards (``seed + process index``)."""
        num_shards, shard_index = self._shards()
        seed = int(self.seed)
        self.order_generator_ = torch.Generator(device=device).manual_seed(seed)
        self.generator_ = self.order_generator_
        if num_shards > 1:
            self.generator_ = torch.Generator(device=device)
            self.generator_.manual_seed(seed + shard_index)

    # -- hooks --------------------------------------------------------------
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if not isinstance(X, SemiSupervisedDataset):
            raise TypeError(
                "BoostMISNet.fit expects a SemiSupervisedDataset as X; use "
                "BoostMISClassifier for arrays with -1 for unlabeled rows"
            )
        device = X.device
        self._check_logits(X.X_labeled[:2].to(device))
        self._new_generators(device)
        dtype = autocast_dtype(self.precision)
        self.grad_scaler_ = None
        if dtype == torch.float16 and getattr(self, "accelerator", None) is None:
            self.grad_scaler_ = _grad_scaler(device.type)
        weak = strong = None
        if any(isinstance(p, str) for p in (self.weak_augment, self.strong_augment)):
            weak, strong = default_augmentations(X.X_labeled.ndim)
        self.weak_ = make_augmentation(self.weak_augment, weak)
        self.strong_ = make_augmentation(self.strong_augment, strong)
        to_fit = [a for a in (self.weak_, self.strong_) if hasattr(a, "fit")]
        if to_fit:  # the copy of every row is made only when something learns
            all_rows = torch.cat([X.X_labeled, X.X_unlabeled])
            for augment in to_fit:
                augment.fit(all_rows, generator=self.generator_)
                if not X.data_on_device:  # fitted on host rows
                    _move_tensor_state(augment, device)
        policy = self.threshold if self.threshold is not None else AdaptiveThreshold()
        self.threshold_ = policy.start(X.n_unlabeled, self.max_epochs, device)
        self.memory_ = PseudoLabelMemory(X.n_unlabeled, device)
        self.prior_correction_ = make_prior_correction(self.prior_correction)
        if self.prior_correction_ is not None:
            prior = smoothed_prior(X.y_labeled, len(self.classes))
            self.prior_correction_.start(prior, device, self.class_prior)
        self.class_weight_ = None
        if self.class_weight is not None:
            self.class_weight_ = torch.as_tensor(
                self.class_weight, dtype=torch.float32, device=device
            )
        self._visited_rows = None
        if self._shards()[0] > 1:
            self._visited_rows = torch.zeros(
                X.n_unlabeled, dtype=torch.bool, device=device
            )
        self.threshold_history_ = []
        self._ema_pairs = ema_pairs(self.ema_module_, self.module_)
        self._step_records = []

    def _check_logits(self, rows):
        """Refuse a module whose logits do not match the classes, before training
        (an eval-mode forward pass of two rows: no random numbers, no BN update)."""
        module = _unwrapped(self, self.module_)
        try:
            with torch.no_grad(), eval_mode(module):
                logits = module(rows)
        except RuntimeError as exc:
            raise ValueError(
                f"the module fails on samples of shape {tuple(rows.shape[1:])}: {exc}"
            ) from None
        n_classes = len(self.classes)
        if tuple(logits.shape) != (len(rows), n_classes):
            raise ValueError(
                f"the module maps {len(rows)} samples to outputs of shape "
                f"{tuple(logits.shape)}, but {n_classes} classes need logits of shape "
                f"({len(rows)}, {n_classes}): give the module {n_classes} outputs"
            )

    def on_batch_end(self, net, batch=None, training=False, **step):
        if not training:
            return
        self.ema_updates_ += 1
        decay = effective_decay(self.ema_decay, self.ema_updates_)
        ema_update(self.ema_module_, self.module_, decay, self._ema_pairs)
        # kept on the device; copied to the history once per epoch (one sync)
        values = [step[k] for k in STEP_RECORDS] + [step["loss"]]
        self._step_records.append(torch.stack(values).as_subclass(torch.Tensor))

    def on_epoch_end(self, net, **kwargs):
        if self._step_records:
            rows = torch.stack(self._step_records).tolist()
            batches = self.history[-1]["batches"]
            for batch, (*records, loss) in zip(batches, rows, strict=True):
                batch.update(zip(STEP_RECORDS, records, strict=True))
                if isinstance(batch.get("train_loss"), PendingFloat):
                    batch["train_loss"] = batch["train_loss"].resolve(loss)
            # epoch means (weighted like skorch's train_loss), for PrintLog
            sizes = [batch.get("train_batch_size", 1) for batch in batches]
            means = np.average(np.asarray(rows)[:, :-1], axis=0, weights=sizes)
            for key, value in zip(STEP_RECORDS, means, strict=True):
                self.history.record(key, float(value))
            self._step_records = []
        if self._visited_rows is not None:
            self._merge_shards()
        self.threshold_history_.append(float(self.threshold_.current_threshold()))
        self.threshold_.end_pass()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.generator_ = self.order_generator_ = None
        self.class_weight_ = None  # a device tensor: not kept in pickles
        self._ema_pairs = None
        self.ema_module_.eval()

    # -- steps --------------------------------------------------------------
    def _autocast(self, device_type):
        """Context of the forward passes: autocast at ``precision``."""
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=dtype)

    def _backward(self, loss):
        """``loss.backward()``, through the gradient scaler or accelerator."""
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None:
            accelerator.backward(loss)
        elif getattr(self, "grad_scaler_", None) is not None:
            self.grad_scaler_.scale(loss).backward()
        else:
            loss.backward()

    def train_step(self, batch, **fit_params):
        """skorch's step, with a gradient scaler when ``precision="fp16"``
        (gradients unscaled before ``on_grad_computed``). The returned
        ``"loss"`` reaches the host at epoch end (``sklearn_boostmis._deferred``).
        """
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            step = super().train_step(batch, **fit_params)
        else:
            step = self._scaled_train_step(scaler, batch, **fit_params)
        step["loss"] = defer_item(step["loss"])
        return step

    def _scaled_train_step(self, scaler, batch, **fit_params):
        # skorch's train_step with unscale_ before on_grad_computed, which skorch
        # notifies inside the optimizer closure (GradScaler.step takes none).
        accumulator = self.get_train_step_accumulator()
        self._zero_grad_optimizer()
        accumulator.store_step(self.train_step_single(batch, **fit_params))
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        for optimizer in optimizers:
            scaler.unscale_(optimizer)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
        return accumulator.get_step()

    def train_step_single(self, batch, **fit_params):
        if not self.module_.training:  # the teacher stays in eval mode
            self.module_.train()
        x_lab, y_lab, x_unl, idx, *weights = batch
        w_lab = weights[0] if weights else None
        device_type = x_lab.device.type
        x_lab_weak = self.weak_(x_lab)
        correction = self.prior_correction_
        if x_unl is None:
            with self._autocast(device_type):
                logits = self.module_(x_lab_weak)
            logits = logits.float()
            loss = supervised_loss(
                self._adjusted(logits), y_lab, self.class_weight_, w_lab
            )
            self._backward(loss)
            zero = torch.zeros((), device=loss.device)
            return {
                "loss": loss,
                "y_pred": logits,
                "sup_loss": loss.detach(),
                "unsup_loss": zero,
                "mask_ratio": zero,
                "threshold": zero,
            }
        with torch.no_grad():
            x_unl_weak = self.weak_(x_unl)
            with self._autocast(device_type):
                if len(x_unl) > 1:
                    logits_weak = self.module_(x_unl_weak)
                else:  # BatchNorm cannot train on one row: borrow the labeled batch
                    both = torch.cat([x_lab_weak, x_unl_weak])
                    logits_weak = self.module_(both)[-1:]
            if correction is None:
                proba_weak = F.softmax(logits_weak.float(), dim=1)
            else:
                proba_weak = correction.pseudo_label_proba(logits_weak)
        mask, pseudo_labels = self.threshold_(proba_weak, idx)
        if correction is not None and correction.classwise:
            mask = correction.classwise_mask(
                proba_weak.max(dim=1).values,
                pseudo_labels,
                self.threshold_.last_threshold_,
            )
        if self._visited_rows is not None:
            self._visited_rows[idx] = True
        self.memory_.update(idx, pseudo_labels, mask, self.threshold_.pass_ + 1)
        x_both = torch.cat([x_lab_weak, self.strong_(x_unl)])
        with self._autocast(device_type):
            logits = self.module_(x_both)
        logits = logits.float()
        n_lab = len(x_lab)
        sup = supervised_loss(
            self._adjusted(logits[:n_lab]), y_lab, self.class_weight_, w_lab
        )
        unsup = masked_consistency_loss(
            self._adjusted(logits[n_lab:], unlabeled=True),
            pseudo_labels,
            mask,
            self.unsup_normalizer,
        )
        loss = sup + self.lambda_u * unsup
        self._backward(loss)
        return {
            "loss": loss,
            "y_pred": logits[:n_lab],
            "sup_loss": sup.detach(),
            "unsup_loss": unsup.detach(),
            "mask_ratio": mask.float().mean(),
            "threshold": self.threshold_.last_threshold_,
        }

    def _adjusted(self, logits, unlabeled=False):
        """The logits a loss sees: ``z + tau log pi`` under a prior correction."""
        correction = self.prior_correction_
        if correction is None:
            return logits
        return correction.adjust_logits(logits, unlabeled)

    def evaluation_step(self, batch, training=False):
        """Forward pass of the EMA teacher (eval mode, no gradient)."""
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        with torch.no_grad():
            self.ema_module_.eval()
            with self._autocast(Xi.device.type):
                return self.ema_module_(Xi).float()


class AcceleratedBoostMISNet(AccelerateMixin, BoostMISNet):
    """:class:`BoostMISNet` with skorch's :class:`~skorch.hf.AccelerateMixin`.

    Pass ``accelerator=accelerate.Accelerator(...)`` and ``device=None``: the
    accelerator places the student, criterion and optimizer and wraps the
    backward pass and the evaluation batches; the frozen EMA teacher is only
    moved to its device. Under several processes each takes its share of
    every step and all end with the same state (user guide,
    :ref:`user-guide-gpu`). Not picklable while it holds the accelerator;
    export with :func:`~sklearn_boostmis.save_weights`.
    """

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        # Under several processes, prepare() wraps modules in DDP, which refuses
        # a module without trainable parameters (the teacher, the criterion).
        modules, criteria = self._modules, self._criteria
        frozen = [name for name in criteria if not self._trains(name)]
        self._modules = [name for name in modules if name != "ema_module"]
        self._criteria = [name for name in criteria if name not in frozen]
        try:
            super()._initialize_accelerator()
        finally:
            self._modules, self._criteria = modules, criteria
        for name in ["ema_module", *frozen]:
            getattr(self, name + "_").to(self.accelerator.device)
        return self

    def _trains(self, name):
        component = getattr(self, name + "_")
        return isinstance(component, torch.nn.Module) and any(
            p.requires_grad for p in component.parameters()
        )

    def _shards(self):
        return self.accelerator.num_processes, self.accelerator.process_index

    def _reduce_sum(self, tensor):
        return self.accelerator.reduce(tensor, reduction="sum")

    def _autocast(self, device_type):
        return self.accelerator.autocast()

    # AccelerateMixin.train_step_single would replace the BoostMIS step; ours
    # reaches the accelerator through _autocast and _backward.
    train_step_single = BoostMISNet.train_step_single


def _unwrapped(net, module):
    accelerator = getattr(net, "accelerator", None)
    return module if accelerator is None else accelerator.unwrap_model(module)


def module_states(net):
    """State dicts of the student (``"module"``) and the EMA teacher
    (``"ema_module"``), unwrapped from an accelerator's DDP wrapper."""
    return {
        "module": _unwrapped(net, net.module_).state_dict(),
        "ema_module": net.ema_module_.state_dict(),
    }


def load_module_states(net, states):
    """Load :func:`module_states` into an initialized network; torch's
    ``RuntimeError`` when they do not fit its modules."""
    _unwrapped(net, net.module_).load_state_dict(states["module"])
    net.ema_module_.load_state_dict(states["ema_module"])
    net.ema_module_.eval()
