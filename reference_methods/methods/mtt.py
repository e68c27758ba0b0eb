"""Matching Training Trajectories (MTT; Cazenavette et al., CVPR 2022).

Experts trained on the weighted real data (``mtt_buffer``) record where a net goes in
``expert_epochs`` epochs from a random start epoch below ``max_start_epoch``. Each iteration a
student starts from that expert checkpoint, takes ``syn_steps`` SGD steps on DSA-augmented
minibatches of the synthetic set with a learnable learning rate, and the synthetic images and
that lr move to bring the student's end point to the expert's:
``|θ_student - θ_target|² / |θ_start - θ_target|²``. The student runs functionally
(``torch.func.functional_call`` on one flat parameter vector), so the loss backpropagates
through all its steps. Defaults: MTT's CIFAR-10 IPC 10 setting (docs/methods_dsa_mtt.md lists
the rest).

Under torchrun the experts, most of MTT's cost, are trained in parallel (one trajectory per rank
at a time, ``mtt_buffer``). Trajectory matching couples all classes through one student, so it is
not split: every rank runs the same seeded matching and only rank 0 checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from adapters.mtt import MODES as SAMPLING_MODES
from dd_plugins.progress import progress_bar
from reference_methods.augment import DSAugment
from reference_methods.datasets.base import BiasedDataset
from reference_methods.methods.base import SyntheticSet
from reference_methods.methods.loop import (Checkpoint, check_distiller_args, initial_images, net_kwargs, run_parameters,
                                            seeded_net, synthetic_labels, weights_digest)
from reference_methods.methods.mtt_buffer import ExpertSettings, ensure_experts
from reference_methods.seeds import derive_seed, generator


class FlatNet:
    """Runs ``net`` with its parameters taken from one flat vector (the layout of ``parameters_to_vector``)."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.names = [name for name, _ in net.named_parameters()]
        self.shapes = [p.shape for p in net.parameters()]
        self.sizes = [p.numel() for p in net.parameters()]

    def __call__(self, flat: Tensor, x: Tensor) -> Tensor:
        params = {name: chunk.view(shape)
                  for name, shape, chunk in zip(self.names, self.shapes, flat.split(self.sizes))}
        return functional_call(self.net, params, (x,))


@dataclass(frozen=True)
class MTTDistiller:
    """Matching Training Trajectories with experts trained on the weighted real data.

    ``sampling`` is the weighting mode of the expert batches (``adapters.mtt``), the only place
    the weights enter; ``buffer_dir`` None means ~/.cache/dd_plugins/mtt_buffers. ``batch_syn`` None uses the
    whole synthetic set per student step.
    """

    ipc: int = 10
    iterations: int = 5000
    syn_steps: int = 30
    expert_epochs: int = 2
    max_start_epoch: int = 20
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01
    batch_syn: int | None = None
    num_experts: int = 100
    expert_train_epochs: int = 50
    batch_train: int = 256
    init: str = "real"
    sampling: str = "resample"
    net: str = "convnet"
    net_width: int = 128
    net_depth: int = 3
    net_norm: str = "instancenorm"
    buffer_dir: str | None = None
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        check_distiller_args("mtt", self, ("ipc", "syn_steps", "expert_epochs", "max_start_epoch", "num_experts",
                                           "expert_train_epochs", "batch_train", "checkpoint_every"), SAMPLING_MODES)
        if self.batch_syn is not None and self.batch_syn < 1:
            raise ValueError("mtt: batch_syn must be >= 1, or None for the whole synthetic set")
        if self.max_start_epoch - 1 + self.expert_epochs > self.expert_train_epochs:
            raise ValueError(
                f"mtt: start epochs up to {self.max_start_epoch - 1} plus expert_epochs {self.expert_epochs} "
                f"exceed the {self.expert_train_epochs} epochs experts train; lower max_start_epoch or "
                "expert_epochs, or raise expert_train_epochs")

    def expert_settings(self) -> ExpertSettings:
        return ExpertSettings(self.net, net_kwargs(self.net, self.net_width, self.net_depth, self.net_norm),
                              self.lr_teacher, self.batch_train, self.expert_train_epochs, self.sampling)

    def distill(self, data: BiasedDataset, weights: Tensor, *, device: torch.device, seed: int,
                progress: bool = False, checkpoint_dir: Path | None = None) -> SyntheticSet:
        device = torch.device(device)
        buffer, _ = ensure_experts(data, weights, self.expert_settings(), num_experts=self.num_experts,
                                   buffer_dir=self.buffer_dir, device=device, progress=progress)
        gen = generator(derive_seed(seed, "mtt"))
        augment = DSAugment(flip=data.flip)
        labels_syn = synthetic_labels(data.num_classes, self.ipc, device)
        image_syn = initial_images(data, self.ipc, self.init, gen, device, weights).requires_grad_(True)
        syn_lr = torch.tensor(self.lr_teacher, device=device, requires_grad=True)
        optimizer_img = torch.optim.SGD([image_syn], lr=self.lr_img, momentum=0.5)
        optimizer_lr = torch.optim.SGD([syn_lr], lr=self.lr_lr, momentum=0.5)
        student = FlatNet(seeded_net(self.net, data, gen, device,
                                     **net_kwargs(self.net, self.net_width, self.net_depth, self.net_norm)))
        student.net.train()
        batch_syn = self.batch_syn or image_syn.shape[0]

        identity = {"method": "mtt", "seed": seed, "data": data.name, "n_train": len(data.train),
                    "weights": weights_digest(weights), "buffer": buffer.fingerprint,
                    **run_parameters(self, exclude=("buffer_dir", "iterations", "checkpoint_every"))}
        checkpoint = Checkpoint(checkpoint_dir, "mtt", identity)
        tensors = {"images": image_syn, "syn_lr": syn_lr}
        states = {"optimizer_img": optimizer_img, "optimizer_lr": optimizer_lr, "generator": gen}
        start, _ = checkpoint.resume(self.iterations, tensors, states)

        bar = progress_bar(range(start, self.iterations), initial=start, total=self.iterations, desc="mtt",
                   disable=not progress)
        for iteration in bar:
            expert = buffer.trajectory(int(torch.randint(self.num_experts, (1,), generator=gen)))
            start_epoch = int(torch.randint(self.max_start_epoch, (1,), generator=gen))
            start_params = expert[start_epoch].to(device)
            target_params = expert[start_epoch + self.expert_epochs].to(device)
            params = start_params.clone().requires_grad_(True)
            chunks: list[Tensor] = []
            for _ in range(self.syn_steps):
                if not chunks:
                    chunks = list(torch.randperm(image_syn.shape[0], generator=gen).to(device).split(batch_syn))
                batch = chunks.pop()
                x = augment(image_syn[batch], generator=gen)
                ce = F.cross_entropy(student(params, x), labels_syn[batch])
                grad = torch.autograd.grad(ce, params, create_graph=True)[0]
                params = params - syn_lr * grad
            loss = (params - target_params).pow(2).sum() / (start_params - target_params).pow(2).sum()
            optimizer_img.zero_grad()
            optimizer_lr.zero_grad()
            loss.backward()
            optimizer_img.step()
            optimizer_lr.step()
            if progress:
                bar.set_postfix(match=f"{loss.item():.4f}", syn_lr=f"{syn_lr.item():.4g}", refresh=False)
            done = iteration + 1
            if done % self.checkpoint_every == 0 or done == self.iterations:
                checkpoint.save_progress(done, tensors, states)
        return SyntheticSet(image_syn.detach().cpu(), labels_syn.cpu(),
                            {"syn_lr": float(syn_lr.detach()), "buffer": str(buffer.folder)})
