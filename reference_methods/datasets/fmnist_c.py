"""``fmnist_c``: Corrupted Fashion-MNIST, the ``cifar10c`` rule on Fashion-MNIST (ours).

Class k mostly gets corruption k of the same ten CIFAR-10-C corruptions, ``conflict_ratio`` of
each class one of the other nine (evenly spread), every corruption equally often in every test
class. Not a published benchmark: it exists so that the paper's corruption-bias analysis (table 4)
can run where CIFAR-10 is unavailable, on Fashion-MNIST, which torchvision downloads. The grey
garments are copied into three channels; Saturate then paints them pink (a grey pixel's hue
is 0, red), a colour shortcut that CIFAR-10's coloured images do not give.
"""

from __future__ import annotations

from reference_methods.datasets.assemble import HALF
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.cifar10c import build_corrupted
from reference_methods.datasets.raw import load_mnist_family
from reference_methods.datasets.storage import data_root


def build_fmnist_c(*, seed: int = 0, root: str | None = None, conflict_ratio: float = 0.01, severity: int = 5) -> BiasedDataset:
    """Corrupted Fashion-MNIST: class k mostly gets corruption k; conflict_ratio spread over the others."""

    def load_raw() -> dict:
        raw = load_mnist_family("FashionMNIST", data_root(root))
        return {split: (grey.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), labels)
                for split, (grey, labels) in raw.items()}

    return build_corrupted("fmnist_c", load_raw, seed=seed, conflict_ratio=conflict_ratio, severity=severity,
                           normalisation=HALF, flip=False)
