"""Contracts of the adapters: where sample weights meet each distiller's real-data loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adapters.dm import weighted_class_means
from adapters.gradient_matching import weighted_cross_entropy
from adapters.sampling import ClassSampler

LABELS = torch.tensor([0] * 12 + [1] * 9 + [2] * 15)


def _sampler(weights, mode, seed=0):
    return ClassSampler(LABELS, weights, 3, mode=mode, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["resample", "reweight"])
@pytest.mark.parametrize("value", [1.0, 2.5])
def test_uniform_weights_draw_exactly_like_the_unweighted_method(mode, value):
    indices, coefficients = _sampler(torch.full((36,), value), mode).sample_all(6)
    g = torch.Generator().manual_seed(0)
    expected = torch.stack([torch.nonzero(LABELS == c)[:, 0][torch.randperm(int((LABELS == c).sum()), generator=g)[:6]]
                            for c in range(3)])
    assert torch.equal(indices, expected)
    assert torch.equal(coefficients, torch.full((3, 6), 1.0 / 6))


def test_uniform_weights_give_the_unweighted_losses():
    emb = torch.randn(3, 6, 5)
    uniform = torch.full((3, 6), 1.0 / 6)
    torch.testing.assert_close(weighted_class_means(emb, uniform), emb.mean(dim=1), rtol=0, atol=1e-6)
    logits, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(weighted_cross_entropy(logits, targets, uniform[0]), F.cross_entropy(logits, targets),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["resample", "reweight"])
def test_one_hot_weight_makes_the_class_mean_that_sample(mode):
    weights = torch.ones(36)
    weights[12:21] = 0.0
    weights[15] = 1.0  # class 1 is all on sample 15
    sampler = _sampler(weights, mode)
    indices, coefficients = sampler.sample_all(9)  # 9 = class 1's size: reweight sees the whole class
    features = torch.randn(36, 4)
    means = weighted_class_means(features[indices], coefficients)
    torch.testing.assert_close(means[1], features[15], rtol=0, atol=1e-6)
    if mode == "resample":
        assert (indices[1] == 15).all()


def test_reweight_refuses_a_batch_with_no_weight():
    weights = torch.ones(36)
    weights[12:21] = 0.0
    weights[15] = 1.0
    sampler = _sampler(weights, "reweight")
    with pytest.raises(ValueError, match="resample"):
        for _ in range(50):
            sampler.sample(1, 2)


def test_gradients_reach_synthetic_images_and_never_the_weights():
    weights = torch.rand(36, requires_grad=True)
    indices, coefficients = _sampler(weights, "reweight").sample_all(5)
    assert not coefficients.requires_grad
    real = torch.randn(36, 8)
    syn = torch.randn(3, 2, 8, requires_grad=True)
    loss = ((weighted_class_means(real[indices], coefficients) - syn.mean(dim=1)) ** 2).sum()
    logits = syn.reshape(6, 8) @ torch.randn(8, 3)
    loss = loss + weighted_cross_entropy(logits, torch.tensor([0, 0, 1, 1, 2, 2]), coefficients[0, :6].repeat(2)[:6])
    loss.backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0
    assert weights.grad is None


def test_resample_matches_reweight_in_expectation():
    g = torch.Generator().manual_seed(1)
    labels = torch.zeros(20, dtype=torch.long)
    weights = torch.rand(20, generator=g) ** 3 * 5
    values = torch.randn(20, generator=g)
    target = (weights * values).sum() / weights.sum()
    for mode in ("resample", "reweight"):
        sampler = ClassSampler(labels, weights, 1, mode=mode, generator=torch.Generator().manual_seed(0))
        estimates = []
        for _ in range(4000):
            idx, coef = sampler.sample(0, 8)
            estimates.append((coef * values[idx]).sum())
        assert abs(torch.stack(estimates).mean() - target) < 0.03, mode  # standard error ~0.005


def test_resample_draws_proportionally_to_weight():
    weights = torch.ones(36)
    weights[0] = 11.0  # class 0: sample 0 holds half of the weight
    idx, _ = _sampler(weights, "resample").sample(0, 4000)
    assert abs((idx == 0).float().mean().item() - 0.5) < 0.03


def test_state_dict_resumes_the_same_draws():
    weights = torch.rand(36)
    sampler = _sampler(weights, "resample")
    sampler.sample_all(4)
    state = sampler.state_dict()
    expected = sampler.sample_all(4)
    other = _sampler(weights, "resample", seed=99)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.sample_all(4), expected))


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="resample, reweight"):
        ClassSampler(LABELS, torch.ones(36), 3, mode="importance")
    with pytest.raises(ValueError, match="at most 9"):
        _sampler(torch.ones(36), "resample").sample_all(10)
    assert _sampler(torch.ones(36), "resample").max_batch == 9
