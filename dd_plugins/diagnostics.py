"""Host-side weight diagnostics: how much weight lands on the bias-conflicting samples."""

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


def weight_diagnostics(weights: Tensor, labels: Tensor, conflicting: Tensor, num_classes: int) -> dict:
    """Share of weight on conflicting samples before (count share) and after weighting, and AUC.

    Returned per class and overall; ``conflicting`` is the bias-conflicting mask from bias labels,
    which the host has and the weighter (for ``kde``) never saw.
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
    return {
        "count_share": conflicting.double().mean().item(),
        "weight_share": (weights[conflicting].sum() / weights.sum()).item(),
        "auc": roc_auc(weights, conflicting),
        "per_class": per_class,
    }


def format_diagnostics(stats: dict) -> str:
    """One line for the log: conflicting share before -> after, and AUC."""
    return (
        f"conflicting samples: {stats['count_share']:.3f} of count -> "
        f"{stats['weight_share']:.3f} of weight; AUC {stats['auc']:.3f}"
    )
