"""Raw torchvision datasets as uint8 tensors, read straight from the files torchvision downloads.

Files already on disk are only read (the data root may be read-only). Missing files are
downloaded by torchvision into the data root; when that fails (offline, read-only folder) the
error names the files expected, the folder, and how to provide them.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from reference_methods.datasets.errors import DataNotFoundError

MNIST_FAMILY = ("MNIST", "FashionMNIST")  # torchvision class names, also their folder names
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _find_idx(raw: Path, base: str) -> Path | None:
    for candidate in (raw / base, raw / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    header = np.frombuffer(data, dtype=">i4", count=1)[0]
    if header != magic:
        raise DataNotFoundError(f"{path} is not an idx file (magic {header}, expected {magic}); replace it with the original download.")
    ndim = magic & 0xFF
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _torchvision_download(dataset: str, root: Path) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, dataset)
    for train in (True, False):
        cls(str(root), train=train, download=True)


def _missing_error(dataset: str, folder: Path, files: list[str], reason: Exception) -> DataNotFoundError:
    return DataNotFoundError(
        f"{dataset} raw files are missing from {folder} (expected: {', '.join(files)}) and torchvision "
        f"could not download them ({type(reason).__name__}: {reason}). Copy the original files into that "
        f"folder, or pass root= / set DD_DATA_ROOT to a folder that already has them in torchvision's layout."
    )


def load_mnist_family(dataset: str, root: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """MNIST or FashionMNIST: {"train"|"test": (images uint8 [N, 28, 28], labels int64 [N])}."""
    if dataset not in MNIST_FAMILY:
        raise ValueError(f"dataset must be one of {MNIST_FAMILY}, got {dataset!r}")
    raw = root / dataset / "raw"
    bases = [base for pair in _IDX_FILES.values() for base in pair]
    if any(_find_idx(raw, base) is None for base in bases):
        try:
            _torchvision_download(dataset, root)
        except Exception as exc:  # offline, read-only folder, bad mirror: all end the same way
            raise _missing_error(dataset, raw, [f"{b}.gz" for b in bases], exc) from exc
    out = {}
    for split, (images_base, labels_base) in _IDX_FILES.items():
        images = _read_idx(_find_idx(raw, images_base), 2051)
        labels = _read_idx(_find_idx(raw, labels_base), 2049)
        out[split] = (torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))
    return out


def load_cifar10(root: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """CIFAR-10: {"train"|"test": (images uint8 [N, 3, 32, 32], labels int64 [N])}."""
    folder = root / _CIFAR_FOLDER
    names = [name for files in _CIFAR_FILES.values() for name in files]
    if any(not (folder / name).is_file() for name in names):
        try:
            _torchvision_download("CIFAR10", root)
        except Exception as exc:
            raise _missing_error("CIFAR-10", folder, names, exc) from exc
    out = {}
    for split, files in _CIFAR_FILES.items():
        images, labels = [], []
        for name in files:
            with open(folder / name, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch["labels"])
        out[split] = (torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64))
    return out
