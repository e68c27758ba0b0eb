"""Several processes for one run, as started by ``torchrun``: process group, ranks, and the few exchanges.

``torchrun --nproc_per_node N -m reference_methods.cli run CONFIG`` starts N copies of the CLI with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. ``init_from_env``
joins them into one process group (NCCL when CUDA is present, gloo on the CPU) and pins each
process to GPU ``LOCAL_RANK``. Without those variables, or before ``init_from_env``, every helper
here answers for a single process: rank 0 of 1, one block of all classes, exchanges that do nothing.
So a distiller written against this module runs unchanged in one process.

How the work is split: DM and DSA match each class on its own, so rank r takes a contiguous block
of classes (``class_range``): it embeds only those classes' real batches and moves only those
classes' synthetic images, while every rank draws the same random nets, augmentations and batches
from the same seeded generators. ``exchange_class_blocks`` then copies each rank's rows to all the
others, so every rank (rank 0 in particular, which checkpoints and writes the result) holds the
whole synthetic set.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# Ranks wait for each other at checkpoints and while rank 0 weighs; a slow weighter or an uneven
# share of MTT experts can exceed torch's 30-minute default, so waits get longer by default.
DEFAULT_TIMEOUT_MINUTES = 180


def launched_by_torchrun() -> bool:
    """True when the environment describes more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(timeout_minutes: float | None = None) -> torch.device:
    """Join the process group that torchrun's variables describe; returns this process's device.

    The backend is NCCL when CUDA is available (each rank on GPU ``LOCAL_RANK``) and gloo otherwise
    (CPU). ``timeout_minutes`` (default ``DD_DIST_TIMEOUT_MINUTES`` or 180) bounds how long a rank
    waits for the others. Calling it again in the same process returns the same device.
    """
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(f"cannot join a process group: {', '.join(missing)} not set. Start the command "
                           "through torchrun (torchrun --nproc_per_node N -m reference_methods.cli run CONFIG).")
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        minutes = timeout_minutes or float(os.environ.get("DD_DIST_TIMEOUT_MINUTES", DEFAULT_TIMEOUT_MINUTES))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(minutes=minutes))
    return device


def shutdown() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside a joined process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """True on rank 0, the process that weighs, checkpoints, evaluates and writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _communication_device() -> torch.device:
    """Where tensors must be for the group's backend: the current GPU for NCCL, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it, on every rank (pickled; tensors come back on the CPU)."""
    if not is_distributed():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_communication_device())
    received = box[0]
    if isinstance(received, Tensor):
        return received.cpu()
    return received


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """The sum of ``tensor`` over all ranks (a new tensor on ``tensor``'s device; ``tensor`` itself in one process)."""
    if not is_distributed():
        return tensor
    total = tensor.detach().to(_communication_device(), copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(tensor.device)


def class_range(num_classes: int, rank_: int | None = None, world: int | None = None) -> range:
    """The contiguous block of classes that rank ``rank_`` of ``world`` distils (all of them in one process).

    Blocks differ in size by at most one class. More ranks than classes is an error: a rank without
    classes would have nothing to match.
    """
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    if world > num_classes:
        raise ValueError(f"{world} processes for {num_classes} classes: each process needs at least one class; "
                         f"start at most {num_classes} processes (torchrun --nproc_per_node {num_classes})")
    return range(rank_ * num_classes // world, (rank_ + 1) * num_classes // world)


def exchange_class_blocks(tensor: Tensor, num_classes: int) -> None:
    """Copy each rank's classes' rows of ``tensor`` to every rank, in place.

    ``tensor`` [K * m, ...] is laid out in class blocks of m rows (the synthetic set, or an
    optimiser state of the same shape); rank r's rows are those of ``class_range(K, r)``.
    """
    if not is_distributed():
        return
    rows = tensor.shape[0] // num_classes
    blocks = [class_range(num_classes, r) for r in range(world_size())]
    largest = max(len(block) for block in blocks) * rows
    own = blocks[rank()]
    device = _communication_device()
    padded = tensor.new_zeros((largest, *tensor.shape[1:]), device=device)
    padded[:len(own) * rows] = tensor.detach()[own.start * rows:own.stop * rows]
    gathered = [torch.empty_like(padded) for _ in blocks]
    dist.all_gather(gathered, padded)
    with torch.no_grad():
        for block, received in zip(blocks, gathered):
            tensor[block.start * rows:block.stop * rows] = received[:len(block) * rows].to(tensor.device)


def exchange_optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor, num_classes: int) -> None:
    """``exchange_class_blocks`` for every per-element state of ``param`` (SGD momentum, Adam moments),
    so the optimiser state that rank 0 checkpoints holds each class's owner's values."""
    if not is_distributed():
        return
    for value in optimizer.state.get(param, {}).values():
        if isinstance(value, Tensor) and value.shape == param.shape:
            exchange_class_blocks(value, num_classes)
