"""DM: runs with every weighter, one-pass embedding equals the per-class loop, resume equals an uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from dd_plugins.registry import get_method
from method_weights import weights_for
from reference_methods.augment import DSAugment
from reference_methods.methods.dm import DM, class_embedding_loss, class_embedding_loss_per_class
from reference_methods.nets import ConvNet

CPU = torch.device("cpu")
TINY = dict(ipc=2, batch_real=8, net_width=8, net_depth=2)


@pytest.mark.parametrize("weighter", ["uniform", "oracle"])
@pytest.mark.parametrize("sampling", ["resample", "reweight"])
def test_dm_runs_with_every_weighter_and_returns_a_set_of_the_right_shape(tiny_biased_dataset, weighter, sampling):
    data = tiny_biased_dataset
    syn = get_method("dm", iterations=3, sampling=sampling, **TINY).distill(data, weights_for(data, weighter), device=CPU, seed=0)
    assert syn.images.shape == (6, 3, 16, 16)
    assert torch.equal(syn.labels, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert torch.isfinite(syn.images).all() and syn.extras["final_loss"] > 0


def test_dm_moves_the_images_and_is_reproducible(tiny_biased_dataset):
    data, weights = tiny_biased_dataset, torch.ones(120)
    start = DM(iterations=0, **TINY).distill(data, weights, device=CPU, seed=1).images
    first = DM(iterations=3, **TINY).distill(data, weights, device=CPU, seed=1).images
    again = DM(iterations=3, **TINY).distill(data, weights, device=CPU, seed=1).images
    assert torch.equal(first, again)
    assert not torch.equal(first, start)
    assert any(torch.equal(start[0], x) for x in data.train.images[data.train.labels == 0])  # real init


def test_one_pass_embedding_equals_the_per_class_loop():
    torch.manual_seed(0)
    net = ConvNet(3, 3, (16, 16), width=8, depth=2)
    real, syn = torch.randn(3 * 5, 3, 16, 16), torch.randn(3 * 2, 3, 16, 16, requires_grad=True)
    coefficients = torch.rand(3, 5)
    coefficients = coefficients / coefficients.sum(dim=1, keepdim=True)
    aug = DSAugment()
    params = aug.sample_params(torch.Generator().manual_seed(0))
    one_pass = class_embedding_loss(net, aug.apply(real, params), coefficients, aug.apply(syn, params))
    grad_one_pass, = torch.autograd.grad(one_pass, syn)
    loop = class_embedding_loss_per_class(net, aug.apply(real, params), coefficients, aug.apply(syn, params))
    grad_loop, = torch.autograd.grad(loop, syn)
    torch.testing.assert_close(one_pass, loop, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_one_pass, grad_loop, rtol=1e-4, atol=1e-6)


def _count_steps(monkeypatch) -> list:
    """Count DM iterations from here on (to tell a resumed run from one that silently started over)."""
    import reference_methods.methods.dm as dm_module
    real_loss, calls = dm_module.class_embedding_loss, []

    def counted(*args):
        calls.append(1)
        return real_loss(*args)

    monkeypatch.setattr(dm_module, "class_embedding_loss", counted)
    return calls


def test_resumed_run_ends_equal_to_an_uninterrupted_run(tiny_biased_dataset, tmp_path, monkeypatch):
    data = tiny_biased_dataset
    weights = weights_for(data, "oracle")
    uninterrupted = DM(iterations=6, **TINY).distill(data, weights, device=CPU, seed=3)
    DM(iterations=4, checkpoint_every=2, **TINY).distill(data, weights, device=CPU, seed=3, checkpoint_dir=tmp_path)
    steps = _count_steps(monkeypatch)
    resumed = DM(iterations=6, checkpoint_every=2, **TINY).distill(data, weights, device=CPU, seed=3, checkpoint_dir=tmp_path)
    assert len(steps) == 2
    assert torch.equal(resumed.images, uninterrupted.images)


def test_run_killed_mid_way_resumes_from_its_last_checkpoint(tiny_biased_dataset, tmp_path, monkeypatch):
    data, weights = tiny_biased_dataset, weights_for(tiny_biased_dataset, "oracle")
    uninterrupted = DM(iterations=5, **TINY).distill(data, weights, device=CPU, seed=4)

    import reference_methods.methods.dm as dm_module
    real_loss, calls = dm_module.class_embedding_loss, []

    def dies_at_the_fourth_iteration(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real_loss(*args)

    monkeypatch.setattr(dm_module, "class_embedding_loss", dies_at_the_fourth_iteration)
    with pytest.raises(KeyboardInterrupt):
        DM(iterations=5, checkpoint_every=2, **TINY).distill(data, weights, device=CPU, seed=4, checkpoint_dir=tmp_path)
    monkeypatch.setattr(dm_module, "class_embedding_loss", real_loss)
    steps = _count_steps(monkeypatch)
    resumed = DM(iterations=5, checkpoint_every=2, **TINY).distill(data, weights, device=CPU, seed=4, checkpoint_dir=tmp_path)
    assert len(steps) == 3  # iterations 3 to 5, after the checkpoint at 2
    assert torch.equal(resumed.images, uninterrupted.images)


def test_checkpoint_of_another_run_is_refused(tiny_biased_dataset, tmp_path):
    data = tiny_biased_dataset
    DM(iterations=2, checkpoint_every=1, **TINY).distill(data, torch.ones(120), device=CPU, seed=0, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="fresh checkpoint_dir"):
        DM(iterations=2, **TINY).distill(data, weights_for(data, "oracle"), device=CPU, seed=0, checkpoint_dir=tmp_path)


def test_checkpoint_past_the_asked_iterations_is_refused(tiny_biased_dataset, tmp_path):
    data = tiny_biased_dataset
    DM(iterations=3, checkpoint_every=1, **TINY).distill(data, torch.ones(120), device=CPU, seed=0, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="at iteration 3, past iterations=2"):
        DM(iterations=2, **TINY).distill(data, torch.ones(120), device=CPU, seed=0, checkpoint_dir=tmp_path)


@pytest.mark.parametrize("bad, message", [({"init": "zeros"}, "init must be one of real, weighted, noise"),
                                          ({"sampling": "top"}, "sampling must be one of resample, reweight"),
                                          ({"batch_real": 0}, "batch_real must be >= 1, got 0"),
                                          ({"iterations": -1}, "iterations must be >= 0")])
def test_bad_settings_are_refused_with_the_value_at_fault(bad, message):
    with pytest.raises(ValueError, match=message):
        DM(**bad)
