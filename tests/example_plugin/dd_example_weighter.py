"""A third-party weighter plugin: random weights, reproducible from the run's weighter seed."""

import torch

import dd_plugins


class JitterWeighter:
    """Random weights in [1 - spread, 1 + spread]: a sanity baseline against structured weights."""

    requires = frozenset()

    def __init__(self, spread: float = 0.5):
        if not 0 <= spread < 1:
            raise ValueError(f"spread must be in [0, 1), got {spread}")
        self.spread = spread

    def weigh(self, ctx: dd_plugins.WeightContext) -> torch.Tensor:
        generator = torch.Generator().manual_seed(ctx.seed)
        noise = torch.rand(ctx.labels.shape[0], generator=generator)
        return 1 - self.spread + 2 * self.spread * noise


@dd_plugins.hookimpl
def dd_register_weighters(register):
    register("jitter", JitterWeighter)
