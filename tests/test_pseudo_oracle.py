"""The ``pseudo_oracle`` weighter: group balance over the classes a briefly trained classifier predicts."""

import inspect

import pytest
import torch

from dd_plugins import WeightContext, compute_weights, get_weighter, list_weighters
from dd_plugins.diagnostics import weight_diagnostics
from dd_plugins.weighters.oracle import group_balanced_weights
from dd_plugins.weighters.pseudo_oracle import PseudoOracleWeighter
from dd_plugins.weighters.supcon import EmbeddingSpec, classifier_predictions
from reference_methods.datasets.cdigits import build_cdigits

SMALL = dict(width=16, steps=20, batch_size=64)


@pytest.fixture(scope="module")
def cdigits():
    return build_cdigits(seed=0, conflict_ratio=0.05)


def test_registered_with_defaults_and_type_hints():
    assert "pseudo_oracle" in list_weighters()
    assert isinstance(get_weighter("pseudo_oracle", steps=5), PseudoOracleWeighter)
    for name, p in inspect.signature(PseudoOracleWeighter).parameters.items():
        assert p.default is not p.empty and p.annotation is not p.empty, name
    with pytest.raises(ValueError, match="steps must be >= 1"):
        PseudoOracleWeighter(steps=0)


def test_group_balanced_weights_give_each_group_of_a_class_the_same_total():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    groups = torch.tensor([0, 0, 0, 2, 1, 1, 0])
    w = group_balanced_weights(labels, groups)
    assert w.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5, 1.0])


def test_predictions_recover_the_bias_and_the_weights_remove_it(cdigits):
    train = cdigits.train
    ctx = WeightContext(images=train.images, labels=train.labels, num_classes=cdigits.num_classes, seed=0)
    weighter = PseudoOracleWeighter(**SMALL)
    pseudo = weighter.pseudo_bias_labels(ctx)  # the context holds no bias labels
    assert (pseudo == train.bias_labels).float().mean() > 0.9
    weights = weighter.weigh(ctx)
    assert torch.equal(weights, weighter.weigh(ctx))  # deterministic for a seed
    stats = weight_diagnostics(weights, train.labels, train.conflicting, cdigits.num_classes,
                               bias_labels=train.bias_labels)
    assert stats["count_share"] < 0.06 and stats["weight_share"] > 0.7
    assert stats["bias_only_acc_before"] > 0.9 and stats["bias_only_acc"] < 0.3


def test_public_api_normalises_per_class_without_bias_labels(cdigits):
    train = cdigits.train
    weights = compute_weights(get_weighter("pseudo_oracle", **SMALL), "pseudo_oracle", train.images, train.labels,
                              cdigits.num_classes)
    for c in range(cdigits.num_classes):
        assert weights[train.labels == c].mean().item() == pytest.approx(1.0)


def test_classifier_predictions_need_the_cross_entropy_source():
    with pytest.raises(ValueError, match="need source .ce. or .logits."):
        classifier_predictions(torch.zeros(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]), 2, EmbeddingSpec(),
                               device=torch.device("cpu"), seed=0)
