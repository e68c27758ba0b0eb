"""The ``pseudo_oracle`` weighter: oracle's group balance, with pseudo bias labels instead of bias labels.

A classifier trained for a few steps on a biased set predicts by the easiest feature that separates
the classes, and in such a set that is the bias (colour, background). So the class it predicts for
a training image stands in for the image's bias value: an aligned image is predicted as its own
class, a conflicting one as the class its bias value belongs to. Every (class, predicted class)
group present in a class then gets the same total weight, as ``oracle`` does with the true labels.

Why next to ``kde``: inverse density gives a group a total weight that grows with how spread out
the group is in the embedding, not only with how rare it is. Where the aligned images of a class
vary a lot in shape (garments in C-FMNIST) they keep much of the weight and the colours of the
conflicting groups come out uneven, so the weighted set still ties colour to class. Balancing
groups removes that tie as far as the predictions match the bias (docs/results.md, table 3).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dd_plugins.weighters.oracle import group_balanced_weights
from dd_plugins.weighters.supcon import EmbeddingSpec, classifier_predictions
from dd_plugins.weights import WeightContext


class PseudoOracleWeighter:
    """Group-balanced weights over (class, class predicted by a briefly trained classifier); no bias labels.

    ``steps`` is the classifier's training length: long enough to learn the bias, short enough not
    to learn the shapes that would let it predict conflicting images correctly (10 at batch 256
    is the default; docs/weighters.md has the sweep). The other parameters are the classifier's,
    as for ``kde`` with ``source = "ce"``.
    """

    requires: frozenset[str] = frozenset()

    def __init__(self, steps: int = 10, encoder: str = "convnet", width: int = 64, depth: int = 3,
                 norm: str = "instancenorm", batch_size: int = 256, lr: float = 0.05, resolution: int = 16,
                 augment: bool = True, gce_q: float = 0.0) -> None:
        if steps < 1:
            raise ValueError(f"pseudo_oracle: steps must be >= 1 (an untrained classifier predicts noise); got {steps}")
        self.spec = EmbeddingSpec(source="ce", encoder=encoder, width=width, depth=depth, norm=norm, steps=steps,
                                  batch_size=batch_size, lr=lr, resolution=resolution, augment=augment,
                                  gce_q=gce_q)
        self.spec.validate()

    def pseudo_bias_labels(self, ctx: WeightContext) -> Tensor:
        """The class the classifier predicts for each training image [N]."""
        return classifier_predictions(ctx.images, ctx.labels.long(), ctx.num_classes, self.spec,
                                      device=ctx.device, seed=ctx.seed, progress=ctx.progress)

    def weigh(self, ctx: WeightContext) -> Tensor:
        return group_balanced_weights(ctx.labels, self.pseudo_bias_labels(ctx)).to(torch.float64)
