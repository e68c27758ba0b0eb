"""MTT's expert trajectories: nets trained on the weighted real data, kept in a reusable buffer.

As in MTT's ``buffer.py`` (GeorgeCazenavette/mtt-distillation): each expert is a fresh net trained
with plain SGD (lr_teacher 0.01, no momentum, no weight decay), batch 256, DSA augmentation,
50 epochs, and its parameters are recorded at the start and after every epoch. Here the epochs'
batches and loss coefficients come from ``adapters.mtt`` so the experts see the weighted data.

A buffer folder is named by a fingerprint of the training split, the weights and the expert
settings; runs with the same data and weights reuse it, other weights get their own folder. The
expert count is not in the fingerprint: asking for more experts trains only the missing ones.
Expert i's seed derives from the fingerprint, so a buffer's content does not depend on which run
made it, and a run killed while training experts resumes at the first missing expert.
Under torchrun the missing experts are dealt out across the ranks (rank r trains every
world-th one), each writes its own files into the shared buffer folder, and all ranks wait until
the buffer is complete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector

from adapters.gradient_matching import weighted_cross_entropy
from adapters.mtt import expert_epoch_batches
from dd_plugins.progress import progress_bar
from reference_methods import distributed
from reference_methods.augment import DSAugment
from reference_methods.datasets.base import BiasedDataset
from reference_methods.io import atomic_torch_save, atomic_write_json
from reference_methods.methods.loop import seeded_net
from reference_methods.seeds import derive_seed, generator

DEFAULT_BUFFER_DIR = Path("~/.cache/dd_plugins/mtt_buffers")


@dataclass(frozen=True)
class ExpertSettings:
    """Everything that shapes an expert trajectory besides the data and weights."""

    net: str
    net_kwargs: dict
    lr_teacher: float
    batch_train: int
    train_epochs: int
    sampling: str


def buffer_fingerprint(data: BiasedDataset, weights: Tensor, settings: ExpertSettings) -> str:
    """sha256 over the train images, labels, weights and expert settings (hex, 20 characters)."""
    digest = hashlib.sha256()
    described = {"settings": asdict(settings), "dataset": data.name, "num_classes": data.num_classes,
                 "flip": data.flip}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for tensor in (data.train.images, data.train.labels, weights.to(torch.float32)):
        digest.update(tensor.detach().cpu().contiguous().numpy())  # hashed in place, no copy
    return digest.hexdigest()[:20]


class ExpertBuffer:
    """The folder of one fingerprint: ``expert_0000.pt`` ... each a tensor [train_epochs + 1, num_params]."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.folder = Path(root).expanduser() / fingerprint
        self.fingerprint = fingerprint
        self._open: dict[int, Tensor] = {}

    def path(self, index: int) -> Path:
        return self.folder / f"expert_{index:04d}.pt"

    def missing(self, num_experts: int) -> list[int]:
        return [i for i in range(num_experts) if not self.path(i).exists()]

    def trajectory(self, index: int) -> Tensor:
        """Expert ``index``'s trajectory, memory-mapped so that only the rows used are read."""
        if index not in self._open:
            self._open[index] = torch.load(self.path(index), mmap=True, weights_only=True)
        return self._open[index]


def train_expert(data: BiasedDataset, weights: Tensor, settings: ExpertSettings, seed: int,
                 device: torch.device) -> Tensor:
    """Train one expert; its flattened parameters at the start and after each epoch, [epochs + 1, P] on the CPU."""
    gen = generator(seed)
    net = seeded_net(settings.net, data, gen, device, **settings.net_kwargs)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=settings.lr_teacher, momentum=0, weight_decay=0)
    augment = DSAugment(flip=data.flip)
    images = data.train.images.to(device)
    labels = data.train.labels.to(device)
    trajectory = [parameters_to_vector(net.parameters()).detach().cpu()]
    for _ in range(settings.train_epochs):
        for idx, coefficients in expert_epoch_batches(data.train.labels, weights, settings.batch_train,
                                                      mode=settings.sampling, generator=gen):
            idx = idx.to(device)
            loss = weighted_cross_entropy(net(augment(images[idx], generator=gen)), labels[idx], coefficients)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        trajectory.append(parameters_to_vector(net.parameters()).detach().cpu())
    return torch.stack(trajectory)


def ensure_experts(data: BiasedDataset, weights: Tensor, settings: ExpertSettings, *, num_experts: int,
                   buffer_dir: Path | str | None, device: torch.device, progress: bool = False
                   ) -> tuple[ExpertBuffer, int]:
    """The buffer for (data, weights, settings) with at least ``num_experts`` experts; and how many were trained now."""
    fingerprint = buffer_fingerprint(data, weights, settings)
    buffer = ExpertBuffer(Path(buffer_dir) if buffer_dir is not None else DEFAULT_BUFFER_DIR, fingerprint)
    todo = distributed.broadcast_object(buffer.missing(num_experts))  # rank 0 lists them for every rank
    if todo and distributed.is_main():
        atomic_write_json({"fingerprint": fingerprint, "dataset": data.name, "n_train": len(data.train),
                           "settings": asdict(settings)}, buffer.folder / "settings.json")
    family_seed = int(fingerprint[:15], 16)
    mine = todo[distributed.rank()::distributed.world_size()]  # every expert in one process
    for index in progress_bar(mine, desc="mtt experts", disable=not progress):
        trajectory = train_expert(data, weights, settings, derive_seed(family_seed, f"expert-{index}"), device)
        atomic_torch_save(trajectory, buffer.path(index))
    distributed.barrier()
    return buffer, len(todo)
