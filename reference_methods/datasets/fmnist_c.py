"""``fmnist_c``: Corrupted Fashion-MNIST, the ``cifar10c`` rule on Fashion-MNIST (ours).

Class k mostly gets corruption k of the same ten CIFAR-10-C corruptions, ``conflict_ratio`` of
each class one of the other nine (evenly spread), every corruption equally often in every test
class. Not a published benchmark: it exists so that the paper's corruption-bias analysis (table 4)
can run where CIFAR-10 is unavailable, on data that ships with torchvision's MNIST family. The
grey garments are copied into three channels; Saturate then paints them pink (a grey pixel's hue
is 0, red), a colour shortcut that CIFAR-10's coloured images do not give.
"""

from __future__ import annotations

import torch

from reference_methods.datasets.assemble import HALF, assemble
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.checks import check_choice, check_fraction, check_seed
from reference_methods.datasets.cifar10c import NUM_CORRUPTIONS, corrupt_split
from reference_methods.datasets.corruptions import SEVERITIES
from reference_methods.datasets.raw import load_mnist_family
from reference_methods.datasets.storage import RawSplit, cached_splits, data_root
from reference_methods.seeds import derive_seed


def build_fmnist_c(*, seed: int = 0, root: str | None = None, conflict_ratio: float = 0.01, severity: int = 5) -> BiasedDataset:
    """Corrupted Fashion-MNIST: class k mostly gets corruption k; conflict_ratio spread over the others."""
    check_seed("fmnist_c", seed)
    check_fraction("fmnist_c", "conflict_ratio", conflict_ratio)
    check_choice("fmnist_c", "severity", severity, SEVERITIES)
    params = {"seed": seed, "conflict_ratio": float(conflict_ratio), "severity": severity}

    def build() -> dict[str, RawSplit]:
        raw = load_mnist_family("FashionMNIST", data_root(root))
        shares = {"train": 1.0 - conflict_ratio, "test": 1.0 / NUM_CORRUPTIONS}
        return {
            split: corrupt_split(
                raw[split][0].unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), raw[split][1], aligned_share=share,
                severity=severity, seed=derive_seed(seed, f"fmnist_c/{split}"), desc=f"fmnist_c {split}",
            )
            for split, share in shares.items()
        }

    splits = cached_splits("fmnist_c", params, build)
    return assemble(
        "fmnist_c", splits, aligned_bias=torch.arange(NUM_CORRUPTIONS), num_classes=10, num_bias=NUM_CORRUPTIONS,
        normalisation=HALF, flip=False, params=params,
    )
