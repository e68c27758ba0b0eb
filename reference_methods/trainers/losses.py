"""Pieces shared by the LfF and DFA trainers: generalised cross-entropy, per-sample loss EMAs and
relative-difficulty weights. Neither needs bias labels: both infer "conflicting" from how hard a
sample is for a deliberately biased model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def generalized_cross_entropy(logits: Tensor, targets: Tensor, q: float = 0.7) -> Tensor:
    """Per-sample generalised cross-entropy (Zhang & Sabuncu 2018): (1 - p_y^q) / q.

    Its gradient is p_y^q times that of cross-entropy, so confident (easy, bias-aligned) samples
    dominate and the model trained with it becomes biased on purpose. q -> 0 recovers
    cross-entropy. The LfF and DFA code multiply cross-entropy by a detached q * p_y^q instead,
    which has q times this gradient; we use the formula of the papers.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"GCE needs 0 < q <= 1, got q={q}; LfF and DFA use q=0.7")
    log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    return (1.0 - torch.exp(q * log_p)) / q


def relative_difficulty(biased_loss: Tensor, debiased_loss: Tensor, eps: float = 1e-8) -> Tensor:
    """LfF's weight W(x) = L_B / (L_B + L_D): near 1 where the biased model fails, near 0 where it wins."""
    return biased_loss / (biased_loss + debiased_loss + eps)


class LossEMA:
    """Exponential moving average of every training sample's loss, with LfF's class-wise normalisation.

    A sample's first loss is taken as is; later ones blend in as alpha * old + (1 - alpha) * new
    (alpha = 0.7 in the LfF and DFA code). ``normalised`` divides by the largest average in the
    sample's class, so the weights of an easy class and of a hard class are on the same scale.
    """

    def __init__(self, labels: Tensor, num_classes: int, alpha: float = 0.7) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"EMA needs 0 <= alpha < 1, got alpha={alpha}; LfF and DFA use 0.7")
        self.labels = labels
        self.num_classes = num_classes
        self.alpha = alpha
        self.values = torch.zeros(labels.shape[0], dtype=torch.float32, device=labels.device)
        self.seen = torch.zeros(labels.shape[0], dtype=torch.bool, device=labels.device)

    def update(self, index: Tensor, losses: Tensor) -> None:
        """Blend the new per-sample ``losses`` of the samples at ``index`` (no repeats) into the average."""
        old = self.values[index]
        blended = self.alpha * old + (1.0 - self.alpha) * losses.detach().float()
        self.values[index] = torch.where(self.seen[index], blended, losses.detach().float())
        self.seen[index] = True

    def class_max(self) -> Tensor:
        """The largest average loss in each class [num_classes] (0 for a class not seen yet)."""
        out = torch.zeros(self.num_classes, dtype=self.values.dtype, device=self.values.device)
        return out.scatter_reduce(0, self.labels, self.values, reduce="amax", include_self=True)

    def normalised(self, index: Tensor) -> Tensor:
        """Average losses of the samples at ``index``, divided by the largest average of their class."""
        scale = self.class_max()[self.labels[index]]
        return self.values[index] / scale.clamp_min(torch.finfo(scale.dtype).tiny)
