"""Accuracy and fairness metrics of predictions on a split with bias labels (all in percent).

``acc`` overall; ``aligned_acc`` / ``conflicting_acc`` on samples whose bias value is / is not the
one aligned with their class; ``worst_group`` the lowest accuracy over (class, bias value) groups;
``deo_m`` / ``deo_a`` the max / mean over classes of the gap between the best and the worst bias
group's recall within the class (difference of equal opportunity, as reported by FairDD).
Groups without samples are skipped; a class with a single populated group has gap 0; a metric
with no samples at all is NaN.
"""

from __future__ import annotations

import math

from torch import Tensor

METRICS = ("acc", "aligned_acc", "conflicting_acc", "worst_group", "deo_m", "deo_a")


def _percent(correct: Tensor) -> float:
    return 100.0 * correct.float().mean().item() if correct.numel() else math.nan


def group_accuracies(predictions: Tensor, labels: Tensor, bias_labels: Tensor, num_classes: int) -> list[dict]:
    """Accuracy of every populated (class, bias value) group: ``{"class", "bias", "count", "acc"}`` each,
    in class then bias order (what ``worst_group`` and the DEOs are computed from)."""
    predictions, labels, bias_labels = predictions.cpu(), labels.cpu(), bias_labels.cpu()
    correct = predictions == labels
    num_bias = int(bias_labels.max()) + 1 if bias_labels.numel() else 0
    groups = []
    for c in range(num_classes):
        for b in range(num_bias):
            in_group = (labels == c) & (bias_labels == b)
            if in_group.any():
                groups.append({"class": c, "bias": b, "count": int(in_group.sum()), "acc": _percent(correct[in_group])})
    return groups


def group_metrics(predictions: Tensor, labels: Tensor, bias_labels: Tensor, aligned_bias: Tensor,
                  num_classes: int, groups: list[dict] | None = None) -> dict[str, float]:
    """The six metrics of ``METRICS`` for predicted classes [N] against ``labels`` [N] and ``bias_labels`` [N].

    ``groups``: these predictions' ``group_accuracies``, where the caller already has them."""
    predictions, labels, bias_labels = predictions.cpu(), labels.cpu(), bias_labels.cpu()
    correct = predictions == labels
    aligned = bias_labels == aligned_bias.cpu()[labels]
    if groups is None:
        groups = group_accuracies(predictions, labels, bias_labels, num_classes)
    gaps = []
    for c in range(num_classes):
        recalls = [g["acc"] for g in groups if g["class"] == c]
        if recalls:
            gaps.append(max(recalls) - min(recalls))
    return {
        "acc": _percent(correct),
        "aligned_acc": _percent(correct[aligned]),
        "conflicting_acc": _percent(correct[~aligned]),
        "worst_group": min(g["acc"] for g in groups) if groups else math.nan,
        "deo_m": max(gaps) if gaps else math.nan,
        "deo_a": sum(gaps) / len(gaps) if gaps else math.nan,
    }
