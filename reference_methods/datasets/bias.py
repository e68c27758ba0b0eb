"""Which bias value each sample gets: exact per-class counts, then a seeded shuffle.

The counts follow LfF's ``make_attr_labels`` (alinlab/LfF, make_dataset.py): in class c the
aligned value gets ``aligned_share`` of the samples and every other value an equal part of the
rest, rounded on the cumulative sum over bias values so the parts add up to the class size and
differ by at most one. Which samples land in which part is drawn with the caller's generator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bias_counts(class_size: int, aligned_value: int, aligned_share: float, num_bias: int) -> Tensor:
    """How many samples of one class get each bias value: [num_bias] int64 summing to class_size."""
    if num_bias == 1:
        return torch.tensor([class_size], dtype=torch.int64)
    shares = torch.full((num_bias,), (1.0 - aligned_share) / (num_bias - 1), dtype=torch.float64)
    shares[aligned_value] = aligned_share
    milestones = torch.round(class_size * torch.cumsum(shares, 0)).to(torch.int64)
    milestones[-1] = class_size  # float error must not lose or add a sample
    return torch.diff(milestones, prepend=torch.zeros(1, dtype=torch.int64))


def assign_bias(
    labels: Tensor,
    aligned_bias: Tensor,
    aligned_share: float,
    num_bias: int,
    generator: torch.Generator,
) -> Tensor:
    """Bias label per sample [N] int64 so that class c has exactly ``bias_counts(...)`` of each value.

    ``aligned_share=1/num_bias`` gives a balanced (unbiased) split.
    """
    bias = torch.empty_like(labels, dtype=torch.int64)
    for c in range(len(aligned_bias)):
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        counts = bias_counts(len(members), int(aligned_bias[c]), aligned_share, num_bias)
        values = torch.repeat_interleave(torch.arange(num_bias), counts)
        bias[members] = values
    return bias
