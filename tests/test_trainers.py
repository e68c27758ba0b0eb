"""Debiasing evaluation trainers (lff, dfa): their losses, weights, feature swap, and that they train."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import dd_plugins
from reference_methods.evaluate import evaluate_set
from reference_methods.metrics import METRICS
from reference_methods.nets import ConvNet
from reference_methods.seeds import generator
from reference_methods.trainers.base import TrainSchedule, shuffled_batches
from reference_methods.trainers.dfa import DFATrainer, swap_bias_features
from reference_methods.trainers.lff import LfFTrainer
from reference_methods.trainers.losses import LossEMA, generalized_cross_entropy, relative_difficulty
from reference_methods.trainers.optimizers import build_optimizer, decay_at_half

CPU = torch.device("cpu")


def tiny_set(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """3 classes x 10 images of 3x16x16."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(30, 3, 16, 16, generator=g)
    labels = torch.arange(3).repeat_interleave(10)
    return images, labels


def make_net() -> ConvNet:
    return ConvNet(3, 3, (16, 16), width=8, depth=2)


def test_gce_matches_its_formula_on_hand_made_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.5]])
    targets = torch.tensor([0, 1, 2])
    q = 0.7
    expected = []
    for row, y in zip(logits.tolist(), targets.tolist()):
        p_y = math.exp(row[y]) / sum(math.exp(v) for v in row)
        expected.append((1 - p_y ** q) / q)
    assert torch.allclose(generalized_cross_entropy(logits, targets, q), torch.tensor(expected), atol=1e-6)


def test_gce_gradient_is_cross_entropy_gradient_times_p_to_the_q():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, -0.5, 1.5]], requires_grad=True)
    targets = torch.tensor([0, 2])
    q = 0.7
    gce_grad, = torch.autograd.grad(generalized_cross_entropy(logits, targets, q).sum(), logits)
    ce_grad, = torch.autograd.grad(F.cross_entropy(logits, targets, reduction="sum"), logits)
    p_y = torch.softmax(logits, 1).gather(1, targets[:, None]).detach()
    assert torch.allclose(gce_grad, p_y ** q * ce_grad, atol=1e-6)


def test_loss_ema_takes_first_loss_then_blends_and_normalises_per_class():
    labels = torch.tensor([0, 0, 1, 1])
    ema = LossEMA(labels, num_classes=2, alpha=0.7)
    ema.update(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 2.0, 4.0, 8.0]))
    assert torch.equal(ema.values, torch.tensor([1.0, 2.0, 4.0, 8.0]))
    ema.update(torch.tensor([1, 3]), torch.tensor([4.0, 0.0]))
    assert torch.allclose(ema.values, torch.tensor([1.0, 0.7 * 2 + 0.3 * 4, 4.0, 0.7 * 8]))
    assert torch.allclose(ema.class_max(), torch.tensor([2.6, 5.6]))
    assert torch.allclose(ema.normalised(torch.tensor([0, 2])), torch.tensor([1.0 / 2.6, 4.0 / 5.6]))


def test_lff_weights_are_larger_where_the_biased_net_is_wrong():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    wrong = torch.tensor([False, False, True, False, True, False])
    # The biased net is confident and right except on the two "conflicting" samples.
    biased_logits = torch.full((6, 2), -3.0)
    biased_logits[torch.arange(6), torch.where(wrong, 1 - labels, labels)] = 3.0
    debiased_logits = torch.zeros(6, 2)  # still undecided: the same loss everywhere
    ema_biased, ema_debiased = LossEMA(labels, 2), LossEMA(labels, 2)
    index = torch.arange(6)
    ema_biased.update(index, F.cross_entropy(biased_logits, labels, reduction="none"))
    ema_debiased.update(index, F.cross_entropy(debiased_logits, labels, reduction="none"))
    weights = relative_difficulty(ema_biased.normalised(index), ema_debiased.normalised(index))
    assert weights[wrong].min() > 0.45
    assert weights[~wrong].max() < 0.01


def test_dfa_feature_swap_keeps_shapes_and_carries_labels():
    z_bias = torch.arange(8, dtype=torch.float32)[:, None].repeat(1, 5)  # row i is all i
    z_intrinsic = torch.randn(8, 5)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    z_swap, y_swap = swap_bias_features(z_bias, labels, torch.Generator().manual_seed(3))
    assert z_swap.shape == z_bias.shape and y_swap.shape == labels.shape
    source = z_swap[:, 0].long()
    assert sorted(source.tolist()) == list(range(8))  # a permutation of the batch
    assert torch.equal(y_swap, labels[source])  # each swapped bias feature keeps its own label
    assert torch.cat([z_intrinsic, z_swap], 1).shape == (8, 10)


@pytest.mark.parametrize("trainer", [LfFTrainer(), DFATrainer(swap_after=0.5), LfFTrainer(optimizer="sgd"),
                                     DFATrainer(optimizer="sgd")], ids=["lff", "dfa", "lff-sgd", "dfa-sgd"])
def test_trainer_fits_a_tiny_set_reproducibly_and_returns_logits(trainer):
    images, labels = tiny_set()
    schedule = TrainSchedule(epochs=2, batch_size=8)
    calls = []

    def augment(x):
        calls.append(x.shape[0])
        return x.flip(3)

    nets = []
    for _ in range(2):
        torch.manual_seed(0)  # make_net initialises from the global RNG, as the nets do
        nets.append(trainer.fit(make_net, images, labels, schedule=schedule, augment=augment,
                                device=CPU, generator=generator(7)))
    with torch.no_grad():
        logits = [net(images) for net in nets]
    assert logits[0].shape == (30, 3) and torch.isfinite(logits[0]).all()
    assert torch.equal(logits[0], logits[1])
    assert calls[:4] == [8, 8, 8, 6]  # every batch, the last one partial, went through augment


def test_dfa_net_concatenates_two_encoders():
    images, labels = tiny_set()
    net = DFATrainer(swap_after=0.0).fit(make_net, images, labels, schedule=TrainSchedule(epochs=1, batch_size=16),
                                        augment=None, device=CPU, generator=generator(1))
    assert net.feature_dim == 2 * make_net().feature_dim
    assert net.embed(images[:4]).shape == (4, net.feature_dim)


def test_optimizers_are_published_adam_or_protocol_sgd_and_decay_once_at_half():
    params = [torch.nn.Parameter(torch.zeros(2))]
    schedule = TrainSchedule(lr=0.02, momentum=0.8, weight_decay=1e-3)
    adam = build_optimizer(params, schedule, "adam", adam_lr=1e-3)
    assert isinstance(adam, torch.optim.Adam)
    assert adam.param_groups[0]["lr"] == 1e-3 and adam.param_groups[0]["weight_decay"] == 0
    sgd = build_optimizer(params, schedule, "sgd", adam_lr=1e-3)
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.param_groups[0]["lr"], sgd.param_groups[0]["momentum"], sgd.param_groups[0]["weight_decay"]) == (
        0.02, 0.8, 1e-3)
    for epoch in range(10):
        decay_at_half(sgd, epoch, 10)
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.002)


def test_invalid_parameters_say_what_is_expected():
    with pytest.raises(ValueError, match="0.7"):
        LfFTrainer(q=0.0)
    with pytest.raises(ValueError, match="fraction"):
        DFATrainer(swap_after=5)
    with pytest.raises(ValueError, match="'sgd'"):
        LfFTrainer(optimizer="adamw")
    with pytest.raises(dd_plugins.ParameterError, match="swap_after"):
        dd_plugins.get_trainer("dfa", swapafter=0.1)


def test_builtin_trainers_are_registered_by_name():
    names = dd_plugins.list_trainers()
    assert {"lff", "dfa"} <= set(names)
    trainer = dd_plugins.get_trainer("lff", q=0.5)
    assert isinstance(trainer, LfFTrainer) and trainer.q == 0.5
    assert isinstance(dd_plugins.get_trainer("dfa", lambda_swap=0.5), DFATrainer)


class UntrainedTrainer:
    """Returns an untrained net (test plugin)."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, make_net, images, labels, *, schedule, augment, device, generator, progress=False):
        return make_net().to(device)


class UntrainedPlugin:
    @dd_plugins.hookimpl
    def dd_register_trainers(self, register):
        register("untrained", UntrainedTrainer)


def test_trainer_registered_in_process_is_usable_by_name():
    pm = dd_plugins.get_plugin_manager()
    pm.register(UntrainedPlugin(), name="untrained-plugin")
    try:
        trainer = dd_plugins.get_trainer("untrained", scale=2.0)
        assert trainer.scale == 2.0
        images, labels = tiny_set()
        net = trainer.fit(make_net, images, labels, schedule=TrainSchedule(epochs=1), augment=None,
                          device=CPU, generator=generator(0))
        assert net(images).shape == (30, 3)
    finally:
        pm.unregister(name="untrained-plugin")
    assert "untrained" not in dd_plugins.list_trainers()


@pytest.mark.parametrize("name", ["lff", "dfa"])
def test_trainer_by_name_through_evaluate_set_returns_metrics(name, tiny_biased_dataset):
    data = tiny_biased_dataset
    result = evaluate_set(data.train.images[::4], data.train.labels[::4], data, trainer=name,
                          schedule=TrainSchedule(epochs=2, batch_size=16), num_eval=1, net_width=8, net_depth=2,
                          device=CPU, seed=0)
    assert set(result) == set(METRICS) | {"groups"}
    assert all(len(result[m]["runs"]) == 1 for m in METRICS)
    assert 0 <= result["acc"]["mean"] <= 100 and 0 <= result["worst_group"]["mean"] <= 100


@pytest.mark.parametrize("trainer", [LfFTrainer(), DFATrainer()], ids=["lff", "dfa"])
def test_trainer_keeps_every_class_of_the_net_when_the_set_lacks_one(trainer):
    images, labels = tiny_set()
    keep = labels < 2  # class 2 absent from the training set
    net = trainer.fit(make_net, images[keep], labels[keep], schedule=TrainSchedule(epochs=1, batch_size=8),
                      augment=None, device=CPU, generator=generator(0))
    assert net(images[:5]).shape == (5, 3)


def test_an_epoch_of_shuffled_batches_sees_every_sample_once_augmented():
    images, labels = torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10) % 3
    batches = list(shuffled_batches(images, labels, 4, torch.Generator().manual_seed(0), lambda x: -x))
    assert [len(index) for index, _, _ in batches] == [4, 4, 2]
    index = torch.cat([i for i, _, _ in batches])
    assert sorted(index.tolist()) == list(range(10)) and index.tolist() != list(range(10))
    for i, x, y in batches:
        assert torch.equal(x.flatten(), -images[i].flatten()) and torch.equal(y, labels[i])


@pytest.mark.parametrize("name", ["erm", "lff", "dfa"])
def test_progress_into_a_log_file_waits_for_its_interval(name, capsys, monkeypatch):
    """Into a file (captured stderr is not a terminal) a bar redraws once a minute, and the loss
    in its postfix does not force a line per epoch (a paper evaluation has 5 000 epochs)."""
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    images, labels = tiny_set()
    dd_plugins.get_trainer(name).fit(make_net, images, labels, schedule=TrainSchedule(epochs=20, batch_size=8),
                                     augment=None, device=CPU, generator=generator(0), progress=True)
    assert capsys.readouterr().err.count("loss=") <= 1
