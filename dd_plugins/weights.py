"""The sample-weighting interface: what a weighter sees, and how the host checks its output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from dd_plugins.errors import MissingBiasLabelsError, WeightError


@dataclass(frozen=True)
class WeightContext:
    """Everything a weighter may look at. ``bias_labels`` is None unless the weighter requires them."""

    images: Tensor
    labels: Tensor
    num_classes: int
    bias_labels: Tensor | None = None
    device: torch.device = torch.device("cpu")
    seed: int = 0
    cache_dir: Path | None = None
    progress: bool = False


@runtime_checkable
class Weighter(Protocol):
    """A weighter returns one raw weight >= 0 per training sample, computed once before distillation."""

    requires: frozenset[str]

    def weigh(self, ctx: WeightContext) -> Tensor: ...


def check_weights(raw: Tensor, labels: Tensor, num_classes: int, weighter: str = "weighter") -> Tensor:
    """Raise WeightError naming ``weighter`` (and the class) if ``raw`` cannot be used as weights."""
    if not isinstance(raw, Tensor):
        raise WeightError(f"weighter '{weighter}' returned {type(raw).__name__}, expected a torch.Tensor")
    if raw.shape != labels.shape:
        raise WeightError(
            f"weighter '{weighter}' returned weights of shape {tuple(raw.shape)}; "
            f"expected one weight per sample, shape {tuple(labels.shape)}"
        )
    raw = raw.detach().to(torch.float64)
    labels = labels.to(raw.device)
    for c in range(num_classes):
        in_class = raw[labels == c]
        if in_class.numel() == 0:
            continue
        if not torch.isfinite(in_class).all():
            raise WeightError(f"weighter '{weighter}' returned NaN or infinite weights in class {c}")
        if (in_class < 0).any():
            raise WeightError(f"weighter '{weighter}' returned negative weights in class {c}")
        if in_class.sum() == 0:
            raise WeightError(
                f"weighter '{weighter}' gave every sample of class {c} weight 0; "
                "the distiller would have no real data for that class"
            )
    return raw


def normalise_weights(raw: Tensor, labels: Tensor, num_classes: int, weighter: str = "weighter") -> Tensor:
    """Checked weights rescaled to mean 1 within each class (float32), so uniform means unweighted."""
    weights = check_weights(raw, labels, num_classes, weighter)
    labels = labels.to(weights.device)
    out = torch.zeros_like(weights)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[mask] = weights[mask] / weights[mask].mean()
    return out.to(torch.float32)


def compute_weights(
    weighter: Weighter,
    name: str,
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    bias_labels: Tensor | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> Tensor:
    """Run ``weighter`` on a training split and return normalised weights [N] on the CPU.

    Bias labels reach the weighter only when it declares ``"bias_labels"`` in ``requires``.
    """
    requires = frozenset(getattr(weighter, "requires", frozenset()))
    needs_bias = "bias_labels" in requires
    if needs_bias and bias_labels is None:
        raise MissingBiasLabelsError(
            f"weighter '{name}' needs bias labels, but this dataset has none. "
            "Pick a dataset with bias labels or a weighter that does not need them (uniform, kde)."
        )
    ctx = WeightContext(
        images=images,
        labels=labels,
        num_classes=num_classes,
        bias_labels=bias_labels if needs_bias else None,
        device=torch.device(device),
        seed=seed,
        cache_dir=cache_dir,
        progress=progress,
    )
    raw = weighter.weigh(ctx)
    return normalise_weights(raw, labels, num_classes, weighter=name).cpu()
