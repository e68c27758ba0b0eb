"""The data interface every dataset builder returns and every method and evaluation consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class BiasedSplit:
    """One split: normalised images [N, C, H, W] float32, class labels [N] and bias labels [N].

    ``aligned_bias[c]`` is the bias value that is aligned with class c (colour c for CMNIST), so
    ``aligned`` / ``conflicting`` masks need no dataset-specific code.
    """

    images: Tensor
    labels: Tensor
    bias_labels: Tensor
    aligned_bias: Tensor

    @property
    def aligned(self) -> Tensor:
        return self.bias_labels == self.aligned_bias[self.labels]

    @property
    def conflicting(self) -> Tensor:
        return ~self.aligned

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, indices: Tensor) -> "BiasedSplit":
        return BiasedSplit(self.images[indices], self.labels[indices], self.bias_labels[indices], self.aligned_bias)


@dataclass(frozen=True)
class BiasedDataset:
    """A built dataset: train and (unbiased or protocol-defined) test split plus what nets need to know.

    ``mean``/``std`` undo the normalisation for pictures; ``flip`` says whether horizontal flips
    are a valid augmentation (off for digits).
    """

    name: str
    train: BiasedSplit
    test: BiasedSplit
    num_classes: int
    num_bias: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = True
    params: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def im_size(self) -> tuple[int, int]:
        return (self.train.images.shape[2], self.train.images.shape[3])

    def stats(self) -> dict:
        """Per class counts of aligned and conflicting samples in each split."""
        out = {}
        for split_name, split in (("train", self.train), ("test", self.test)):
            rows = {}
            for c in range(self.num_classes):
                in_class = split.labels == c
                rows[str(c)] = {
                    "aligned": int((in_class & split.aligned).sum()),
                    "conflicting": int((in_class & split.conflicting).sum()),
                }
            out[split_name] = rows
        return out

    def denormalise(self, images: Tensor) -> Tensor:
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images * std + mean).clamp(0, 1)
