"""MTT: weighted expert batches, the expert buffer's reuse and invalidation, the distiller, resume equality."""

from __future__ import annotations

import pytest
import torch

import reference_methods.methods.mtt_buffer as buffer_module
from adapters.mtt import expert_epoch_batches
from dd_plugins.registry import get_method
from method_weights import weights_for
from reference_methods.methods.mtt import FlatNet, MTTDistiller
from reference_methods.methods.mtt_buffer import ExpertSettings, ensure_experts
from reference_methods.nets import ConvNet

CPU = torch.device("cpu")
NET = dict(net_width=8, net_depth=2)
EXPERTS = dict(num_experts=2, expert_train_epochs=3, batch_train=32, lr_teacher=0.01)
TINY = dict(ipc=2, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=100.0, **EXPERTS, **NET)
SETTINGS = ExpertSettings("convnet", {"width": 8, "depth": 2, "norm": "instancenorm"}, 0.01, 32, 2, "resample")


def _one_hot_in_class_1(n: int = 120) -> torch.Tensor:
    """Tiny-set weights: classes 0 and 2 uniform, class 1 (samples 40..79) all on sample 45."""
    weights = torch.ones(n)
    weights[40:80] = 0.0
    weights[45] = 40.0
    return weights


LABELS = torch.arange(3).repeat_interleave(40)


def test_one_hot_class_weight_makes_resampled_experts_see_only_that_sample():
    batches = expert_epoch_batches(LABELS, _one_hot_in_class_1(), 32, mode="resample",
                                   generator=torch.Generator().manual_seed(0))
    seen = torch.cat([idx for idx, _ in batches])
    assert seen.numel() == 120  # an epoch keeps the split's size and each class its size
    assert set(seen[LABELS[seen] == 1].tolist()) == {45}
    assert (LABELS[seen] == 1).sum() == 40
    assert sorted(seen[LABELS[seen] != 1].tolist()) == [i for i in range(120) if not 40 <= i < 80]
    assert all(torch.equal(c, torch.full((idx.numel(),), 1.0 / idx.numel())) for idx, c in batches)


def test_one_hot_class_weight_gives_reweighted_experts_no_loss_on_the_other_samples():
    weights = _one_hot_in_class_1()
    batches = expert_epoch_batches(LABELS, weights, 32, mode="reweight", generator=torch.Generator().manual_seed(0))
    seen = torch.cat([idx for idx, _ in batches])
    coefficients = torch.cat([c for _, c in batches])
    assert torch.equal(seen.sort().values, torch.arange(120))
    in_class_1 = LABELS[seen] == 1
    assert (coefficients[in_class_1 & (seen != 45)] == 0).all()
    assert (coefficients[seen == 45] > 0).all()


@pytest.mark.parametrize("mode", ["resample", "reweight"])
def test_uniform_weights_give_exactly_the_unweighted_epoch(mode):
    batches = expert_epoch_batches(LABELS, torch.ones(120), 32, mode=mode, generator=torch.Generator().manual_seed(3))
    expected = torch.randperm(120, generator=torch.Generator().manual_seed(3)).split(32)
    assert all(torch.equal(idx, e) for (idx, _), e in zip(batches, expected)) and len(batches) == len(expected)
    assert all(torch.equal(c, torch.full((idx.numel(),), 1.0 / idx.numel())) for idx, c in batches)


def test_expert_training_draws_its_batches_through_the_adapter_with_theweights_for(tiny_biased_dataset, tmp_path,
                                                                                 monkeypatch):
    seen = []

    def recording(labels, weights, batch_size, *, mode, generator):
        batches = expert_epoch_batches(labels, weights, batch_size, mode=mode, generator=generator)
        seen.extend(idx for idx, _ in batches)
        return batches

    monkeypatch.setattr(buffer_module, "expert_epoch_batches", recording)
    ensure_experts(tiny_biased_dataset, _one_hot_in_class_1(), SETTINGS, num_experts=1, buffer_dir=tmp_path,
                   device=CPU)
    seen = torch.cat(seen)
    assert seen.numel() == 2 * 120  # two epochs
    assert set(seen[tiny_biased_dataset.train.labels[seen] == 1].tolist()) == {45}


def test_buffer_is_reused_for_the_same_data_and_weights_and_invalidated_otherwise(tiny_biased_dataset, tmp_path):
    data, uniform, oracle = tiny_biased_dataset, torch.ones(120), weights_for(tiny_biased_dataset, "oracle")
    first, trained = ensure_experts(data, uniform, SETTINGS, num_experts=2, buffer_dir=tmp_path, device=CPU)
    assert trained == 2
    num_params = sum(p.numel() for p in ConvNet(3, 3, (16, 16), width=8, depth=2).parameters())
    assert first.trajectory(0).shape == (SETTINGS.train_epochs + 1, num_params)
    again, trained = ensure_experts(data, uniform, SETTINGS, num_experts=2, buffer_dir=tmp_path, device=CPU)
    assert trained == 0 and again.folder == first.folder
    _, trained = ensure_experts(data, uniform, SETTINGS, num_experts=3, buffer_dir=tmp_path, device=CPU)
    assert trained == 1  # more experts: only the missing one
    weighted, trained = ensure_experts(data, oracle, SETTINGS, num_experts=2, buffer_dir=tmp_path, device=CPU)
    assert trained == 2 and weighted.folder != first.folder
    other_lr = ExpertSettings(**{**SETTINGS.__dict__, "lr_teacher": 0.02})
    changed, trained = ensure_experts(data, uniform, other_lr, num_experts=1, buffer_dir=tmp_path, device=CPU)
    assert trained == 1 and changed.folder not in (first.folder, weighted.folder)
    assert not torch.equal(weighted.trajectory(0)[-1], first.trajectory(0)[-1])


def test_buffer_content_depends_only_on_its_inputs(tiny_biased_dataset, tmp_path):
    data, weights = tiny_biased_dataset, weights_for(tiny_biased_dataset, "oracle")
    a, _ = ensure_experts(data, weights, SETTINGS, num_experts=1, buffer_dir=tmp_path / "a", device=CPU)
    b, _ = ensure_experts(data, weights, SETTINGS, num_experts=1, buffer_dir=tmp_path / "b", device=CPU)
    assert torch.equal(a.trajectory(0), b.trajectory(0))
    assert not torch.equal(a.trajectory(0)[0], a.trajectory(0)[-1])  # the expert did train


def test_flat_net_runs_the_net_with_the_given_parameters():
    torch.manual_seed(0)
    net = ConvNet(3, 3, (16, 16), width=8, depth=2)
    x = torch.randn(4, 3, 16, 16)
    flat = torch.nn.utils.parameters_to_vector(net.parameters())
    torch.testing.assert_close(FlatNet(net)(flat, x), net(x))
    assert not torch.allclose(FlatNet(net)(flat * 0.5, x), net(x))


@pytest.mark.parametrize("weighter", ["uniform", "oracle"])
@pytest.mark.parametrize("sampling", ["resample", "reweight"])
def test_mtt_runs_with_every_weighter_and_returns_a_set_of_the_right_shape(tiny_biased_dataset, tmp_path,
                                                                           weighter, sampling):
    data = tiny_biased_dataset
    syn = get_method("mtt", iterations=2, sampling=sampling, buffer_dir=str(tmp_path), **TINY).distill(
        data, weights_for(data, weighter), device=CPU, seed=0)
    assert syn.images.shape == (6, 3, 16, 16)
    assert torch.equal(syn.labels, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert torch.isfinite(syn.images).all()
    assert isinstance(syn.extras["syn_lr"], float)


def test_gradients_reach_the_synthetic_images_and_the_learned_lr(tiny_biased_dataset, tmp_path):
    data, weights = tiny_biased_dataset, weights_for(tiny_biased_dataset, "oracle").requires_grad_(True)
    kwargs = dict(buffer_dir=str(tmp_path), **TINY)
    start = MTTDistiller(iterations=0, **kwargs).distill(data, weights, device=CPU, seed=1)
    moved = MTTDistiller(iterations=1, **kwargs).distill(data, weights, device=CPU, seed=1)
    assert (moved.images - start.images).abs().amax(dim=(1, 2, 3)).gt(0).all()
    assert start.extras["syn_lr"] == pytest.approx(0.01) and moved.extras["syn_lr"] != start.extras["syn_lr"]
    assert weights.grad is None


def _count_iterations(monkeypatch, die_at: int | None = None) -> list:
    """Count student runs (one per iteration's first step), optionally killing the run at one."""
    calls = []
    real_call = FlatNet.__call__

    def counted(self, flat, x):
        calls.append(1)
        if len(calls) == die_at:
            raise KeyboardInterrupt("killed")
        return real_call(self, flat, x)

    monkeypatch.setattr(FlatNet, "__call__", counted)
    return calls


def test_run_killed_mid_way_resumes_to_the_uninterrupted_result(tiny_biased_dataset, tmp_path, monkeypatch):
    data, weights = tiny_biased_dataset, weights_for(tiny_biased_dataset, "oracle")
    kwargs = dict(buffer_dir=str(tmp_path / "buffers"), **TINY)
    uninterrupted = MTTDistiller(iterations=5, **kwargs).distill(data, weights, device=CPU, seed=4)
    steps = TINY["syn_steps"]
    _count_iterations(monkeypatch, die_at=3 * steps + 1)  # dies in the 4th iteration
    with pytest.raises(KeyboardInterrupt):
        MTTDistiller(iterations=5, checkpoint_every=2, **kwargs).distill(data, weights, device=CPU, seed=4,
                                                                        checkpoint_dir=tmp_path / "run")
    monkeypatch.undo()
    calls = _count_iterations(monkeypatch)
    resumed = MTTDistiller(iterations=5, checkpoint_every=2, **kwargs).distill(data, weights, device=CPU, seed=4,
                                                                              checkpoint_dir=tmp_path / "run")
    assert len(calls) == 3 * steps  # iterations 3 to 5, after the checkpoint at 2
    assert torch.equal(resumed.images, uninterrupted.images)
    assert resumed.extras["syn_lr"] == uninterrupted.extras["syn_lr"]


def test_start_epochs_must_fit_in_the_expert_trajectories():
    with pytest.raises(ValueError, match="raise expert_train_epochs"):
        MTTDistiller(max_start_epoch=20, expert_epochs=2, expert_train_epochs=20)
    MTTDistiller(max_start_epoch=20, expert_epochs=2, expert_train_epochs=21)
