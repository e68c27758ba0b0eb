"""The schedule of the evaluation protocol, and the protocol every evaluation trainer follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class TrainSchedule:
    """The VICO evaluation schedule: SGD with momentum, lr x0.1 at half of the epochs."""

    epochs: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256


class Trainer(Protocol):
    """Trains nets built by ``make_net`` on (images, labels) and returns a module giving logits.

    ``augment(x) -> x`` is the protocol's DSA augmentation (or None); trainers never see bias labels.
    """

    def fit(self, make_net: Callable[[], nn.Module], images: Tensor, labels: Tensor, *,
            schedule: TrainSchedule, augment: Callable[[Tensor], Tensor] | None,
            device: torch.device, generator: torch.Generator, progress: bool = False) -> nn.Module: ...


def shuffled_batches(images: Tensor, labels: Tensor, batch_size: int, generator: torch.Generator,
                     augment: Callable[[Tensor], Tensor] | None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """One epoch in a fresh random order: (indices, images augmented when ``augment`` is given, labels)
    per batch. The indices let a trainer keep per-sample state, such as LfF's loss averages."""
    n = labels.shape[0]
    order = torch.randperm(n, generator=generator, device=generator.device).to(labels.device)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        x = images[index]
        yield index, (augment(x) if augment is not None else x), labels[index]
