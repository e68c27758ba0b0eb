"""Weight checks, normalisation and the built-in uniform and oracle weighters."""

from __future__ import annotations

import pytest
import torch

import dd_plugins
from dd_plugins import MissingBiasLabelsError, WeightError, compute_weights, normalise_weights
from dd_plugins.diagnostics import bias_only_accuracy, format_diagnostics, roc_auc, weight_diagnostics

LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1])
BIAS = torch.tensor([0, 0, 0, 1, 1, 1, 0])  # class 0: 3 aligned + 1 conflicting; class 1: 2 + 1


def test_normalise_gives_mean_one_within_each_class():
    raw = torch.tensor([1.0, 2.0, 3.0, 6.0, 5.0, 5.0, 10.0])
    weights = normalise_weights(raw, LABELS, 2)
    assert weights.dtype == torch.float32
    for c in range(2):
        assert weights[LABELS == c].mean().item() == pytest.approx(1.0)
    assert weights[3] / weights[0] == pytest.approx(6.0)


@pytest.mark.parametrize(
    "raw, message",
    [
        (torch.ones(6), "shape"),
        (torch.tensor([1.0, float("nan"), 1, 1, 1, 1, 1]), "NaN or infinite weights in class 0"),
        (torch.tensor([1.0, 1, 1, 1, 1, float("inf"), 1]), "NaN or infinite weights in class 1"),
        (torch.tensor([1.0, 1, 1, 1, 1, -1, 1]), "negative weights in class 1"),
        (torch.tensor([0.0, 0, 0, 0, 1, 1, 1]), "every sample of class 0 weight 0"),
    ],
)
def test_weight_errors_name_weighter_and_class(raw, message):
    with pytest.raises(WeightError, match=message) as info:
        normalise_weights(raw, LABELS, 2, weighter="mine")
    assert "weighter 'mine'" in str(info.value)


def test_non_tensor_weights_are_rejected():
    with pytest.raises(WeightError, match="returned list"):
        normalise_weights([1.0] * 7, LABELS, 2, weighter="mine")


def test_uniform_gives_ones():
    weights = compute_weights(dd_plugins.get_weighter("uniform"), "uniform", torch.zeros(7, 3, 4, 4), LABELS, 2)
    assert torch.equal(weights, torch.ones(7))


def test_oracle_gives_each_group_equal_total_weight_within_its_class():
    weights = compute_weights(dd_plugins.get_weighter("oracle"), "oracle", torch.zeros(7, 3, 4, 4), LABELS, 2,
                              bias_labels=BIAS)
    for c in range(2):
        totals = [weights[(LABELS == c) & (BIAS == b)].sum().item() for b in (0, 1)]
        assert totals[0] == pytest.approx(totals[1])
        assert weights[LABELS == c].mean().item() == pytest.approx(1.0)
    assert weights[3] == pytest.approx(3 * weights[0])


def test_oracle_without_bias_labels_raises():
    with pytest.raises(MissingBiasLabelsError, match="weighter 'oracle' needs bias labels"):
        compute_weights(dd_plugins.get_weighter("oracle"), "oracle", torch.zeros(7, 3, 4, 4), LABELS, 2)


class SpyWeighter:
    requires = frozenset()

    def weigh(self, ctx):
        self.seen = ctx
        return torch.ones(ctx.labels.shape[0])


def test_bias_labels_reach_only_weighters_that_require_them():
    spy = SpyWeighter()
    compute_weights(spy, "spy", torch.zeros(7, 3, 4, 4), LABELS, 2, bias_labels=BIAS, seed=7)
    assert spy.seen.bias_labels is None
    assert spy.seen.seed == 7


def test_roc_auc_matches_hand_computed_values():
    positives = torch.tensor([0, 0, 1, 1])
    assert roc_auc(torch.tensor([0.1, 0.2, 0.8, 0.9]), positives) == pytest.approx(1.0)
    assert roc_auc(torch.tensor([0.9, 0.8, 0.2, 0.1]), positives) == pytest.approx(0.0)
    assert roc_auc(torch.tensor([0.5, 0.5, 0.5, 0.5]), positives) == pytest.approx(0.5)
    assert roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), positives) == pytest.approx(0.75)


def test_weight_diagnostics_report_shares_before_and_after():
    conflicting = BIAS != LABELS
    weights = torch.tensor([1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0])
    stats = weight_diagnostics(weights, LABELS, conflicting, 2)
    assert stats["count_share"] == pytest.approx(2 / 7)
    assert stats["weight_share"] == pytest.approx(4 / 9)
    assert stats["per_class"]["0"]["weight_share"] == pytest.approx(0.5)
    assert stats["per_class"]["0"]["auc"] == pytest.approx(1.0)


def test_bias_only_accuracy_is_the_bias_ratio_unweighted_and_chance_when_groups_are_balanced():
    # two classes, bias aligned with the class for 3 of 4 samples each
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    bias = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0])
    assert bias_only_accuracy(torch.ones(8), labels, bias) == pytest.approx(0.75)
    balanced = torch.tensor([1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 3.0])  # each (class, bias) group weighs 3
    assert bias_only_accuracy(balanced, labels, bias) == pytest.approx(0.5)
    # all weight on the conflicting samples makes the bias a perfect shortcut again, the other way round
    flipped = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    assert bias_only_accuracy(flipped, labels, bias) == pytest.approx(1.0)
    stats = weight_diagnostics(balanced, labels, bias != labels, 2, bias_labels=bias)
    assert (stats["bias_only_acc_before"], stats["bias_only_acc"]) == (pytest.approx(0.75), pytest.approx(0.5))
    assert "class from bias alone: 0.750 -> 0.500" in format_diagnostics(stats)
    assert "bias_only_acc" not in weight_diagnostics(balanced, labels, bias != labels, 2)
