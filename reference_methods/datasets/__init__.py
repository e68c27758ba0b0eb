"""Biased benchmark datasets with bias labels."""

from reference_methods.datasets.base import BiasedDataset, BiasedSplit
from reference_methods.datasets.errors import DataNotFoundError, DatasetParameterError

__all__ = ["BiasedDataset", "BiasedSplit", "DataNotFoundError", "DatasetParameterError"]
