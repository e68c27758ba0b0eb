"""The ``uniform`` weighter: the unweighted method, as a weighter."""

from __future__ import annotations

import torch
from torch import Tensor

from dd_plugins.weights import WeightContext


class UniformWeighter:
    """Every sample weight 1: reproduces the unweighted distiller exactly."""

    requires: frozenset[str] = frozenset()

    def weigh(self, ctx: WeightContext) -> Tensor:
        return torch.ones(ctx.labels.shape[0], dtype=torch.float32)
