import pytest
import torch
import torch.nn.functional as F

from sklearn_boostmis.losses import masked_consistency_loss, supervised_loss


def test_supervised_loss_is_mean_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    expected = (
        F.cross_entropy(logits[:1], y[:1]) + F.cross_entropy(logits[1:], y[1:])
    ) / 2
    assert supervised_loss(logits, y) == pytest.approx(float(expected))


def test_supervised_loss_class_weights_give_weighted_mean():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    per_row = F.cross_entropy(logits, y, reduction="none")
    w = torch.tensor([3.0, 0.5])
    expected = (3.0 * per_row[0] + 0.5 * per_row[1] + 0.5 * per_row[2]) / 4.0
    assert supervised_loss(logits, y, w) == pytest.approx(float(expected))
    assert supervised_loss(logits, y, w) != pytest.approx(float(per_row.mean()))


def test_masked_rows_contribute_nothing_and_batch_normalizer():
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    mask = torch.tensor([True, False, False])
    per_row = F.cross_entropy(logits, labels, reduction="none")
    loss = masked_consistency_loss(logits, labels, mask)
    assert float(loss) == pytest.approx(float(per_row[0]) / 3)
    selected = masked_consistency_loss(logits, labels, mask, normalizer="selected")
    assert float(selected) == pytest.approx(float(per_row[0]))


def test_empty_mask_gives_zero_loss_with_gradient_path():
    logits = torch.randn(4, 3, requires_grad=True)
    loss = masked_consistency_loss(
        logits,
        torch.zeros(4, dtype=torch.long),
        torch.zeros(4, dtype=torch.bool),
        normalizer="selected",
    )
    loss.backward()
    assert loss.detach().item() == 0.0
    assert torch.count_nonzero(logits.grad) == 0


def test_unknown_normalizer():
    with pytest.raises(ValueError, match="normalizer"):
        masked_consistency_loss(
            torch.zeros(1, 2),
            torch.zeros(1, dtype=torch.long),
            torch.ones(1, dtype=torch.bool),
            normalizer="mean",
        )
