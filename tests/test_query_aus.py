import pytest
import torch
from torch import nn

from sklearn_boostmis.query import adversarial_instability


class EmbedHead(nn.Module):
    """Identity embedding with a hand-built linear head: logits = [z0, -z0]."""

    def __init__(self, n_features=2, with_bn=False):
        super().__init__()
        self.bn = nn.BatchNorm1d(n_features) if with_bn else nn.Identity()
        self.linear = nn.Linear(n_features, 2)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[0, 0] = 1.0
            self.linear.weight[1, 0] = -1.0
            self.linear.bias.zero_()

    def embed(self, X):
        return self.bn(X)

    def head(self, Z):
        return self.linear(Z)

    def forward(self, X):
        return self.head(self.embed(X))


class InputOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = EmbedHead()

    def forward(self, X):
        return self.net(X)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _points():
    # Rows 0-1 sit near the boundary z0 = 0, rows 2-3 far from it.
    return torch.tensor([[0.1, 0.3], [-0.2, -1.0], [6.0, 0.5], [-5.0, 2.0]])


def test_near_boundary_scores_higher():
    scores = adversarial_instability(EmbedHead(), _points(), generator=_gen())
    assert scores.shape == (4,)
    assert scores.dtype == torch.float32
    assert torch.all(scores >= 0)
    assert scores[:2].min() > 10 * scores[2:].max()


def test_matches_closed_form_on_linear_head():
    # One power iteration on a linear head aligns d with the decision axis
    # w = (1, 0) up to an arbitrary sign, so r_adv = (+-eps, 0); symmetric
    # scoring takes the larger of the two KLs.
    X = torch.tensor([[0.5, 0.0], [-1.5, 2.0]])
    eps = 0.7
    scores = adversarial_instability(
        EmbedHead(), X, eps=eps, symmetric=True, generator=_gen()
    )

    def kl(z0, z0_adv):
        p = torch.softmax(torch.tensor([z0, -z0]), 0)
        q = torch.softmax(torch.tensor([z0_adv, -z0_adv]), 0)
        return (p * (p.log() - q.log())).sum()

    expected = torch.stack(
        [torch.maximum(kl(z0, z0 - eps), kl(z0, z0 + eps)) for z0 in (0.5, -1.5)]
    )
    torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-6)


def test_no_parameter_grad_and_mode_restored():
    module = EmbedHead(with_bn=True)
    module.train()
    module.bn.eval()  # mixed modes must come back exactly
    X = torch.randn(50, 2, generator=_gen(1))
    running_mean = module.bn.running_mean.clone()
    adversarial_instability(module, X, batch_size=16, generator=_gen())
    assert all(p.grad is None for p in module.parameters())
    assert module.training and module.linear.training
    assert not module.bn.training
    # eval mode during scoring: BatchNorm statistics were not updated
    torch.testing.assert_close(module.bn.running_mean, running_mean)


def test_mode_restored_on_error():
    module = EmbedHead()
    module.train()
    with pytest.raises(RuntimeError):
        adversarial_instability(module, torch.zeros(3, 5), generator=_gen())
    assert module.training


def test_deterministic_under_seed_and_seed_dependent():
    module = EmbedHead()
    X = torch.randn(40, 2, generator=_gen(2))
    a = adversarial_instability(module, X, n_power=0, batch_size=7, generator=_gen(3))
    b = adversarial_instability(module, X, n_power=0, batch_size=7, generator=_gen(3))
    c = adversarial_instability(module, X, n_power=0, batch_size=7, generator=_gen(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_batching_does_not_change_power_iteration_scores():
    # After one power iteration on a linear head the direction is +-w whatever
    # the random start, so symmetric scores must not depend on batching.
    module = EmbedHead()
    X = torch.randn(30, 2, generator=_gen(5))
    a = adversarial_instability(
        module, X, symmetric=True, batch_size=4, generator=_gen(8)
    )
    b = adversarial_instability(
        module, X, symmetric=True, batch_size=1000, generator=_gen(9)
    )
    torch.testing.assert_close(a, b)


def test_symmetric_at_least_one_sided():
    module = EmbedHead()
    X = torch.randn(40, 2, generator=_gen(6))
    one = adversarial_instability(module, X, n_power=0, generator=_gen(7))
    sym = adversarial_instability(
        module, X, n_power=0, symmetric=True, generator=_gen(7)
    )
    assert torch.all(sym >= one)
    assert torch.any(sym > one + 1e-6)


def test_input_space_fallback_warns_and_scores():
    X = _points()
    with pytest.warns(UserWarning, match="representation-space perturbation"):
        fallback = adversarial_instability(InputOnly(), X, generator=_gen())
    direct = adversarial_instability(EmbedHead(), X, generator=_gen())
    # identity embedding: input and representation perturbations coincide
    torch.testing.assert_close(fallback, direct)


def test_zero_gradient_gives_zero_score_not_nan():
    module = EmbedHead()
    with torch.no_grad():
        module.linear.weight.zero_()  # constant prediction: gradient is 0
    scores = adversarial_instability(module, _points(), generator=_gen())
    assert torch.equal(scores, torch.zeros(4))


def test_a_float64_array_is_scored_like_float32_rows():
    X = _points()
    expected = adversarial_instability(EmbedHead(), X, generator=_gen())
    scores = adversarial_instability(EmbedHead(), X.double().numpy(), generator=_gen())
    torch.testing.assert_close(scores, expected)


def test_empty_and_invalid():
    assert adversarial_instability(EmbedHead(), torch.zeros(0, 2)).shape == (0,)
    with pytest.raises(ValueError):
        adversarial_instability(EmbedHead(), _points(), n_power=-1)
    with pytest.raises(ValueError):
        adversarial_instability(EmbedHead(), _points(), batch_size=0)


def test_embedded_input_skips_embed_and_gives_the_same_scores():
    module = EmbedHead(n_features=3, with_bn=True).eval()
    with torch.no_grad():
        module.bn.running_mean.fill_(0.5)
        module.bn.running_var.fill_(2.0)
    X = torch.randn(40, 3, generator=_gen(1))
    from_inputs = adversarial_instability(module, X, generator=_gen(2), batch_size=16)
    with torch.no_grad():
        Z = module.embed(X)

    def must_not_run(x):
        raise AssertionError("embed ran on representations")

    module.embed = must_not_run
    from_z = adversarial_instability(
        module, Z, generator=_gen(2), batch_size=16, embedded=True
    )
    assert torch.equal(from_inputs, from_z)
    with pytest.raises(ValueError, match="embedded=True needs"):
        adversarial_instability(InputOnly(), X, embedded=True)
