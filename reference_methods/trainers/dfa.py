"""Disentangled Feature Augmentation (Lee et al., NeurIPS 2021) as an evaluation trainer.

An intrinsic encoder E_i and a bias encoder E_b (two nets from ``make_net``, used through
``embed``) give features z = [z_i, z_b]. Two linear classifiers read the concatenation: C_i is
trained with cross-entropy weighted by LfF's relative difficulty, C_b with generalised
cross-entropy, and each encoder only receives gradients through its own classifier (the other
half of z is detached). After a warm-up, z_b is permuted within the batch: [z_i, z_b~] keeps the
label y for C_i and takes the partner's label y~ for C_b, which synthesises bias-conflicting
features from the many bias-aligned samples. No bias labels are used.

Published CMNIST settings kept here (kakaoenterprise/Learning-Debiased-Disentangled,
scripts/run_cmnist_ours.sh and train.py): GCE q = 0.7, EMA alpha = 0.7, lambda_dis_align = 10,
lambda_swap_align = 10, lambda_swap = 1, swapping after 10k of 50k steps (``swap_after`` = 0.2).
Optimiser: Adam with lr 1e-3 (DFA's Corrupted CIFAR-10 value, with a conv net; 1e-2 with its
CMNIST MLP), or the protocol's SGD with ``optimizer="sgd"`` (reference_methods/trainers/optimizers.py
says why SGD is not the default). Epochs, batch size and the lr x0.1 at half come from
``TrainSchedule`` instead of DFA's step decay; see docs/trainers.md.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dd_plugins.progress import progress_bar
from reference_methods.trainers.base import TrainSchedule, shuffled_batches
from reference_methods.trainers.losses import LossEMA, generalized_cross_entropy, relative_difficulty
from reference_methods.trainers.optimizers import (Optimizer, build_optimizer, check_difficulty_trainer_args,
                                                   decay_at_half)


class DisentangledNet(nn.Module):
    """The DFA net used at test time: C_i([E_i(x), E_b(x)]). Exposes ``embed`` like every net."""

    def __init__(self, intrinsic: nn.Module, bias: nn.Module, classifier: nn.Linear) -> None:
        super().__init__()
        self.intrinsic = intrinsic
        self.bias = bias
        self.classifier = classifier
        self.feature_dim = classifier.in_features

    def embed(self, x: Tensor) -> Tensor:
        return torch.cat([self.intrinsic.embed(x), self.bias.embed(x)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


def swap_bias_features(z_bias: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Permute the bias features within the batch; return them with the labels they came with (y~)."""
    perm = torch.randperm(labels.shape[0], generator=generator, device=generator.device).to(labels.device)
    return z_bias[perm], labels[perm]


class DFATrainer:
    """Disentangled Feature Augmentation: intrinsic and bias encoders with feature swapping."""

    def __init__(self, q: float = 0.7, ema_alpha: float = 0.7, lambda_dis: float = 10.0,
                 lambda_swap_align: float = 10.0, lambda_swap: float = 1.0, swap_after: float = 0.2,
                 optimizer: Optimizer = "adam", adam_lr: float = 1e-3) -> None:
        check_difficulty_trainer_args("dfa", q, ema_alpha, optimizer, adam_lr)
        if not 0.0 <= swap_after <= 1.0:
            raise ValueError(f"dfa: swap_after is the fraction of training steps before feature swapping "
                             f"starts and must be in [0, 1], got {swap_after}; the published CMNIST value is 0.2")
        for name, value in (("lambda_dis", lambda_dis), ("lambda_swap_align", lambda_swap_align),
                            ("lambda_swap", lambda_swap)):
            if value < 0:
                raise ValueError(f"dfa: {name} must be >= 0, got {value}")
        self.q = q
        self.ema_alpha = ema_alpha
        self.optimizer = optimizer
        self.adam_lr = adam_lr
        self.lambda_dis = lambda_dis
        self.lambda_swap_align = lambda_swap_align
        self.lambda_swap = lambda_swap
        self.swap_after = swap_after

    def fit(self, make_net: Callable[[], nn.Module], images: Tensor, labels: Tensor, *,
            schedule: TrainSchedule, augment: Callable[[Tensor], Tensor] | None,
            device: torch.device, generator: torch.Generator, progress: bool = False) -> nn.Module:
        images, labels = images.to(device), labels.to(device)
        n = labels.shape[0]
        intrinsic, bias = make_net().to(device), make_net().to(device)
        num_classes = intrinsic.classifier.out_features
        width = intrinsic.feature_dim + bias.feature_dim
        net = DisentangledNet(intrinsic, bias, nn.Linear(width, num_classes)).to(device).train()
        bias_classifier = nn.Linear(width, num_classes).to(device)
        # The encoders' own classifiers get no gradient; the optimisers skip parameters whose grad is None.
        params = list(net.parameters()) + list(bias_classifier.parameters())
        optimizer = build_optimizer(params, schedule, self.optimizer, self.adam_lr)
        ema_intrinsic = LossEMA(labels, num_classes, self.ema_alpha)
        ema_bias = LossEMA(labels, num_classes, self.ema_alpha)
        steps_per_epoch = math.ceil(n / schedule.batch_size)
        swap_from_step = round(self.swap_after * schedule.epochs * steps_per_epoch)

        step = 0
        bar = progress_bar(range(schedule.epochs), desc="dfa", disable=not progress, leave=False)
        for epoch in bar:
            decay_at_half(optimizer, epoch, schedule.epochs)
            for index, x, y in shuffled_batches(images, labels, schedule.batch_size, generator, augment):
                z_i, z_b = intrinsic.embed(x), bias.embed(x)
                # Each encoder learns only through its own classifier: detach the other half.
                logits_i = net.classifier(torch.cat([z_i, z_b.detach()], dim=1))
                logits_b = bias_classifier(torch.cat([z_i.detach(), z_b], dim=1))
                ce_i = F.cross_entropy(logits_i, y, reduction="none")
                ce_b = F.cross_entropy(logits_b, y, reduction="none")

                ema_intrinsic.update(index, ce_i)
                ema_bias.update(index, ce_b)
                weight = relative_difficulty(ema_bias.normalised(index), ema_intrinsic.normalised(index))

                loss = (ce_i * weight).mean() + self.lambda_dis * generalized_cross_entropy(logits_b, y, self.q).mean()
                if step >= swap_from_step:
                    z_b_swap, y_swap = swap_bias_features(z_b, y, generator)
                    logits_i_swap = net.classifier(torch.cat([z_i, z_b_swap.detach()], dim=1))
                    logits_b_swap = bias_classifier(torch.cat([z_i.detach(), z_b_swap], dim=1))
                    loss_swap = (F.cross_entropy(logits_i_swap, y, reduction="none") * weight).mean() \
                        + self.lambda_swap_align * generalized_cross_entropy(logits_b_swap, y_swap, self.q).mean()
                    loss = loss + self.lambda_swap * loss_swap
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}", weight=f"{weight.mean().item():.3f}", refresh=False)
        return net.eval()
