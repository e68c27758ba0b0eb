"""What a distiller returns, and the protocol every distiller follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from reference_methods.datasets.base import BiasedDataset


@dataclass
class SyntheticSet:
    """The distilled set: images [M, C, H, W] (normalised like the real data), labels [M], extras
    (e.g. MTT's learned learning rate)."""

    images: Tensor
    labels: Tensor
    extras: dict = field(default_factory=dict)


class Distiller(Protocol):
    """A configured distillation method.

    Distils ``data.train`` (``data`` also says how many classes, whether flips are valid...).
    ``weights`` are the normalised per-sample weights of the train split (mean 1 within each
    class); the distiller turns them into real-data batches and losses only through ``adapters``.
    With ``checkpoint_dir`` set it saves its state there periodically and resumes from it.
    """

    def distill(self, data: BiasedDataset, weights: Tensor, *, device: torch.device, seed: int,
                progress: bool = False, checkpoint_dir: Path | None = None) -> SyntheticSet: ...
