"""Per-sample weights for the distiller tests: uniform, or oracle normalised as the pipeline does."""

from __future__ import annotations

import torch

from dd_plugins.weighters.oracle import OracleWeighter
from dd_plugins.weights import WeightContext, normalise_weights
from reference_methods.datasets.base import BiasedDataset


def weights_for(data: BiasedDataset, weighter: str) -> torch.Tensor:
    train = data.train
    if weighter == "uniform":
        return torch.ones(len(train))
    ctx = WeightContext(train.images, train.labels, data.num_classes, bias_labels=train.bias_labels)
    return normalise_weights(OracleWeighter().weigh(ctx), train.labels, data.num_classes)
