import numpy as np
import pytest
import torch
from torch import nn

from sklearn_boostmis.modules import (
    MLPClassifierModule,
    no_weight_decay_names,
    resolve_device,
    supports_embedding,
)


def test_forward_is_head_of_embed():
    module = MLPClassifierModule(5, 4, hidden_units=(16, 8), dropout=0.1).eval()
    x = torch.randn(6, 5)
    z = module.embed(x)
    assert z.shape == (6, 8)
    assert torch.equal(module(x), module.head(z))
    assert module(x).shape == (6, 4)
    assert supports_embedding(module)
    assert not supports_embedding(nn.Linear(2, 2))


def test_batch_norm_can_be_left_out():
    with_bn = MLPClassifierModule(3, 2, hidden_units=(4, 5))
    without = MLPClassifierModule(3, 2, hidden_units=(4, 5), batch_norm=False)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in with_bn.modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm1d) for m in without.modules())
    x = torch.randn(1, 3)  # one row: only possible without BatchNorm in training
    assert without.train()(x).shape == (1, 2)
    assert torch.equal(without.eval()(x), without.head(without.embed(x)))


@pytest.mark.parametrize("units", [7, np.int64(7), (7,), [np.int32(7)], np.array([7])])
def test_int_hidden_units(units):
    module = MLPClassifierModule(3, 2, hidden_units=units)
    assert module.embed(torch.zeros(2, 3)).shape == (2, 7)


@pytest.mark.parametrize("bad", [(), "64", (0,), (3.5,), (True,), None])
def test_bad_hidden_units(bad):
    with pytest.raises(ValueError, match="hidden_units must be a non-empty sequence"):
        MLPClassifierModule(3, 2, hidden_units=bad)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_bad_dropout(dropout):
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        MLPClassifierModule(3, 2, dropout=dropout)


def test_no_weight_decay_names_cover_bias_and_norm():
    names = no_weight_decay_names(MLPClassifierModule(3, 2, hidden_units=(4,)))
    assert names == {
        "encoder.0.bias",
        "encoder.1.weight",
        "encoder.1.bias",
        "classifier.bias",
    }


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
