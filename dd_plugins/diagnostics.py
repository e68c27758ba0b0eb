"""Host-side weight diagnostics: how much weight lands on the bias-conflicting samples, and how
much of the bias the weighted training set still carries."""

from __future__ import annotations

import torch
from torch import Tensor


def roc_auc(scores: Tensor, positives: Tensor) -> float:
    """ROC-AUC of ``scores`` as a detector of ``positives`` (ties count one half); NaN if undefined."""
    scores = scores.double().flatten()
    positives = positives.bool().flatten()
    n_pos = int(positives.sum())
    n_neg = positives.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    unique, inverse = torch.unique(sorted_scores, return_inverse=True)
    # average ranks over ties
    sums = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(0, inverse, ranks[order])
    counts = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(
        0, inverse, torch.ones_like(sorted_scores)
    )
    ranks[order] = (sums / counts)[inverse]
    rank_sum = ranks[positives].sum().item()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bias_only_accuracy(weights: Tensor, labels: Tensor, bias_labels: Tensor) -> float:
    """Accuracy of the best guess of the class from the bias value alone, on the weighted samples:
    sum over bias values b of max_c P_w(class c, bias b).

    1/K when the weights leave the bias value uninformative (oracle's group balance); the bias
    ratio with uniform weights. Weights that move mass onto the conflicting samples unevenly can
    keep it well above 1/K: then the bias is still a shortcut, only a different one.
    """
    weights = weights.double().cpu()
    labels, bias_labels = labels.long().cpu(), bias_labels.long().cpu()
    joint = torch.zeros(int(labels.max()) + 1, int(bias_labels.max()) + 1, dtype=torch.float64)
    joint.index_put_((labels, bias_labels), weights, accumulate=True)
    return (joint.max(dim=0).values.sum() / joint.sum()).item()


def weight_diagnostics(weights: Tensor, labels: Tensor, conflicting: Tensor, num_classes: int,
                       bias_labels: Tensor | None = None) -> dict:
    """Share of weight on conflicting samples before (count share) and after weighting, and AUC,
    per class and overall; with ``bias_labels`` also ``bias_only_acc`` before and after weighting.

    ``conflicting`` and ``bias_labels`` come from the bias labels, which the host has and the
    weighter (for ``kde``) never saw.
    """
    weights = weights.double().cpu()
    labels = labels.cpu()
    conflicting = conflicting.bool().cpu()
    per_class = {}
    for c in range(num_classes):
        mask = labels == c
        if not mask.any():
            continue
        w, conf = weights[mask], conflicting[mask]
        per_class[str(c)] = {
            "count_share": conf.double().mean().item(),
            "weight_share": (w[conf].sum() / w.sum()).item(),
            "auc": roc_auc(w, conf),
        }
    stats = {
        "count_share": conflicting.double().mean().item(),
        "weight_share": (weights[conflicting].sum() / weights.sum()).item(),
        "auc": roc_auc(weights, conflicting),
        "per_class": per_class,
    }
    if bias_labels is not None and labels.numel():
        stats["bias_only_acc_before"] = bias_only_accuracy(torch.ones_like(weights), labels, bias_labels)
        stats["bias_only_acc"] = bias_only_accuracy(weights, labels, bias_labels)
    return stats


def format_diagnostics(stats: dict) -> str:
    """One line for the log: conflicting share before -> after, AUC, and the bias-only accuracy."""
    line = (
        f"conflicting samples: {stats['count_share']:.3f} of count -> "
        f"{stats['weight_share']:.3f} of weight; AUC {stats['auc']:.3f}"
    )
    if "bias_only_acc" in stats:
        line += f"; class from bias alone: {stats['bias_only_acc_before']:.3f} -> {stats['bias_only_acc']:.3f}"
    return line
