"""Gradient matching with Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021).

Each iteration takes a fresh random net. ``outer_loop`` times: for every class, the gradient of
the real batch's weighted cross-entropy (``adapters.gradient_matching``) is matched to that of the
synthetic class under the same DSA parameters, with VICO's layer-wise distance; the synthetic
images take one SGD step on the summed distance; then the net trains ``inner_loop`` epochs on the
synthetic set, so later outer steps match gradients further along a training run.
Defaults are VICO-UoE/DatasetCondensation ``main.py``: 1000 iterations, lr_img 0.1 (momentum 0.5),
lr_net 0.01 (plain SGD), 256 real images per class, batch 256 for the inner epochs.

Under torchrun each rank matches a block of classes (``reference_methods.distributed``): all
ranks draw the same nets, batches and augmentations, each computes the gradient distance of its
own classes only, and after every image step the ranks exchange their synthetic rows, so each
trains the next inner epochs on the whole, identical set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from adapters.gradient_matching import weighted_cross_entropy
from adapters.sampling import MODES as SAMPLING_MODES
from adapters.sampling import ClassSampler
from dd_plugins.progress import progress_bar
from reference_methods import distributed
from reference_methods.augment import DSAugment
from reference_methods.datasets.base import BiasedDataset
from reference_methods.methods.base import SyntheticSet
from reference_methods.methods.loop import (Checkpoint, check_distiller_args, class_real_images, initial_images, net_kwargs,
                                            run_parameters, seeded_net, synthetic_labels, weights_digest)
from reference_methods.seeds import derive_seed, generator

# (outer_loop, inner_loop) per IPC, from VICO's get_loops.
PUBLISHED_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def loops_for_ipc(ipc: int) -> tuple[int, int]:
    """VICO's (outer_loop, inner_loop) for ``ipc``; other IPCs take the nearest published IPC (ties: the smaller)."""
    nearest = min(PUBLISHED_LOOPS, key=lambda published: (abs(published - ipc), published))
    return PUBLISHED_LOOPS[nearest]


def gradient_distance(grads_syn: list[Tensor], grads_real: list[Tensor]) -> Tensor:
    """VICO's layer-wise distance ("ours"): Σ over output units of 1 - cosine similarity.

    Each weight gradient is viewed as [out, rest] (conv kernels flattened per output channel);
    one-dimensional parameters (biases, norm scales) are skipped, as in VICO's ``distance_wb``.
    """
    total = grads_syn[0].new_zeros(())
    for g_syn, g_real in zip(grads_syn, grads_real):
        if g_syn.dim() == 1:
            continue
        g_syn, g_real = g_syn.flatten(1), g_real.flatten(1)
        cosine = (g_syn * g_real).sum(-1) / (g_syn.norm(dim=-1) * g_real.norm(dim=-1) + 1e-6)
        total = total + (1 - cosine).sum()
    return total


@dataclass(frozen=True)
class DSADistiller:
    """Gradient matching with Differentiable Siamese Augmentation (VICO defaults).

    ``outer_loop``/``inner_loop`` left at None follow ``loops_for_ipc``. ``sampling`` is the
    ``ClassSampler`` mode for the real batches and the real init.
    """

    ipc: int = 10
    iterations: int = 1000
    lr_img: float = 0.1
    lr_net: float = 0.01
    batch_real: int = 256
    batch_train: int = 256
    outer_loop: int | None = None
    inner_loop: int | None = None
    init: str = "real"
    sampling: str = "resample"
    net: str = "convnet"
    net_width: int = 128
    net_depth: int = 3
    net_norm: str = "instancenorm"
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        check_distiller_args("dsa", self, ("ipc", "batch_real", "batch_train", "checkpoint_every"), SAMPLING_MODES)
        for name in ("outer_loop", "inner_loop"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"dsa: {name} must be >= 1 or left unset (None) to follow the IPC table")

    def loops(self) -> tuple[int, int]:
        outer, inner = loops_for_ipc(self.ipc)
        return (outer if self.outer_loop is None else self.outer_loop,
                inner if self.inner_loop is None else self.inner_loop)

    def distill(self, data: BiasedDataset, weights: Tensor, *, device: torch.device, seed: int,
                progress: bool = False, checkpoint_dir: Path | None = None) -> SyntheticSet:
        device = torch.device(device)
        outer_loop, inner_loop = self.loops()
        gen = generator(derive_seed(seed, "dsa"))
        sampler = ClassSampler(data.train.labels, weights, data.num_classes, mode=self.sampling,
                               generator=generator(derive_seed(seed, "dsa-sampler")))
        augment = DSAugment(flip=data.flip)
        classes = distributed.class_range(data.num_classes)  # this rank's classes: all of them in one process
        real_images, position = class_real_images(data, classes, device)
        labels_syn = synthetic_labels(data.num_classes, self.ipc, device)
        image_syn = initial_images(data, self.ipc, self.init, gen, device, weights).requires_grad_(True)
        optimizer_img = torch.optim.SGD([image_syn], lr=self.lr_img, momentum=0.5)

        identity = {"method": "dsa", "seed": seed, "data": data.name, "n_train": len(data.train),
                    "weights": weights_digest(weights),
                    **run_parameters(self, exclude=("iterations", "checkpoint_every"))}
        checkpoint = Checkpoint(checkpoint_dir, "dsa", identity)
        tensors = {"images": image_syn}
        states = {"optimizer_img": optimizer_img, "generator": gen, "sampler": sampler}
        start, _ = checkpoint.resume(self.iterations, tensors, states)

        bar = progress_bar(range(start, self.iterations), initial=start, total=self.iterations, desc="dsa",
                   disable=not progress)
        for iteration in bar:
            net = seeded_net(self.net, data, gen, device,
                             **net_kwargs(self.net, self.net_width, self.net_depth, self.net_norm))
            net.train()
            params = list(net.parameters())
            optimizer_net = torch.optim.SGD(params, lr=self.lr_net)
            for outer in range(outer_loop):
                loss = image_syn.new_zeros(())
                for c in range(data.num_classes):
                    idx, coefficients = sampler.sample(c, min(self.batch_real, sampler.class_size(c)))
                    siamese = augment.sample_params(gen)
                    if c not in classes:  # another rank's class: its draws above keep the generators in step
                        continue
                    x_real = augment.apply(real_images[position[idx].to(device)], siamese)
                    x_syn = augment.apply(image_syn[c * self.ipc:(c + 1) * self.ipc], siamese)
                    y_real = torch.full((idx.numel(),), c, device=device)
                    loss_real = weighted_cross_entropy(net(x_real), y_real, coefficients)
                    grads_real = [g.detach() for g in torch.autograd.grad(loss_real, params)]
                    loss_syn = F.cross_entropy(net(x_syn), labels_syn[c * self.ipc:(c + 1) * self.ipc])
                    grads_syn = torch.autograd.grad(loss_syn, params, create_graph=True)
                    loss = loss + gradient_distance(grads_syn, grads_real)
                optimizer_img.zero_grad()
                loss.backward()
                optimizer_img.step()
                distributed.exchange_class_blocks(image_syn, data.num_classes)
                if outer == outer_loop - 1:
                    break
                train_on_synthetic(net, optimizer_net, image_syn.detach(), labels_syn, augment,
                                   epochs=inner_loop, batch_size=self.batch_train, generator=gen)
            if progress:
                bar.set_postfix(match=f"{loss.item() / data.num_classes:.4f}", refresh=False)
            done = iteration + 1
            if done % self.checkpoint_every == 0 or done == self.iterations:
                distributed.exchange_optimizer_state(optimizer_img, image_syn, data.num_classes)
                checkpoint.save_progress(done, tensors, states)
        return SyntheticSet(image_syn.detach().cpu(), labels_syn.cpu(),
                            {"outer_loop": outer_loop, "inner_loop": inner_loop})


def train_on_synthetic(net: torch.nn.Module, optimizer: torch.optim.Optimizer, images: Tensor, labels: Tensor,
                       augment: DSAugment, *, epochs: int, batch_size: int, generator: torch.Generator) -> None:
    """VICO's inner loop: ``epochs`` shuffled epochs of DSA-augmented cross-entropy on the synthetic set."""
    for _ in range(epochs):
        order = torch.randperm(images.shape[0], generator=generator).to(images.device)
        for batch in torch.split(order, batch_size):
            loss = F.cross_entropy(net(augment(images[batch], generator=generator)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

