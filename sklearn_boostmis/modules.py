"""Built-in networks that follow the module protocol.

The protocol (method page, :ref:`method-module-protocol`): a module usable for
representation-space AUS exposes ``embed(X) -> Z`` and ``head(Z) -> logits``
with ``forward(X) == head(embed(X))``.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import torch
from torch import nn

from ._utils import is_int


class MLPClassifierModule(nn.Module):
    """Multi-layer perceptron for feature vectors, with ``embed`` and ``head``.

    Each hidden block is ``Linear -> BatchNorm1d -> ReLU -> Dropout``; the head is
    one ``Linear`` layer on the last hidden representation, so ``embed`` returns
    the penultimate representation that the adversarial selector perturbs.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_classes : int
        Number of classes (size of the logits).
    hidden_units : sequence of int, default=(256,)
        Width of each hidden block.
    dropout : float, default=0.2
        Dropout probability after each hidden block.
    batch_norm : bool, default=True
        Whether each hidden block has ``BatchNorm1d``. How much these two
        settings matter to BoostMIS: see the benchmarks
        (``benchmarks/RESULTS.md``).

    Examples
    --------
    >>> import torch
    >>> module = MLPClassifierModule(n_features=4, n_classes=3).eval()
    >>> x = torch.zeros(2, 4)
    >>> torch.equal(module(x), module.head(module.embed(x)))
    True
    """

    def __init__(
        self, n_features, n_classes, hidden_units=(256,), dropout=0.2, batch_norm=True
    ):
        super().__init__()
        if isinstance(hidden_units, Integral):
            hidden_units = (hidden_units,)
        if isinstance(hidden_units, np.ndarray) and hidden_units.ndim == 1:
            hidden_units = tuple(hidden_units.tolist())
        if (
            isinstance(hidden_units, str)
            or not isinstance(hidden_units, Sequence)
            or not hidden_units
            or not all(is_int(u) and u > 0 for u in hidden_units)
        ):
            raise ValueError(
                "hidden_units must be a non-empty sequence of positive ints, "
                f"got {hidden_units!r}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers = []
        width = int(n_features)
        for units in hidden_units:
            layers.append(nn.Linear(width, int(units)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(units)))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(units)
        self.encoder = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, int(n_classes))

    def embed(self, X):
        """Return the penultimate representation ``z = f(X)``."""
        return self.encoder(X)

    def head(self, Z):
        """Return the logits ``h(z)``."""
        return self.classifier(Z)

    def forward(self, X):
        return self.head(self.embed(X))


def supports_embedding(module):
    """Whether ``module`` exposes the ``embed``/``head`` protocol."""
    return all(callable(getattr(module, name, None)) for name in ("embed", "head"))


@contextmanager
def eval_mode(module):
    """Evaluation mode inside the block; every submodule's own mode restored after
    (a frozen submodule may be in evaluation mode inside one in training mode)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, was_training in modes:
            m.training = was_training


def no_weight_decay_names(module):
    """Names of parameters exempt from weight decay, as in the authors' configuration
    (:ref:`method-training`): biases and normalisation layers."""
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    return {
        f"{module_name}.{param_name}" if module_name else param_name
        for module_name, sub in module.named_modules()
        for param_name, _ in sub.named_parameters(recurse=False)
        if isinstance(sub, norm_types) or param_name == "bias"
    }


def resolve_device(device):
    """Map ``"auto"`` to ``"cuda"`` when available, else ``"cpu"``; a ``ValueError``
    for a device this machine's PyTorch cannot use."""
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available to this PyTorch "
            f"build ({torch.__version__}); use device='auto' or 'cpu'"
        )
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1')"
        ) from None
    try:  # a backend this PyTorch build or machine lacks
        usable = kind != "meta" and torch.empty(1, device=device).numel() == 1
    except (RuntimeError, ValueError):
        usable = False
    if not usable:
        raise ValueError(
            f"device={device!r} is not usable with this PyTorch build "
            f"({torch.__version__}) on this machine; use device='auto' or 'cpu'"
        )
    return device
