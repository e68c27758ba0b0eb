"""Gradient matching: the real batch's loss is a weighted cross-entropy, taken before its gradient."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def weighted_cross_entropy(logits: Tensor, targets: Tensor, coefficients: Tensor) -> Tensor:
    """Sum of ``coefficients`` [n] times the per-sample cross-entropy of ``logits`` [n, C] against ``targets`` [n].

    With the coefficients 1/n of a uniform batch this is the mean cross-entropy the unweighted
    method differentiates. Coefficients are detached: weights never receive gradients.
    """
    if logits.dim() != 2 or targets.shape != logits.shape[:1] or coefficients.shape != targets.shape:
        raise ValueError(f"expected logits [n, C], targets [n] and coefficients [n]; got {tuple(logits.shape)}, "
                         f"{tuple(targets.shape)} and {tuple(coefficients.shape)}")
    per_sample = F.cross_entropy(logits, targets, reduction="none")
    return (coefficients.detach().to(device=per_sample.device, dtype=per_sample.dtype) * per_sample).sum()
