"""The skorch training engine of :class:`BoostMISClassifier`.

:class:`BoostMISNet` is a :class:`skorch.NeuralNetClassifier` that overrides only
documented seams: ``initialize_module`` (adds the EMA teacher ``ema_module_``),
``initialize_optimizer`` (no weight decay on biases and normalisation layers),
``get_iterator`` (labeled + unlabeled batches), ``train_step_single`` (the
losses), ``evaluation_step`` (predict with the teacher), the net's own
``on_*`` hooks, and ``_default_callbacks``. It only ever sees encoded labels
0..C-1 and never -1.
"""

import math

import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from .augment import default_augmentations, make_augmentation
from .data import SemiSupervisedBatches, SemiSupervisedDataset
from .ema import effective_decay, ema_pairs, ema_update, make_teacher
from .losses import masked_consistency_loss, supervised_loss
from .memory import PseudoLabelMemory
from .modules import no_weight_decay_names
from .thresholds import AdaptiveThreshold, make_threshold

STEP_RECORDS = ("sup_loss", "unsup_loss", "mask_ratio", "threshold")


class CosineLR(Callback):
    """Per-step cosine decay ``lr0 * cos(7 pi k / (16 K))`` (METHOD.md).

    ``K`` is the number of steps of the current ``fit``; the schedule restarts
    at every ``fit`` (each annotation cycle).
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
        A :mod:`~sklearn_boostmis.thresholds` object; None = AdaptiveThreshold().
    ema_decay : float, default=0.999
    weak_augment, strong_augment : callable or "auto", default="auto"
    unsup_normalizer : {"batch", "selected"}, default="batch"
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

    def set_n_annotated(self, n_annotated, quota):
        """Feed N_A and K of the last annotation round to an adaptive threshold."""
        if not isinstance(self.threshold, AdaptiveThreshold):
            raise TypeError("N_A only applies to AdaptiveThreshold")
        self.threshold = self.threshold.set_params(n_annotated=n_annotated, quota=quota)
        return self

    # -- data -------------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        if training and isinstance(dataset, SemiSupervisedDataset):
            if not hasattr(self, "generator_") or self.generator_ is None:
                self.generator_ = self._new_generator(dataset.X_labeled.device)
            return SemiSupervisedBatches(
                dataset, self.batch_size, self.mu, self.generator_
            )
        return super().get_iterator(dataset, training=training)

    def _new_generator(self, device):
        return torch.Generator(device=device).manual_seed(int(self.seed))

    # -- hooks --------------------------------------------------------------
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if not isinstance(X, SemiSupervisedDataset):
            raise TypeError(
                "BoostMISNet.fit expects a SemiSupervisedDataset as X; use "
                "BoostMISClassifier for arrays with -1 for unlabeled rows"
            )
        device = X.X_labeled.device
        self.generator_ = self._new_generator(device)
        all_rows = torch.cat([X.X_labeled, X.X_unlabeled])
        params = (self.weak_augment, self.strong_augment)
        needs_default = any(isinstance(p, str) for p in params)
        weak, strong = (
            default_augmentations(all_rows.ndim) if needs_default else (None, None)
        )
        self.weak_ = make_augmentation(self.weak_augment, weak)
        self.strong_ = make_augmentation(self.strong_augment, strong)
        for augment in (self.weak_, self.strong_):
            if hasattr(augment, "fit"):
                augment.fit(all_rows, generator=self.generator_)
        policy = self.threshold if self.threshold is not None else AdaptiveThreshold()
        self.threshold_ = make_threshold(policy).start(
            X.n_unlabeled, self.max_epochs, device
        )
        self.memory_ = PseudoLabelMemory(X.n_unlabeled, device)
        self.threshold_history_ = []
        self._ema_pairs = ema_pairs(self.ema_module_, self.module_)
        self._step_records = []

    def on_batch_end(self, net, batch=None, training=False, **step):
        if not training:
            return
        self.ema_updates_ += 1
        decay = effective_decay(self.ema_decay, self.ema_updates_)
        ema_update(self.ema_module_, self.module_, decay, self._ema_pairs)
        # kept on the device; copied to the history once per epoch (one sync)
        self._step_records.append(torch.stack([step[k] for k in STEP_RECORDS]))

    def on_epoch_end(self, net, **kwargs):
        if self._step_records:
            rows = torch.stack(self._step_records).tolist()
            for batch, row in zip(self.history[-1]["batches"], rows, strict=True):
                batch.update(zip(STEP_RECORDS, row, strict=True))
            self._step_records = []
        self.threshold_history_.append(float(self.threshold_.current_threshold()))
        self.threshold_.end_pass()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.generator_ = None
        self._ema_pairs = None
        self.ema_module_.eval()

    # -- steps --------------------------------------------------------------
    def train_step_single(self, batch, **fit_params):
        if not self.module_.training:  # the teacher stays in eval mode
            self.module_.train()
        x_lab, y_lab, x_unl, idx = batch
        x_lab_weak = self.weak_(x_lab)
        if x_unl is None:
            logits = self.module_(x_lab_weak)
            loss = supervised_loss(logits, y_lab)
            loss.backward()
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
            if len(x_unl) > 1:
                logits_weak = self.module_(x_unl_weak)
            else:  # BatchNorm cannot train on one row: borrow the labeled batch
                logits_weak = self.module_(torch.cat([x_lab_weak, x_unl_weak]))[-1:]
            proba_weak = F.softmax(logits_weak, dim=1)
        mask, pseudo_labels = self.threshold_(proba_weak, idx)
        self.memory_.update(idx, pseudo_labels, mask, self.threshold_.pass_ + 1)
        logits = self.module_(torch.cat([x_lab_weak, self.strong_(x_unl)]))
        n_lab = len(x_lab)
        sup = supervised_loss(logits[:n_lab], y_lab)
        unsup = masked_consistency_loss(
            logits[n_lab:], pseudo_labels, mask, self.unsup_normalizer
        )
        loss = sup + self.lambda_u * unsup
        loss.backward()
        return {
            "loss": loss,
            "y_pred": logits[:n_lab],
            "sup_loss": sup.detach(),
            "unsup_loss": unsup.detach(),
            "mask_ratio": mask.float().mean(),
            "threshold": self.threshold_.last_threshold_,
        }

    def evaluation_step(self, batch, training=False):
        """Forward pass of the EMA teacher (eval mode, no gradient)."""
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.no_grad():
            self.ema_module_.eval()
            return self.ema_module_(to_tensor(Xi, device=self.device))
