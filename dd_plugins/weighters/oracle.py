"""The ``oracle`` weighter: group-balanced weights from the true bias labels."""

from __future__ import annotations

import torch
from torch import Tensor

from dd_plugins.weights import WeightContext


class OracleWeighter:
    """Bias-label-aware upper reference: every (class, bias) group gets equal total weight.

    Sample weight = 1 / size of its (class, bias) group, so within a class each bias group
    contributes the same total: the per-sample form of FairDD's group-synchronised matching.
    """

    requires: frozenset[str] = frozenset({"bias_labels"})

    def weigh(self, ctx: WeightContext) -> Tensor:
        labels = ctx.labels.long().cpu()
        bias = ctx.bias_labels.long().cpu()
        num_bias = int(bias.max().item()) + 1
        group = labels * num_bias + bias
        sizes = torch.bincount(group, minlength=ctx.num_classes * num_bias).float()
        return 1.0 / sizes[group]
