"""Turn cached uint8 splits into the normalised ``BiasedDataset`` every consumer reads."""

from __future__ import annotations

import torch

from reference_methods.datasets.base import BiasedDataset, BiasedSplit
from reference_methods.datasets.storage import RawSplit

# Normalisation per family (see docs/datasets.md). One fixed map per dataset, never measured on
# the built split, so every ratio, severity and seed of a dataset shares it.
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # FairDD's choice for coloured digits: [0, 1] -> [-1, 1]
CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))  # LfF / DFA for CIFAR-10C and bFFHQ
CIFAR10S = ((0.4891, 0.4845, 0.4671), (0.2428, 0.2408, 0.2510))  # FairDD's measured CIFAR10-S stats


def normalise(images_uint8: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 (x / 255 - mean) / std, in place on one float copy (splits are large)."""
    scale = 1.0 / (255.0 * torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
    shift = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) / torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return images_uint8.to(torch.float32).mul_(scale).sub_(shift)


def assemble(
    name: str,
    splits: dict[str, RawSplit],
    *,
    aligned_bias: torch.Tensor,
    num_classes: int,
    num_bias: int,
    normalisation: tuple[tuple[float, ...], tuple[float, ...]],
    flip: bool,
    params: dict,
) -> BiasedDataset:
    """A ``BiasedDataset`` from raw ``train`` and ``test`` splits."""
    mean, std = normalisation

    def split(raw: RawSplit) -> BiasedSplit:
        return BiasedSplit(normalise(raw.images, mean, std), raw.labels.to(torch.int64), raw.bias_labels.to(torch.int64), aligned_bias.to(torch.int64))

    return BiasedDataset(
        name=name,
        train=split(splits["train"]),
        test=split(splits["test"]),
        num_classes=num_classes,
        num_bias=num_bias,
        mean=mean,
        std=std,
        flip=flip,
        params=dict(params),
    )
