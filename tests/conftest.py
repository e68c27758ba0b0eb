"""Shared fixtures: a tiny in-process biased dataset every method, trainer and metric test can use."""

from __future__ import annotations

import pytest
import torch

from reference_methods.datasets.base import BiasedDataset, BiasedSplit


def _split(per_class: int, num_classes: int, conflicting_share: float | None, g: torch.Generator) -> BiasedSplit:
    """Class c is a bright horizontal band at rows 4c..4c+3; the bias is the colour channel it is drawn in.

    With ``conflicting_share`` the first (1 - share) of each class takes colour c (aligned), the rest
    the other colours in turn; with None every colour is equally likely (an unbiased test split).
    """
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    if conflicting_share is None:
        bias = torch.arange(per_class * num_classes) % num_classes
    else:
        n_conflicting = max(1, round(per_class * conflicting_share))
        offsets = torch.zeros(per_class, dtype=torch.long)
        offsets[per_class - n_conflicting:] = 1 + torch.arange(n_conflicting) % (num_classes - 1)
        bias = (labels + offsets.repeat(num_classes)) % num_classes
    images = 0.3 * torch.randn(labels.numel(), 3, 16, 16, generator=g)
    for i, (c, b) in enumerate(zip(labels.tolist(), bias.tolist())):
        images[i, b, 4 * c:4 * c + 4, 2:14] += 2.0
    return BiasedSplit(images, labels, bias, torch.arange(num_classes))


def make_tiny_biased_dataset(seed: int = 0, per_class: int = 40, num_classes: int = 3,
                             conflicting_share: float = 0.1) -> BiasedDataset:
    """3 classes x 40 train images (3x16x16, 10% bias-conflicting) and an unbiased 3 x 30 test split."""
    g = torch.Generator().manual_seed(seed)
    return BiasedDataset(
        name="tiny",
        train=_split(per_class, num_classes, conflicting_share, g),
        test=_split(30, num_classes, None, g),
        num_classes=num_classes,
        num_bias=num_classes,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        flip=False,
    )


@pytest.fixture
def tiny_biased_dataset() -> BiasedDataset:
    return make_tiny_biased_dataset()
