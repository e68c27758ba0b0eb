"""``cdigits``: the offline default, scikit-learn's bundled 8x8 digits coloured like ``cmnist``.

No download and no cache: the 1797 digits ship inside the scikit-learn wheel and building takes a
fraction of a second, so the quickstart and end-to-end tests run anywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference_methods.datasets.assemble import HALF, assemble
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.checks import check_fraction, check_non_negative, check_seed
from reference_methods.datasets.colour import LFF_COLOURS, colour_foreground
from reference_methods.datasets.lff import NUM_COLOURS, colour_split
from reference_methods.seeds import derive_seed

IMAGE_SIZE = 16
TEST_SHARE = 0.25


def digits_16px() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits (values 0-16) as uint8 [1797, 16, 16] grey images and int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0
    grey = F.interpolate(grey, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    grey = (grey.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8)
    return grey, torch.from_numpy(digits.target).to(torch.int64)


def fixed_split(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices: the last quarter of each class (in file order) is the test set.

    Fixed, not seeded, so every run and every seed evaluates on the same digits.
    """
    train, test = [], []
    for c in range(int(labels.max()) + 1):
        members = torch.nonzero(labels == c).flatten()
        cut = len(members) - round(len(members) * TEST_SHARE)
        train.append(members[:cut])
        test.append(members[cut:])
    return torch.cat(train), torch.cat(test)


def build_cdigits(*, seed: int = 0, root: str | None = None, conflict_ratio: float = 0.05, color_std: float = 0.005) -> BiasedDataset:
    """Coloured 16x16 scikit-learn digits (offline, instant): CMNIST's colours and protocol at toy scale."""
    check_seed("cdigits", seed)
    check_fraction("cdigits", "conflict_ratio", conflict_ratio)
    check_non_negative("cdigits", "color_std", color_std)
    params = {"seed": seed, "conflict_ratio": float(conflict_ratio), "color_std": float(color_std)}
    grey, labels = digits_16px()
    train_idx, test_idx = fixed_split(labels)
    shares = {"train": 1.0 - conflict_ratio, "test": 1.0 / NUM_COLOURS}
    indices = {"train": train_idx, "test": test_idx}
    splits = {
        split: colour_split(
            grey[indices[split]], labels[indices[split]], aligned_share=share, colour_fn=colour_foreground,
            palette=LFF_COLOURS, color_std=color_std, seed=derive_seed(seed, f"cdigits/{split}"),
        )
        for split, share in shares.items()
    }
    return assemble(
        "cdigits", splits, aligned_bias=torch.arange(NUM_COLOURS), num_classes=10, num_bias=NUM_COLOURS,
        normalisation=HALF, flip=False, params=params,
    )
