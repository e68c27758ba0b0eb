"""Where raw data lives and where built splits are cached.

Raw data: ``root=`` argument, else ``DD_DATA_ROOT``, else ``~/.cache/dd_plugins/data``. The raw
folder may be read-only; built splits go to the cache folder (``DD_CACHE_DIR``, else
``~/.cache/dd_plugins/datasets``), one file per fingerprint of every build parameter. A cache file
carries its fingerprint and a CRC of its tensors, so a truncated, corrupted or foreign file is
detected and rebuilt instead of used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from reference_methods.io import atomic_torch_save

CACHE_FORMAT = 2  # bump whenever a builder would produce different splits for the same parameters


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds raw datasets (``<root>/MNIST/raw``, ``<root>/cifar-10-batches-py``...)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DD_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dd_plugins" / "data"


def cache_dir() -> Path:
    """The writable folder for built splits."""
    env = os.environ.get("DD_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dd_plugins" / "datasets"


@dataclass(frozen=True)
class RawSplit:
    """A split before normalisation: uint8 images [N, C, H, W] and int64 labels and bias labels."""

    images: Tensor
    labels: Tensor
    bias_labels: Tensor

    def tensors(self) -> dict[str, Tensor]:
        return {"images": self.images, "labels": self.labels, "bias_labels": self.bias_labels}


def fingerprint(name: str, params: dict) -> str:
    """A stable hex digest of the dataset name, cache format and every build parameter."""
    text = json.dumps({"dataset": name, "format": CACHE_FORMAT, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _checksum(splits: dict[str, RawSplit]) -> int:
    crc = 0
    for split_name in sorted(splits):
        for key, tensor in sorted(splits[split_name].tensors().items()):
            crc = zlib.crc32(f"{split_name}/{key}/{tuple(tensor.shape)}/{tensor.dtype}".encode(), crc)
            crc = zlib.crc32(tensor.contiguous().numpy().tobytes(), crc)
    return crc


def _load(path: Path, key: str) -> dict[str, RawSplit] | None:
    """The cached splits, or None (with a warning) when the file is unreadable or does not match."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != CACHE_FORMAT or payload.get("fingerprint") != key:
            raise ValueError("fingerprint or format does not match")
        splits = {name: RawSplit(**tensors) for name, tensors in payload["splits"].items()}
        if _checksum(splits) != payload["checksum"]:
            raise ValueError("checksum mismatch")
    except Exception as exc:  # any way a file can be broken: truncated zip, bad pickle, wrong keys
        warnings.warn(f"dataset cache file {path} is unusable ({type(exc).__name__}: {exc}); rebuilding it.", stacklevel=3)
        return None
    return splits


def cached_splits(name: str, params: dict, build: Callable[[], dict[str, RawSplit]]) -> dict[str, RawSplit]:
    """Load the splits built with ``params`` from the cache, or build and cache them.

    A cache folder that cannot be written only costs a rebuild next time (with a warning).
    """
    key = fingerprint(name, params)
    path = cache_dir() / f"{name}-{key[:20]}.pt"
    if path.exists():
        splits = _load(path, key)
        if splits is not None:
            return splits
    splits = build()
    payload = {
        "format": CACHE_FORMAT,
        "fingerprint": key,
        "dataset": name,
        "params": json.dumps(params, sort_keys=True, default=str),
        "splits": {split_name: split.tensors() for split_name, split in splits.items()},
        "checksum": _checksum(splits),
    }
    try:
        atomic_torch_save(payload, path)
    except OSError as exc:
        warnings.warn(f"could not write the dataset cache {path} ({exc}); set DD_CACHE_DIR to a writable folder.", stacklevel=2)
    return splits
