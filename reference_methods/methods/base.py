"""What a distiller returns, and the protocol every distiller follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from reference_methods.datasets.base import BiasedSplit


@dataclass
class SyntheticSet:
    """The distilled set: images [M, C, H, W] (normalised like the real data), labels [M], extras
    (e.g. MTT's learned learning rate)."""

    images: Tensor
    labels: Tensor
    extras: dict = field(default_factory=dict)


class Distiller(Protocol):
    """A configured distillation method.

    ``weights`` are the normalised per-sample weights (mean 1 within each class); the distiller
    turns them into real-data batches and losses only through ``adapters``.
    """

    def distill(self, train: BiasedSplit, weights: Tensor, *, device: torch.device, seed: int,
                progress: bool = False, checkpoint_dir: Path | None = None) -> SyntheticSet: ...
