"""Colouring grey images by a bias colour, as the LfF and FairDD protocols do.

All functions take grey images in [0, 1] as [N, H, W] and return RGB [N, 3, H, W] in [0, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor

# LfF's ten mean colours (alinlab/LfF data/resource/colors.th), RGB in [0, 1]; colour k is class k's.
# Colours 0 and 9 are both reds (0.21 apart in RGB, the closest pair); kept as published so numbers compare with LfF's.
LFF_COLOURS = torch.tensor(
    [
        [0.984, 0.313, 0.169],
        [0.991, 0.916, 0.352],
        [0.673, 0.461, 0.580],
        [0.783, 0.832, 0.601],
        [0.088, 0.778, 0.982],
        [0.321, 0.961, 0.446],
        [0.025, 0.236, 0.759],
        [0.555, 0.102, 0.762],
        [0.208, 0.393, 0.019],
        [0.834, 0.202, 0.267],
    ]
)

# FairDD's (ReBias') ten pure colours, zqhang/FairDD data_handler/colour_mnist.py COLOUR_MAP.
FAIRDD_COLOURS = (
    torch.tensor(
        [
            [255, 0, 0],
            [255, 128, 0],
            [255, 255, 0],
            [255, 255, 128],
            [0, 255, 0],
            [0, 255, 255],
            [0, 0, 255],
            [128, 0, 255],
            [255, 0, 255],
            [255, 255, 255],
        ],
        dtype=torch.float32,
    )
    / 255.0
)

# Fashion-MNIST backgrounds are exactly 0; a pixel counts as garment in proportion to its
# intensity up to this level, so edges blend softly and dark garments stay opaque.
GARMENT_OPACITY_LEVEL = 10.0 / 255.0


def noisy_colours(bias_labels: Tensor, palette: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """One colour per image [N, 3]: the palette colour plus Gaussian noise per channel, clipped to [0, 1].

    LfF (data/colored_mnist_protocol.py) draws the noise per image; std 0.005 is its "severity 4".
    """
    noise = torch.randn((len(bias_labels), 3), generator=generator) * std
    return (palette[bias_labels] + noise).clamp(0.0, 1.0)


def colour_foreground(grey: Tensor, colours: Tensor) -> Tensor:
    """The stroke takes the colour in proportion to its intensity; the background stays black (LfF CMNIST)."""
    return grey.unsqueeze(1) * colours.view(-1, 3, 1, 1)


def colour_background(grey: Tensor, colours: Tensor) -> Tensor:
    """The background takes the colour; the object keeps its grey level (BG-FMNIST)."""
    opacity = (grey / GARMENT_OPACITY_LEVEL).clamp(0.0, 1.0).unsqueeze(1)
    return opacity * grey.unsqueeze(1) + (1.0 - opacity) * colours.view(-1, 3, 1, 1)


def binary_foreground(grey: Tensor, colours: Tensor) -> Tensor:
    """Pixels >= 128/255 become the pure colour, the rest black (FairDD C-MNIST FG)."""
    mask = (grey >= 128.0 / 255.0).to(grey.dtype).unsqueeze(1)
    return mask * colours.view(-1, 3, 1, 1)


def binary_background(grey: Tensor, colours: Tensor) -> Tensor:
    """Pixels < 128/255 become the pure colour, the digit black (FairDD C-MNIST BG)."""
    mask = (grey < 128.0 / 255.0).to(grey.dtype).unsqueeze(1)
    return mask * colours.view(-1, 3, 1, 1)


def to_uint8(images: Tensor) -> Tensor:
    """[0, 1] float images to uint8, rounding to the nearest level."""
    return images.clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
