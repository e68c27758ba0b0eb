"""Parameter checks that every builder runs first, so bad values fail before any data is read."""

from __future__ import annotations

import math
from typing import Any, Iterable

from reference_methods.datasets.errors import DatasetParameterError


def check_fraction(dataset: str, name: str, value: Any) -> float:
    """A number in [0, 1] (a ratio or share)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetParameterError(f"dataset '{dataset}': {name} must be a number in [0, 1], got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:  # also rejects NaN
        raise DatasetParameterError(
            f"dataset '{dataset}': {name}={value} is outside [0, 1]; use e.g. 0.005, 0.01, 0.02 or 0.05."
        )
    return float(value)


def check_non_negative(dataset: str, name: str, value: Any) -> float:
    """A finite number >= 0 (a standard deviation)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise DatasetParameterError(f"dataset '{dataset}': {name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def check_choice(dataset: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of a fixed set of values (a severity level, a size)."""
    choices = list(choices)
    if isinstance(value, bool) or value not in choices:
        raise DatasetParameterError(
            f"dataset '{dataset}': {name}={value!r} is not supported; choose one of {', '.join(map(str, choices))}."
        )
    return value


def check_int_range(dataset: str, name: str, value: Any, low: int, high: int) -> int:
    """An integer in [low, high] (an image size)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DatasetParameterError(f"dataset '{dataset}': {name} must be an integer in [{low}, {high}], got {value!r}.")
    return value


def check_seed(dataset: str, seed: Any) -> int:
    """A non-negative integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetParameterError(f"dataset '{dataset}': seed must be a non-negative integer, got {seed!r}.")
    return seed
