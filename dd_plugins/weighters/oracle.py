"""The ``oracle`` weighter: group-balanced weights from the true bias labels."""

from __future__ import annotations

import torch
from torch import Tensor

from dd_plugins.weights import WeightContext


def group_balanced_weights(labels: Tensor, groups: Tensor) -> Tensor:
    """1 / size of each sample's (class, group) cell, so every cell present in a class weighs the same.

    ``groups`` are non-negative integer group ids per sample (bias labels, or pseudo bias labels).
    """
    labels, groups = labels.long().cpu(), groups.long().cpu()
    num_groups = int(groups.max().item()) + 1
    cell = labels * num_groups + groups
    sizes = torch.bincount(cell, minlength=(int(labels.max().item()) + 1) * num_groups).float()
    return 1.0 / sizes[cell]


class OracleWeighter:
    """Bias-label-aware upper reference: every (class, bias) group gets equal total weight.

    Sample weight = 1 / size of its (class, bias) group, so within a class each bias group
    contributes the same total: the per-sample form of FairDD's group-synchronised matching.
    """

    requires: frozenset[str] = frozenset({"bias_labels"})

    def weigh(self, ctx: WeightContext) -> Tensor:
        return group_balanced_weights(ctx.labels, ctx.bias_labels)
