"""Which bias value each sample gets: exact per-class counts, then a seeded shuffle.

In class c the aligned value gets exactly ``round(n_c * aligned_share)`` samples and the rest is
spread evenly over the other values (parts differ by at most one, rounded on the cumulative sum
so they add up). LfF's ``make_attr_labels`` (alinlab/LfF, make_dataset.py) rounds the aligned
part on the same cumulative sum, so its counts can differ from these by one sample per class.
Which samples land in which part is drawn with the caller's generator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bias_counts(class_size: int, aligned_value: int, aligned_share: float, num_bias: int) -> Tensor:
    """How many samples of one class get each bias value: [num_bias] int64 summing to class_size."""
    counts = torch.zeros(num_bias, dtype=torch.int64)
    aligned = min(class_size, round(class_size * aligned_share))
    counts[aligned_value] = aligned
    others = [b for b in range(num_bias) if b != aligned_value]
    if not others:
        counts[aligned_value] = class_size
        return counts
    rest = class_size - aligned
    milestones = [round(rest * (i + 1) / len(others)) for i in range(len(others))]
    counts[others] = torch.diff(torch.tensor(milestones), prepend=torch.zeros(1, dtype=torch.int64))
    return counts


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
