"""LfF-protocol colour datasets: ``cmnist`` (coloured digit) and ``bg_fmnist`` (coloured background).

Train: class k gets colour k except for ``conflict_ratio`` of its samples, spread evenly over the
other nine colours (exact counts, see ``bias.py``). Test: the official test images with every
colour equally often in every class (LfF builds its test split with aligned share 0.1).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from reference_methods.datasets.assemble import HALF, assemble
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.bias import assign_bias
from reference_methods.datasets.checks import check_fraction, check_non_negative, check_seed
from reference_methods.datasets.colour import LFF_COLOURS, colour_background, colour_foreground, noisy_colours, to_uint8
from reference_methods.datasets.raw import load_mnist_family
from reference_methods.datasets.storage import RawSplit, cached_splits, data_root
from reference_methods.seeds import derive_seed, generator

NUM_COLOURS = 10
ColourFn = Callable[[Tensor, Tensor], Tensor]


def colour_split(
    grey: Tensor,
    labels: Tensor,
    *,
    aligned_share: float,
    colour_fn: ColourFn,
    palette: Tensor,
    color_std: float,
    seed: int,
) -> RawSplit:
    """Assign bias colours with exact per-class counts and paint uint8 grey images [N, H, W]."""
    g = generator(seed)
    aligned_bias = torch.arange(len(palette))
    bias = assign_bias(labels, aligned_bias, aligned_share, len(palette), g)
    colours = noisy_colours(bias, palette, color_std, g)
    images = torch.empty((len(labels), 3, *grey.shape[1:]), dtype=torch.uint8)
    for start in range(0, len(labels), 8192):  # chunks keep the float copy small
        chunk = slice(start, start + 8192)
        images[chunk] = to_uint8(colour_fn(grey[chunk].float() / 255.0, colours[chunk]))
    return RawSplit(images, labels.to(torch.int64), bias)


def _build_lff(
    name: str, source: str, colour_fn: ColourFn, *, seed: int, root: str | None, conflict_ratio: float, color_std: float
) -> BiasedDataset:
    check_seed(name, seed)
    check_fraction(name, "conflict_ratio", conflict_ratio)
    check_non_negative(name, "color_std", color_std)
    params = {"seed": seed, "conflict_ratio": float(conflict_ratio), "color_std": float(color_std)}
    shares = {"train": 1.0 - conflict_ratio, "test": 1.0 / NUM_COLOURS}
    return coloured_mnist_family(name, source, colour_fn, palette=LFF_COLOURS, shares=shares, color_std=color_std,
                                 seed=seed, root=root, params=params)


def coloured_mnist_family(
    name: str, source: str, colour_fn: ColourFn, *, palette: Tensor, shares: dict[str, float], color_std: float,
    seed: int, root: str | None, params: dict, pad: int = 0,
) -> BiasedDataset:
    """MNIST or Fashion-MNIST (``source``) with each split coloured at its aligned share, optionally
    zero-padded by ``pad`` pixels a side, cached under ``params``: the LfF and FairDD colour sets."""

    def build() -> dict[str, RawSplit]:
        raw = load_mnist_family(source, data_root(root))
        splits = {}
        for split, share in shares.items():
            images = F.pad(raw[split][0], (pad, pad, pad, pad)) if pad else raw[split][0]
            splits[split] = colour_split(images, raw[split][1], aligned_share=share, colour_fn=colour_fn, palette=palette,
                                         color_std=color_std, seed=derive_seed(seed, f"{name}/{split}"))
        return splits

    splits = cached_splits(name, params, build)
    return assemble(
        name, splits, aligned_bias=torch.arange(NUM_COLOURS), num_classes=10, num_bias=NUM_COLOURS,
        normalisation=HALF, flip=False, params=params,
    )


def build_cmnist(*, seed: int = 0, root: str | None = None, conflict_ratio: float = 0.01, color_std: float = 0.005) -> BiasedDataset:
    """Coloured MNIST (LfF): digit k drawn in colour k, conflict_ratio of each class in other colours; unbiased test."""
    return _build_lff("cmnist", "MNIST", colour_foreground, seed=seed, root=root, conflict_ratio=conflict_ratio, color_std=color_std)


def build_bg_fmnist(*, seed: int = 0, root: str | None = None, conflict_ratio: float = 0.01, color_std: float = 0.005) -> BiasedDataset:
    """Fashion-MNIST with a coloured background (colour k for class k) and a grey garment; unbiased test."""
    return _build_lff("bg_fmnist", "FashionMNIST", colour_background, seed=seed, root=root, conflict_ratio=conflict_ratio, color_std=color_std)
