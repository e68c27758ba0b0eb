"""Biased benchmark datasets with bias labels."""

from reference_methods.datasets.base import BiasedDataset, BiasedSplit

__all__ = ["BiasedDataset", "BiasedSplit"]
