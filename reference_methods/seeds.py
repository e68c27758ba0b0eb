"""Independent seeds per component, derived from one run seed.

Reusing one integer everywhere makes ``randperm`` in different components pick the same indices
(a prototype's random-subset baseline picked exactly the conflicting samples that way).
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(run_seed: int, component: str) -> int:
    """A 63-bit seed for ``component`` ("data", "weighter", "distiller", "eval", "baselines", ...)."""
    digest = hashlib.sha256(f"{run_seed}:{component}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator seeded with ``seed`` on ``device``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
