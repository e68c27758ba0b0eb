"""``cifar10c``: Corrupted CIFAR-10, LfF "type0" (class k gets corruption k of ``CORRUPTIONS``).

Same ratio and test rules as ``cmnist``: ``conflict_ratio`` of each training class carries one of
the other nine corruptions (evenly spread), and the test split has every corruption equally often
in every class. ``severity`` is the CIFAR-10-C level 1-5; LfF's published "Severity4" folders
were made with level 5 (its make_dataset.py passes ``severity + 1``), hence the default.
Needs the real CIFAR-10 (torchvision downloads it into the data root).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from dd_plugins.progress import progress_bar
from reference_methods.datasets.assemble import CIFAR10, assemble
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.bias import assign_bias
from reference_methods.datasets.checks import check_choice, check_fraction, check_seed
from reference_methods.datasets.colour import to_uint8
from reference_methods.datasets.corruptions import CORRUPTIONS, SEVERITIES
from reference_methods.datasets.raw import load_cifar10
from reference_methods.datasets.storage import RawSplit, cached_splits, data_root
from reference_methods.seeds import derive_seed, generator

NUM_CORRUPTIONS = len(CORRUPTIONS)
CHUNK = 1000


def corrupt_split(images: Tensor, labels: Tensor, *, aligned_share: float, severity: int, seed: int, desc: str = "corrupting") -> RawSplit:
    """Assign corruptions with exact per-class counts and apply them to uint8 images [N, 3, H, W]."""
    bias = assign_bias(labels, torch.arange(NUM_CORRUPTIONS), aligned_share, NUM_CORRUPTIONS, generator(seed))
    out = torch.empty_like(images)
    chunks = []
    for k in range(NUM_CORRUPTIONS):
        members = torch.nonzero(bias == k).flatten()
        chunks += [(k, members[start : start + CHUNK]) for start in range(0, len(members), CHUNK)]
    corruptions = list(CORRUPTIONS.values())
    generators = [generator(derive_seed(seed, f"corruption/{k}")) for k in range(NUM_CORRUPTIONS)]
    for k, idx in progress_bar(chunks, desc=desc, disable=None, leave=False):
        clean = images[idx].float() / 255.0
        out[idx] = to_uint8(corruptions[k](clean, severity, generators[k]))
    return RawSplit(out, labels.to(torch.int64), bias)


def build_corrupted(name: str, load_raw: Callable[[], dict], *, seed: int, conflict_ratio: float, severity: int,
                    normalisation: tuple, flip: bool) -> BiasedDataset:
    """A corrupted dataset from uint8 ``train``/``test`` images [N, 3, H, W] and labels (``load_raw``):
    class k mostly gets corruption k, the test split every corruption equally often. Cached."""
    check_seed(name, seed)
    check_fraction(name, "conflict_ratio", conflict_ratio)
    check_choice(name, "severity", severity, SEVERITIES)
    params = {"seed": seed, "conflict_ratio": float(conflict_ratio), "severity": severity}

    def build() -> dict[str, RawSplit]:
        raw = load_raw()
        shares = {"train": 1.0 - conflict_ratio, "test": 1.0 / NUM_CORRUPTIONS}
        return {
            split: corrupt_split(
                raw[split][0], raw[split][1], aligned_share=share, severity=severity,
                seed=derive_seed(seed, f"{name}/{split}"), desc=f"{name} {split}",
            )
            for split, share in shares.items()
        }

    splits = cached_splits(name, params, build)
    return assemble(
        name, splits, aligned_bias=torch.arange(NUM_CORRUPTIONS), num_classes=10, num_bias=NUM_CORRUPTIONS,
        normalisation=normalisation, flip=flip, params=params,
    )


def build_cifar10c(*, seed: int = 0, root: str | None = None, conflict_ratio: float = 0.01, severity: int = 5) -> BiasedDataset:
    """Corrupted CIFAR-10 (LfF type0): class k mostly gets corruption k; conflict_ratio spread over the others."""
    return build_corrupted("cifar10c", lambda: load_cifar10(data_root(root)), seed=seed, conflict_ratio=conflict_ratio,
                           severity=severity, normalisation=CIFAR10, flip=True)
