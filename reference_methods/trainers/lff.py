"""Learning from Failure (Nam et al., NeurIPS 2020) as an evaluation trainer.

Two nets train side by side on the same batches. The biased net minimises generalised
cross-entropy, which makes it latch onto whatever is easiest (the bias). The debiased net
minimises cross-entropy weighted per sample by the relative difficulty of the two nets' moving
average losses, so the samples the biased net gets wrong (the bias-conflicting ones) count most.
Only the debiased net is returned. No bias labels are used.

Published settings kept here: GCE q = 0.7 and loss EMA alpha = 0.7 (alinlab/LfF, train.py and
module/loss.py), class-wise max-normalisation of the EMAs, Adam with lr 1e-3 (config.py; the
protocol's SGD is ``optimizer="sgd"``, see reference_methods/trainers/optimizers.py for why it is
not the default). Epochs, batch size and the lr x0.1 at half come from ``TrainSchedule``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dd_plugins.progress import progress_bar
from reference_methods.trainers.base import TrainSchedule, shuffled_batches
from reference_methods.trainers.losses import LossEMA, generalized_cross_entropy, relative_difficulty
from reference_methods.trainers.optimizers import (Optimizer, build_optimizer, check_difficulty_trainer_args,
                                                   decay_at_half)


class LfFTrainer:
    """Learning from Failure: a GCE-trained biased net reweights the debiased net's cross-entropy."""

    def __init__(self, q: float = 0.7, ema_alpha: float = 0.7, optimizer: Optimizer = "adam",
                 adam_lr: float = 1e-3) -> None:
        check_difficulty_trainer_args("lff", q, ema_alpha, optimizer, adam_lr)
        self.q = q
        self.ema_alpha = ema_alpha
        self.optimizer = optimizer
        self.adam_lr = adam_lr

    def fit(self, make_net: Callable[[], nn.Module], images: Tensor, labels: Tensor, *,
            schedule: TrainSchedule, augment: Callable[[Tensor], Tensor] | None,
            device: torch.device, generator: torch.Generator, progress: bool = False) -> nn.Module:
        images, labels = images.to(device), labels.to(device)
        biased, debiased = make_net().to(device).train(), make_net().to(device).train()
        params = list(biased.parameters()) + list(debiased.parameters())
        optimizer = build_optimizer(params, schedule, self.optimizer, self.adam_lr)
        num_classes = debiased.classifier.out_features
        ema_biased = LossEMA(labels, num_classes, self.ema_alpha)
        ema_debiased = LossEMA(labels, num_classes, self.ema_alpha)

        bar = progress_bar(range(schedule.epochs), desc="lff", disable=not progress, leave=False)
        for epoch in bar:
            decay_at_half(optimizer, epoch, schedule.epochs)
            for index, x, y in shuffled_batches(images, labels, schedule.batch_size, generator, augment):
                logits_biased, logits_debiased = biased(x), debiased(x)
                ce_biased = F.cross_entropy(logits_biased, y, reduction="none")
                ce_debiased = F.cross_entropy(logits_debiased, y, reduction="none")

                ema_biased.update(index, ce_biased)
                ema_debiased.update(index, ce_debiased)
                weight = relative_difficulty(ema_biased.normalised(index), ema_debiased.normalised(index))

                loss = generalized_cross_entropy(logits_biased, y, self.q).mean() + (ce_debiased * weight).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}", weight=f"{weight.mean().item():.3f}", refresh=False)
        return debiased.eval()
