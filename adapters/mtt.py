"""Weighted batches for MTT's expert training: where sample weights reach the expert trajectories.

An expert is trained for whole epochs on the real data. ``expert_epoch_batches`` lays out one epoch
as (indices, coefficients) pairs; the expert's loss on a batch is Σ coefficient · CE
(``adapters.gradient_matching.weighted_cross_entropy``), so the weights shape the trajectory that
the synthetic set later matches.

- ``resample``: each class keeps its size n_c, but its n_c slots are refilled by draws with
  replacement ∝ weight within the class; the epoch is shuffled and cut into batches; coefficients
  are the plain mean 1/len(batch). A sample with weight 0 is never seen.
- ``reweight``: a uniform permutation of all samples cut into batches; coefficients w_i / len(batch).
  Weights have mean 1 within each class (hence over the split), so each batch loss is an unbiased
  estimate of the weighted mean loss. Unlike ``ClassSampler``'s per-class batches, coefficients are
  not renormalised per batch: an expert batch mixes classes, and renormalising would change the
  classes' balance from batch to batch.

A class whose weights are all equal keeps every sample once, so uniform weights give, in both
modes, exactly the unweighted MTT epoch: ``randperm(N)`` cut into batches with coefficients 1/b.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("resample", "reweight")


def expert_epoch_batches(labels: Tensor, weights: Tensor, batch_size: int, *, mode: str,
                         generator: torch.Generator) -> list[tuple[Tensor, Tensor]]:
    """One epoch of expert batches: a list of (indices [b] int64, coefficients [b] float32) on the CPU.

    ``labels`` [N] and ``weights`` [N] (>= 0, normalised to mean 1 within each class) describe the
    training split; every random draw comes from ``generator`` (a CPU generator).
    """
    if mode not in MODES:
        raise ValueError(f"unknown expert sampling mode '{mode}'; expected one of {', '.join(MODES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    labels = labels.cpu()
    weights = weights.detach().cpu().to(torch.float32)
    slots = torch.arange(labels.numel())
    if mode == "resample":
        for c in torch.unique(labels).tolist():
            members = torch.nonzero(labels == c, as_tuple=True)[0]
            class_weights = weights[members]
            if not (class_weights == class_weights[0]).all():
                slots[members] = members[torch.multinomial(class_weights, members.numel(), replacement=True,
                                                           generator=generator)]
    order = slots[torch.randperm(labels.numel(), generator=generator)]
    if mode == "resample":
        return [(idx, torch.full((idx.numel(),), 1.0 / idx.numel())) for idx in torch.split(order, batch_size)]
    return [(idx, weights[idx] / idx.numel()) for idx in torch.split(order, batch_size)]
