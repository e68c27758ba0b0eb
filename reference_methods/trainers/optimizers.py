"""The optimiser of a debiasing trainer: the papers' Adam (default) or the evaluation protocol's SGD.

LfF and DFA were published with Adam and no weight decay (alinlab/LfF config.py: lr 1e-3 on
Colored MNIST; DFA's README: 1e-3 with ResNet-18 on Corrupted CIFAR-10, 1e-2 with its CMNIST MLP).
Their biased branch minimises generalised cross-entropy, whose gradient is p_y^q times that of
cross-entropy: about 0.2x at initialisation for 10 classes. Adam normalises that scale away; plain
SGD does not, so the debiased net learns the bias first and the relative-difficulty weights point
the wrong way early on (measured in docs/trainers.md). Epochs, batch size and the lr x0.1 at half
come from ``TrainSchedule`` with either optimiser.
"""

from __future__ import annotations

from typing import Iterable, Literal

import torch

from reference_methods.trainers.base import TrainSchedule

Optimizer = Literal["adam", "sgd"]


def build_optimizer(params: Iterable[torch.nn.Parameter], schedule: TrainSchedule, optimizer: Optimizer,
                    adam_lr: float) -> torch.optim.Optimizer:
    """Adam(lr=adam_lr, no weight decay) as published, or SGD with the schedule's lr, momentum and weight decay."""
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=adam_lr)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay)
    raise ValueError(f"unknown optimizer '{optimizer}'; use 'adam' (published) or 'sgd' (the evaluation protocol)")


def decay_at_half(optimizer: torch.optim.Optimizer, epoch: int, epochs: int) -> None:
    """The protocol's schedule: multiply every learning rate by 0.1 when ``epoch`` reaches half of ``epochs``."""
    if epoch == epochs // 2:
        for group in optimizer.param_groups:
            group["lr"] *= 0.1


def check_difficulty_trainer_args(trainer: str, q: float, ema_alpha: float, optimizer: str, adam_lr: float) -> None:
    """The arguments that LfF and DFA share (GCE q, loss EMA, optimiser), checked with one message each."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"{trainer}: q must be in (0, 1], got {q}; the published value is 0.7")
    if not 0.0 <= ema_alpha < 1.0:
        raise ValueError(f"{trainer}: ema_alpha must be in [0, 1), got {ema_alpha}; the published value is 0.7")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"{trainer}: optimizer must be 'adam' (published) or 'sgd' "
                         f"(the evaluation protocol), got {optimizer!r}")
    if adam_lr <= 0:
        raise ValueError(f"{trainer}: adam_lr must be > 0, got {adam_lr}; the published value is 1e-3")
