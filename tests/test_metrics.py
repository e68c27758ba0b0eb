"""Accuracy and fairness metrics on hand-made predictions."""

from __future__ import annotations

import math

import pytest
import torch

from reference_methods.metrics import group_accuracies, group_metrics

ALIGNED = torch.tensor([0, 1])  # class 0 aligned with bias 0, class 1 with bias 1


def test_hand_made_predictions():
    # class 0: bias 0 x4 (3 right), bias 1 x2 (0 right); class 1: bias 1 x2 (2 right), bias 0 x2 (1 right)
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    bias = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    preds = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
    m = group_metrics(preds, labels, bias, ALIGNED, 2)
    assert m["acc"] == pytest.approx(60.0)
    assert m["aligned_acc"] == pytest.approx(100 * 5 / 6)
    assert m["conflicting_acc"] == pytest.approx(25.0)
    assert m["worst_group"] == pytest.approx(0.0)
    # class 0 gap: 75 - 0 = 75; class 1 gap: 100 - 50 = 50
    assert m["deo_m"] == pytest.approx(75.0)
    assert m["deo_a"] == pytest.approx(62.5)
    assert group_accuracies(preds, labels, bias, 2) == [
        {"class": 0, "bias": 0, "count": 4, "acc": 75.0}, {"class": 0, "bias": 1, "count": 2, "acc": 0.0},
        {"class": 1, "bias": 0, "count": 2, "acc": 50.0}, {"class": 1, "bias": 1, "count": 2, "acc": 100.0}]
    groups = group_accuracies(preds, labels, bias, 2)
    assert group_metrics(preds, labels, bias, ALIGNED, 2, groups) == m


def test_perfect_predictions_are_fair():
    labels = torch.tensor([0, 0, 1, 1])
    bias = torch.tensor([0, 1, 0, 1])
    m = group_metrics(labels.clone(), labels, bias, ALIGNED, 2)
    assert m == {"acc": 100.0, "aligned_acc": 100.0, "conflicting_acc": 100.0, "worst_group": 100.0,
                 "deo_m": 0.0, "deo_a": 0.0}


def test_empty_groups_are_skipped():
    labels = torch.tensor([0, 0, 1, 1, 1])
    bias = torch.tensor([0, 0, 1, 1, 2])  # bias 1 never in class 0, bias 0 never in class 1; 3 bias values
    preds = torch.tensor([0, 1, 1, 1, 0])
    m = group_metrics(preds, labels, bias, torch.tensor([0, 1]), 2)
    assert m["worst_group"] == pytest.approx(0.0)  # (class 1, bias 2)
    assert m["deo_m"] == pytest.approx(100.0) and m["deo_a"] == pytest.approx(50.0)  # class 0 has one group: gap 0


def test_no_conflicting_samples_gives_nan_not_an_error():
    labels = torch.tensor([0, 1])
    m = group_metrics(labels.clone(), labels, labels.clone(), ALIGNED, 2)
    assert math.isnan(m["conflicting_acc"]) and m["aligned_acc"] == 100.0
