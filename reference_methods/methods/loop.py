"""Pieces every distillation loop shares: seeded fresh nets, the synthetic set's start, checkpoints."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from reference_methods import distributed
from reference_methods.datasets.base import BiasedDataset
from reference_methods.io import atomic_torch_save
from reference_methods.nets import build_net


def net_kwargs(net: str, width: int, depth: int, norm: str) -> dict:
    """Keyword arguments of ``build_net`` for ``net``: ConvNet takes width/depth/norm, ResNet-18 only norm."""
    return {"width": width, "depth": depth, "norm": norm} if net == "convnet" else {"norm": norm}


def seeded_net(net: str, data: BiasedDataset, generator: torch.Generator, device: torch.device,
               **kwargs) -> nn.Module:
    """A freshly initialised net whose initial weights come from ``generator``.

    Layer initialisers draw from torch's global RNG; the draw happens inside ``fork_rng`` seeded
    from ``generator``, so the net is reproducible and the global RNG is left as it was.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_net(net, data.channels, data.num_classes, data.im_size, **kwargs)
    return model.to(device)


def synthetic_labels(num_classes: int, ipc: int, device: torch.device) -> Tensor:
    """Labels [K * ipc] in class blocks: [0]*ipc + [1]*ipc + ... (the VICO layout)."""
    return torch.arange(num_classes, device=device).repeat_interleave(ipc)


INITS = ("real", "weighted", "noise")


def draw_per_class(labels: Tensor, num_classes: int, ipc: int, generator: torch.Generator,
                   weights: Tensor | None = None) -> Tensor:
    """Indices of ``ipc`` distinct samples of each class, in class blocks: drawn uniformly, or in
    proportion to ``weights`` without replacement (a class then needs ``ipc`` of positive weight)."""
    blocks = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c, as_tuple=True)[0]
        if members.numel() < ipc:
            raise ValueError(f"class {c} has {members.numel()} training images, fewer than ipc={ipc}; lower ipc")
        if weights is None:
            blocks.append(members[torch.randperm(members.numel(), generator=generator)[:ipc]])
            continue
        class_weights = weights[members].double().cpu()
        positive = int((class_weights > 0).sum())
        if positive < ipc:
            raise ValueError(f"init='weighted': class {c} has {positive} images of positive weight, fewer "
                             f"than ipc={ipc}; use init='real'")
        blocks.append(members[torch.multinomial(class_weights, ipc, replacement=False, generator=generator)])
    return torch.cat(blocks)


def initial_images(data: BiasedDataset, ipc: int, init: str, generator: torch.Generator,
                   device: torch.device, weights: Tensor | None = None) -> Tensor:
    """The synthetic images before distillation, [K * ipc, C, H, W] in class blocks.

    ``real``: ``ipc`` distinct real images per class drawn uniformly, whatever the weights (VICO's
    and MTT's real init; the same draw as ``random_real_subset``). A weighted draw with replacement
    would start a class with duplicates, and duplicates receive identical updates under
    batch-shared augmentation, so they would never separate. ``weighted``: ``ipc`` distinct real
    images per class drawn in proportion to ``weights`` without replacement, so a short run starts
    from the reweighted data instead of the biased one. ``noise``: standard normal pixels.
    """
    if init == "real":
        images = data.train.images[draw_per_class(data.train.labels, data.num_classes, ipc, generator)]
    elif init == "weighted":
        if weights is None:
            raise ValueError("init='weighted' needs the sample weights")
        images = data.train.images[draw_per_class(data.train.labels, data.num_classes, ipc, generator, weights)]
    elif init == "noise":
        images = torch.randn((data.num_classes * ipc, data.channels, *data.im_size), generator=generator)
    else:
        raise ValueError(f"unknown init '{init}'; expected 'real', 'weighted' or 'noise'")
    return images.to(device=device, dtype=torch.float32)


def run_parameters(distiller, exclude: tuple[str, ...]) -> dict:
    """A distiller dataclass's fields minus those that do not change its result (where files go, how often)."""
    return {k: v for k, v in asdict(distiller).items() if k not in exclude}


def weights_digest(weights: Tensor) -> str:
    """A short fingerprint of the sample weights, so a checkpoint is never resumed with other weights."""
    return hashlib.sha256(weights.detach().cpu().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()[:16]


class Checkpoint:
    """One checkpoint file per run in ``checkpoint_dir``; ``None`` disables checkpointing.

    ``identity`` (method, parameters, seed, data, weights digest) is stored with every save; a
    resume with another identity is refused rather than silently mixing two runs. In a torchrun
    group only rank 0 reads and writes the file; ``load`` hands its state to every rank, so all
    ranks resume from the same iteration even while rank 0 is still writing the previous save.
    """

    def __init__(self, checkpoint_dir: Path | None, name: str, identity: dict) -> None:
        self.path = Path(checkpoint_dir) / f"{name}.pt" if checkpoint_dir is not None else None
        self.identity = identity

    def load(self, iterations: int) -> dict | None:
        """The saved state, or None when there is nothing to resume; refuses one past ``iterations``."""
        if self.path is None:
            return None
        state, problem = self._read(iterations) if distributed.is_main() else (None, None)
        state, problem = distributed.broadcast_object((state, problem))
        if problem:
            raise ValueError(problem)
        return state

    def _read(self, iterations: int) -> tuple[dict | None, str | None]:
        if not self.path.exists():
            return None, None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state["identity"] != self.identity:
            return None, (f"checkpoint {self.path} belongs to another run ({state['identity']}, this run is "
                          f"{self.identity}); use a fresh checkpoint_dir or delete the file to start over")
        if state["iteration"] > iterations:
            return None, (f"checkpoint {self.path} is at iteration {state['iteration']}, past "
                          f"iterations={iterations}; raise iterations or use a fresh checkpoint_dir")
        return state, None

    def save(self, state: dict) -> None:
        if self.path is not None and distributed.is_main():
            atomic_torch_save({**state, "identity": self.identity}, self.path)

    def save_progress(self, iteration: int, tensors: dict[str, Tensor], states: dict[str, Any], **extra: Any) -> None:
        """Save ``tensors`` and the state of ``states`` (optimisers and samplers through ``state_dict``,
        generators through ``get_state``) under their keys: what ``resume`` puts back."""
        self.save({"iteration": iteration, **{k: v.detach().cpu() for k, v in tensors.items()},
                   **{k: v.get_state() if isinstance(v, torch.Generator) else v.state_dict() for k, v in states.items()},
                   **extra})

    def resume(self, iterations: int, tensors: dict[str, Tensor], states: dict[str, Any]) -> tuple[int, dict | None]:
        """Copy the last ``save_progress`` back into ``tensors`` (in place) and ``states``; returns the
        iteration to start from (0 when there is nothing to resume) and the saved state, for extras."""
        state = self.load(iterations)
        if state is None:
            return 0, None
        with torch.no_grad():
            for key, tensor in tensors.items():
                tensor.copy_(state[key].to(tensor.device))
        for key, value in states.items():
            (value.set_state if isinstance(value, torch.Generator) else value.load_state_dict)(state[key])
        return state["iteration"], state


def class_real_images(data: BiasedDataset, classes: range, device: torch.device) -> tuple[Tensor, Tensor]:
    """The training images of ``classes`` on ``device``, and where split index i sits among them.

    A torchrun rank that distils a block of classes keeps only their real images on its device;
    ``position`` [N] maps a split index to its row in the returned images (-1 for other classes).
    With every class (one process) the images are the whole split and ``position`` is the identity.
    """
    if len(classes) == data.num_classes:
        return data.train.images.to(device), torch.arange(len(data.train))
    labels = data.train.labels
    members = torch.nonzero((labels >= classes.start) & (labels < classes.stop), as_tuple=True)[0]
    position = torch.full((labels.numel(),), -1, dtype=torch.long)
    position[members] = torch.arange(members.numel())
    return data.train.images[members].to(device), position


def check_distiller_args(method: str, distiller: Any, counts: tuple[str, ...], modes: tuple[str, ...]) -> None:
    """The checks every distiller's settings share: a known init and sampling mode, ``counts`` >= 1
    and iterations >= 0, each failure naming the method and the value."""
    if distiller.init not in INITS:
        raise ValueError(f"{method}: init must be one of {', '.join(INITS)}, got '{distiller.init}'")
    if distiller.sampling not in modes:
        raise ValueError(f"{method}: sampling must be one of {', '.join(modes)}, got '{distiller.sampling}'")
    for name in counts:
        if getattr(distiller, name) < 1:
            raise ValueError(f"{method}: {name} must be >= 1, got {getattr(distiller, name)}")
    if distiller.iterations < 0:
        raise ValueError(f"{method}: iterations must be >= 0, got {distiller.iterations}")
