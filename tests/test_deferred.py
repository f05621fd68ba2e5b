import copy
import pickle

import numpy as np
import pytest
import torch

from sklearn_boostmis._deferred import DeferredLoss, PendingFloat, defer_item


def test_defer_item_detaches_and_defers():
    weight = torch.tensor(3.0, requires_grad=True)
    loss = defer_item(weight * 2.0)
    assert isinstance(loss, DeferredLoss) and not loss.requires_grad
    pending = loss.item()
    assert isinstance(pending, PendingFloat)
    assert pending._value is None  # nothing read yet
    assert float(pending) == 6.0
    assert pending._tensor is None  # read once, tensor released


def test_pending_float_acts_as_a_number():
    value = PendingFloat(torch.tensor(2.5))
    assert value + 1 == 3.5 and 1 + value == 3.5 and value * 2 == 5.0
    assert 10 / value == 4.0 and value - 0.5 == 2.0 and -value == -2.5
    assert value > 2 and value <= 2.5 and value == 2.5
    assert f"{value:.2f}" == "2.50" and repr(value) == "2.5"
    assert round(value) == 2 and int(value) == 2 and bool(value)
    assert value + PendingFloat(torch.tensor(0.5)) == 3.0
    for copied in (pickle.loads(pickle.dumps(value)), copy.deepcopy(value)):
        assert type(copied) is float and copied == 2.5


def test_resolve_with_a_host_value_skips_the_device():
    value = PendingFloat(torch.tensor(1.0))
    assert value.resolve(1.0) == 1.0
    assert value._tensor is None
    with pytest.raises(ZeroDivisionError):
        1 / PendingFloat(torch.tensor(0.0))


def test_numpy_functions_take_a_pending_float():  # e.g. a NaN guard in a callback
    value = PendingFloat(torch.tensor(float("nan")))
    assert not np.isfinite(value) and np.isnan(np.float32(2) * value)
    assert np.asarray(PendingFloat(torch.tensor(1.5)), dtype=np.float32) == 1.5
