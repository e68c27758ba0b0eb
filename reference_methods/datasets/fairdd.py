"""FairDD-protocol datasets (zqhang/FairDD ``data_handler``), for side-by-side numbers with its tables.

``cmnist_fg`` / ``cmnist_bg`` / ``cfmnist_fg`` / ``cfmnist_bg``: MNIST or Fashion-MNIST padded to
32x32 and painted with ten pure colours; in train a ``bias_ratio`` share of class k has colour k
and the rest is spread evenly over the other nine colours; the test split uses ``test_bias_ratio``
(0.1 = every colour equally often). ``cifar10s``: CIFAR10-S, grey versus colour.

C-FMNIST BG keeps the garment's grey levels over the coloured background (as ``bg_fmnist``).
FairDD's code meant a white garment fading into the colour, but its arithmetic overflows, and a
white garment would vanish on FairDD's tenth colour, white.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from reference_methods.datasets.assemble import CIFAR10S, assemble
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.bias import assign_bias
from reference_methods.datasets.checks import check_fraction, check_seed
from reference_methods.datasets.colour import (
    FAIRDD_COLOURS,
    binary_background,
    binary_foreground,
    colour_background,
    colour_foreground,
)
from reference_methods.datasets.lff import coloured_mnist_family
from reference_methods.datasets.raw import load_cifar10
from reference_methods.datasets.storage import RawSplit, cached_splits, data_root
from reference_methods.seeds import derive_seed, generator

PAD = 2  # 28 -> 32, centred (FairDD pads 4 pixels on the top and left only)


def _build_colour(
    name: str, source: str, colour_fn: Callable[[Tensor, Tensor], Tensor], *, seed: int, root: str | None,
    bias_ratio: float, test_bias_ratio: float,
) -> BiasedDataset:
    check_seed(name, seed)
    check_fraction(name, "bias_ratio", bias_ratio)
    check_fraction(name, "test_bias_ratio", test_bias_ratio)
    params = {"seed": seed, "bias_ratio": float(bias_ratio), "test_bias_ratio": float(test_bias_ratio)}
    shares = {"train": bias_ratio, "test": test_bias_ratio}
    return coloured_mnist_family(name, source, colour_fn, palette=FAIRDD_COLOURS, shares=shares, color_std=0.0,
                                 seed=seed, root=root, params=params, pad=PAD)


def build_cmnist_fg(*, seed: int = 0, root: str | None = None, bias_ratio: float = 0.9, test_bias_ratio: float = 0.1) -> BiasedDataset:
    """FairDD C-MNIST (FG): 32x32 binarised digit in one of ten pure colours, bias_ratio of class k in colour k."""
    return _build_colour("cmnist_fg", "MNIST", binary_foreground, seed=seed, root=root, bias_ratio=bias_ratio, test_bias_ratio=test_bias_ratio)


def build_cmnist_bg(*, seed: int = 0, root: str | None = None, bias_ratio: float = 0.9, test_bias_ratio: float = 0.1) -> BiasedDataset:
    """FairDD C-MNIST (BG): 32x32 black digit on a pure-colour background, bias_ratio of class k on colour k."""
    return _build_colour("cmnist_bg", "MNIST", binary_background, seed=seed, root=root, bias_ratio=bias_ratio, test_bias_ratio=test_bias_ratio)


def build_cfmnist_fg(*, seed: int = 0, root: str | None = None, bias_ratio: float = 0.9, test_bias_ratio: float = 0.1) -> BiasedDataset:
    """FairDD C-FMNIST (FG): 32x32 garment shaded from black to a pure colour, bias_ratio of class k in colour k."""
    return _build_colour("cfmnist_fg", "FashionMNIST", colour_foreground, seed=seed, root=root, bias_ratio=bias_ratio, test_bias_ratio=test_bias_ratio)


def build_cfmnist_bg(*, seed: int = 0, root: str | None = None, bias_ratio: float = 0.9, test_bias_ratio: float = 0.1) -> BiasedDataset:
    """FairDD C-FMNIST (BG): 32x32 grey garment on a pure-colour background, bias_ratio of class k on colour k."""
    return _build_colour("cfmnist_bg", "FashionMNIST", colour_background, seed=seed, root=root, bias_ratio=bias_ratio, test_bias_ratio=test_bias_ratio)


def pil_grey(images: Tensor) -> Tensor:
    """uint8 RGB [N, 3, H, W] -> uint8 grey replicated to 3 channels, exactly as PIL's ``convert("L")``."""
    rgb = images.to(torch.int32)
    luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16
    return luma.to(torch.uint8).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


GREY, COLOUR = 0, 1
# Classes 0-4 are mostly grey and classes 5-9 mostly in colour (FairDD data_handler/cifar10.py).
CIFAR10S_ALIGNED = torch.tensor([GREY] * 5 + [COLOUR] * 5)


def cifar10s_splits(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], *, bias_ratio: float, seed: int) -> dict[str, RawSplit]:
    """CIFAR10-S from uint8 CIFAR images [N, 3, 32, 32] and labels.

    Train: per class, a ``bias_ratio`` share in the class's majority mode (grey for 0-4, colour for
    5-9), the rest in the other mode. Test: every test image twice, once grey and once in colour.
    """
    images, labels = train
    bias = assign_bias(labels, CIFAR10S_ALIGNED, bias_ratio, 2, generator(seed))
    grey = bias == GREY
    train_images = images.clone()
    train_images[grey] = pil_grey(images[grey])
    test_images, test_labels = test
    return {
        "train": RawSplit(train_images, labels, bias),
        "test": RawSplit(
            torch.cat((pil_grey(test_images), test_images)),
            torch.cat((test_labels, test_labels)),
            torch.cat((torch.full_like(test_labels, GREY), torch.full_like(test_labels, COLOUR))),
        ),
    }


def build_cifar10s(*, seed: int = 0, root: str | None = None, bias_ratio: float = 0.9) -> BiasedDataset:
    """FairDD CIFAR10-S: classes 0-4 mostly grey, 5-9 mostly colour (bias_ratio); test has both versions of each image."""
    check_seed("cifar10s", seed)
    check_fraction("cifar10s", "bias_ratio", bias_ratio)
    params = {"seed": seed, "bias_ratio": float(bias_ratio)}

    def build() -> dict[str, RawSplit]:
        raw = load_cifar10(data_root(root))
        return cifar10s_splits(raw["train"], raw["test"], bias_ratio=bias_ratio, seed=derive_seed(seed, "cifar10s/train"))

    splits = cached_splits("cifar10s", params, build)
    return assemble(
        "cifar10s", splits, aligned_bias=CIFAR10S_ALIGNED, num_classes=10, num_bias=2,
        normalisation=CIFAR10S, flip=True, params=params,
    )
