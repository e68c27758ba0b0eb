"""DSA: runs with every weighter, gradients reach the images, VICO's distance and loops, resume equality."""

from __future__ import annotations

import pytest
import torch

from dd_plugins.registry import get_method
from method_weights import weights_for
from reference_methods.methods.dsa import DSADistiller, gradient_distance, loops_for_ipc

CPU = torch.device("cpu")
TINY = dict(ipc=2, batch_real=8, batch_train=4, outer_loop=2, inner_loop=1, net_width=8, net_depth=2)


@pytest.mark.parametrize("weighter", ["uniform", "oracle"])
@pytest.mark.parametrize("sampling", ["resample", "reweight"])
def test_dsa_runs_with_every_weighter_and_returns_a_set_of_the_right_shape(tiny_biased_dataset, weighter, sampling):
    data = tiny_biased_dataset
    syn = get_method("dsa", iterations=2, sampling=sampling, **TINY).distill(
        data, weights_for(data, weighter), device=CPU, seed=0)
    assert syn.images.shape == (6, 3, 16, 16)
    assert torch.equal(syn.labels, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert torch.isfinite(syn.images).all()
    assert (syn.extras["outer_loop"], syn.extras["inner_loop"]) == (2, 1)


def test_gradients_reach_the_synthetic_images_and_never_theweights_for(tiny_biased_dataset):
    data = tiny_biased_dataset
    weights = weights_for(data, "oracle").requires_grad_(True)
    start = DSADistiller(iterations=0, **TINY).distill(data, weights, device=CPU, seed=1).images
    moved = DSADistiller(iterations=1, **TINY).distill(data, weights, device=CPU, seed=1).images
    again = DSADistiller(iterations=1, **TINY).distill(data, weights, device=CPU, seed=1).images
    assert torch.equal(moved, again)
    assert (moved - start).abs().amax(dim=(1, 2, 3)).gt(0).all()  # every synthetic image moved
    assert weights.grad is None
    assert any(torch.equal(start[0], x) for x in data.train.images[data.train.labels == 0])  # real init


def test_layerwise_distance_is_vicos():
    g_real = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(5, 6)]
    assert gradient_distance([g.clone() for g in g_real], g_real).abs() < 1e-5  # identical: cosine 1 everywhere
    flipped = [-g_real[0], torch.randn(4), -g_real[2]]  # opposite weights; the 1-D bias is skipped
    torch.testing.assert_close(gradient_distance(flipped, g_real), torch.tensor(2.0 * (4 + 5)), rtol=1e-5, atol=1e-5)
    orthogonal = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])]
    torch.testing.assert_close(gradient_distance(orthogonal[:1], orthogonal[1:]), torch.tensor(1.0))


def test_loops_follow_the_published_table_and_the_nearest_ipc_otherwise():
    assert [loops_for_ipc(i) for i in (1, 10, 50)] == [(1, 1), (10, 50), (50, 10)]
    assert loops_for_ipc(5) == (1, 1)  # 5 is closer to 1 than to 10
    assert loops_for_ipc(15) == (10, 50)  # tie between 10 and 20: the smaller
    assert loops_for_ipc(100) == (50, 10)
    assert DSADistiller(ipc=10, outer_loop=3).loops() == (3, 50)


def _count_iterations(monkeypatch, die_at: int | None = None) -> list:
    """Count fresh nets (one per iteration), optionally killing the run at one, to tell a resume from a restart."""
    import reference_methods.methods.dsa as dsa_module
    real_net, calls = dsa_module.seeded_net, []

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == die_at:
            raise KeyboardInterrupt("killed")
        return real_net(*args, **kwargs)

    monkeypatch.setattr(dsa_module, "seeded_net", counted)
    return calls


def test_run_killed_mid_way_resumes_to_the_uninterrupted_result(tiny_biased_dataset, tmp_path, monkeypatch):
    data, weights = tiny_biased_dataset, weights_for(tiny_biased_dataset, "oracle")
    uninterrupted = DSADistiller(iterations=5, **TINY).distill(data, weights, device=CPU, seed=4)
    _count_iterations(monkeypatch, die_at=4)
    with pytest.raises(KeyboardInterrupt):
        DSADistiller(iterations=5, checkpoint_every=2, **TINY).distill(data, weights, device=CPU, seed=4,
                                                                       checkpoint_dir=tmp_path)
    monkeypatch.undo()
    calls = _count_iterations(monkeypatch)
    resumed = DSADistiller(iterations=5, checkpoint_every=2, **TINY).distill(data, weights, device=CPU, seed=4,
                                                                             checkpoint_dir=tmp_path)
    assert len(calls) == 3  # iterations 3 to 5, after the checkpoint at 2
    assert torch.equal(resumed.images, uninterrupted.images)


def test_checkpoint_of_another_run_is_refused(tiny_biased_dataset, tmp_path):
    data = tiny_biased_dataset
    DSADistiller(iterations=1, **TINY).distill(data, torch.ones(120), device=CPU, seed=0, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="fresh checkpoint_dir"):
        DSADistiller(iterations=1, **TINY).distill(data, weights_for(data, "oracle"), device=CPU, seed=0,
                                                   checkpoint_dir=tmp_path)


def test_bad_parameters_say_what_to_do():
    with pytest.raises(ValueError, match="init must be"):
        DSADistiller(init="zeros")
    with pytest.raises(ValueError, match="sampling must be one of"):
        DSADistiller(sampling="importance")
    with pytest.raises(ValueError, match="outer_loop must be >= 1"):
        DSADistiller(outer_loop=0)
