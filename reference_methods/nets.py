"""Networks: the VICO ConvNet and a ResNet-18. A leaf module: imports nothing else of the project.

Every net exposes ``embed(x) -> [B, D]`` features and a linear ``classifier`` so that DM can
match embeddings, SupCon can put a head on the features and DFA can concatenate two encoders.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instancenorm":  # VICO's instance norm: GroupNorm with one group per channel
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; expected instancenorm, batchnorm or none")


class ConvNet(nn.Module):
    """ConvNet-D of the VICO code: [conv3x3 -> norm -> ReLU -> avgpool2] x depth, then a linear layer.

    Width 128, depth 3 and instance norm are the published defaults. As in the VICO code, the
    first conv pads by 3 for one-channel inputs (28x28 MNIST becomes 32x32).
    """

    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int],
                 width: int = 128, depth: int = 3, norm: str = "instancenorm") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels, h, w = channels, im_size[0], im_size[1]
        for d in range(depth):
            pad = 3 if channels == 1 and d == 0 else 1
            layers += [nn.Conv2d(in_channels, width, 3, padding=pad), _norm(norm, width), nn.ReLU(inplace=True)]
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            if h >= 2 and w >= 2:
                layers.append(nn.AvgPool2d(2, 2))
                h, w = h // 2, w // 2
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.feature_dim = width * h * w
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _norm(norm, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), _norm(norm, planes))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images (3x3 stem, no max-pool), as used for cross-architecture evaluation."""

    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int] = (32, 32),
                 norm: str = "instancenorm") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 64, 3, 1, 1, bias=False), _norm(norm, 64), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        in_planes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(in_planes, planes, stride, norm), _BasicBlock(planes, planes, 1, norm)]
            in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.feature_dim = 512
        self.classifier = nn.Linear(512, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        out = self.layers(self.stem(x))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


def build_net(name: str, channels: int, num_classes: int, im_size: tuple[int, int], **kwargs) -> nn.Module:
    """Build a net by name: ``convnet`` (kwargs width, depth, norm) or ``resnet18`` (kwarg norm)."""
    if name == "convnet":
        return ConvNet(channels, num_classes, im_size, **kwargs)
    if name == "resnet18":
        return ResNet18(channels, num_classes, im_size, **kwargs)
    raise ValueError(f"unknown net '{name}'; expected convnet or resnet18")
