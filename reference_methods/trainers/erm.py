"""Plain empirical risk minimisation: the VICO evaluation loop (``evaluate_synset`` in utils.py).

Mini-batch SGD on cross-entropy with the protocol's ``TrainSchedule`` (lr 0.01, momentum 0.9,
weight decay 5e-4, batch 256, lr x0.1 at half of the epochs), the DSA augmentation applied to
each batch when given. This is the trainer behind every number of the distillation tables.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dd_plugins.progress import progress_bar
from reference_methods.trainers.base import TrainSchedule, shuffled_batches
from reference_methods.trainers.optimizers import decay_at_half


class ERMTrainer:
    """Empirical risk minimisation: cross-entropy with SGD, the VICO evaluation protocol."""

    def fit(self, make_net: Callable[[], nn.Module], images: Tensor, labels: Tensor, *,
            schedule: TrainSchedule, augment: Callable[[Tensor], Tensor] | None,
            device: torch.device, generator: torch.Generator, progress: bool = False) -> nn.Module:
        images, labels = images.to(device), labels.to(device)
        net = make_net().to(device).train()
        optimizer = torch.optim.SGD(net.parameters(), lr=schedule.lr, momentum=schedule.momentum,
                                    weight_decay=schedule.weight_decay)
        bar = progress_bar(range(schedule.epochs), desc="erm", disable=not progress, leave=False)
        for epoch in bar:
            decay_at_half(optimizer, epoch, schedule.epochs)
            for _, x, y in shuffled_batches(images, labels, schedule.batch_size, generator, augment):
                loss = F.cross_entropy(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if progress:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        return net.eval()
