"""Per-batch losses that reach the host once per epoch, not once per step.

skorch records ``step["loss"].item()`` after every batch, which on a GPU waits
for the device. The engine hands skorch a :class:`DeferredLoss`, whose ``item()``
is a :class:`PendingFloat` read when first used as a number, and replaces those
in the history with floats at epoch end; the CPU behaves the same way (user
guide, :ref:`user-guide-callbacks`).
"""

import numpy as np
import torch


class PendingFloat:
    """A float still on the device: read (one host sync) on first numeric use."""

    __slots__ = ("_tensor", "_value")

    def __init__(self, tensor):
        self._tensor = tensor
        self._value = None

    def resolve(self, value=None):
        """The float; ``value`` (already on the host) avoids a device read."""
        if self._value is None:
            self._value = float(self._tensor) if value is None else float(value)
            self._tensor = None
        return self._value

    def __float__(self):
        return self.resolve()

    def __array__(self, dtype=None, copy=None):  # numpy functions, np.isfinite
        return np.asarray(self.resolve(), dtype=dtype)

    def __repr__(self):
        return repr(self.resolve())

    def __format__(self, spec):
        return format(self.resolve(), spec)

    def __hash__(self):
        return hash(self.resolve())

    def __bool__(self):
        return bool(self.resolve())

    def __reduce__(self):  # pickles (and copies) as a plain float
        return (float, (self.resolve(),))


def _numeric(name):
    def method(self, *args):
        args = [a.resolve() if isinstance(a, PendingFloat) else a for a in args]
        return getattr(self.resolve(), f"__{name}__")(*args)

    method.__name__ = f"__{name}__"
    return method


for _name in (
    "add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod rmod "
    "pow rpow neg pos abs round int trunc floor ceil lt le gt ge eq ne"
).split():
    setattr(PendingFloat, f"__{_name}__", _numeric(_name))


class DeferredLoss(torch.Tensor):
    """A detached loss tensor whose ``item()`` is a :class:`PendingFloat`."""

    def item(self):
        return PendingFloat(self.as_subclass(torch.Tensor))


def defer_item(loss):
    """``loss`` detached, as a :class:`DeferredLoss`."""
    return loss.detach().as_subclass(DeferredLoss)
