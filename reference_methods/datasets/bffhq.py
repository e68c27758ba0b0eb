"""``bffhq``: biased FFHQ (BiaSwap / DFA), target age (0 young, 1 old), bias gender, 0.5% conflicting.

The data cannot be downloaded automatically. The DFA authors distribute it
(kakaoenterprise/Learning-Debiased-Disentangled, "Datasets") in this layout under
``<data root>/bffhq``::

    0.5pct/align/<age>/<id>_<age>_<gender>.png     bias-aligned training images
    0.5pct/conflict/<age>/<id>_<age>_<gender>.png  bias-conflicting training images
    valid/<id>_<age>_<gender>.png                  (not used: runs report final-epoch numbers)
    test/<id>_<age>_<gender>.png

Label and bias are the last two ``_``-separated numbers of each file name. Images are resized to
``size`` x ``size`` (bilinear, PIL) and cached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dd_plugins.progress import progress_bar
from reference_methods.datasets.assemble import CIFAR10, assemble
from reference_methods.datasets.base import BiasedDataset
from reference_methods.datasets.checks import check_int_range, check_seed
from reference_methods.datasets.errors import DataNotFoundError
from reference_methods.datasets.storage import RawSplit, cached_splits, data_root

FOLDER = "bffhq"
TRAIN_DIRS = ("0.5pct/align", "0.5pct/conflict")
TEST_DIR = "test"
SUFFIXES = {".png", ".jpg", ".jpeg"}
ALIGNED_BIAS = torch.tensor([0, 1])  # young-female and old-male are the majority groups
LAYOUT = (
    "bffhq/0.5pct/align/<age>/<id>_<age>_<gender>.png, bffhq/0.5pct/conflict/<age>/<id>_<age>_<gender>.png, "
    "bffhq/valid/<id>_<age>_<gender>.png and bffhq/test/<id>_<age>_<gender>.png"
)


def _missing(folder: Path, what: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"bFFHQ {what} (looked in {folder}). bFFHQ cannot be downloaded automatically: get it from the "
        f"DFA authors' release (github.com/kakaoenterprise/Learning-Debiased-Disentangled, section "
        f"'Datasets'), unpack it so that the data root holds {LAYOUT}, then pass root= or set DD_DATA_ROOT "
        f"to the folder that contains bffhq/."
    )


def parse_name(path: Path) -> tuple[int, int]:
    """(label, bias) from a file name ending in ``_<label>_<bias>``."""
    parts = path.stem.split("_")
    try:
        return int(parts[-2]), int(parts[-1])
    except (IndexError, ValueError):
        raise DataNotFoundError(f"{path} does not end in _<age>_<gender>; bFFHQ file names look like 12345_0_1.png.") from None


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)


def _load(files: list[Path], size: int, desc: str) -> RawSplit:
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    labels, bias = [], []
    for i, path in enumerate(progress_bar(files, desc=desc, disable=None, leave=False)):
        with Image.open(path) as image:
            images[i] = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
        label, b = parse_name(path)
        labels.append(label)
        bias.append(b)
    labels_t, bias_t = torch.tensor(labels, dtype=torch.int64), torch.tensor(bias, dtype=torch.int64)
    if not (set(labels) <= {0, 1} and set(bias) <= {0, 1}):
        raise DataNotFoundError(f"bFFHQ labels and biases must be 0 or 1; found labels {sorted(set(labels))}, biases {sorted(set(bias))}.")
    return RawSplit(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels_t, bias_t)


def build_bffhq(*, seed: int = 0, root: str | None = None, size: int = 64) -> BiasedDataset:
    """Biased FFHQ (real faces): age young/old, biased by gender, 0.5% conflicting; needs a manual download."""
    check_seed("bffhq", seed)
    check_int_range("bffhq", "size", size, 8, 1024)
    folder = data_root(root) / FOLDER
    train_files = [p for d in TRAIN_DIRS if (folder / d).is_dir() for p in _image_files(folder / d)]
    test_files = _image_files(folder / TEST_DIR) if (folder / TEST_DIR).is_dir() else []
    if not train_files:
        raise _missing(folder, "training images (0.5pct/align, 0.5pct/conflict) are missing")
    if not test_files:
        raise _missing(folder, "test images (test/) are missing")
    params = {"seed": seed, "size": size}
    # Nothing here is random, so the seed stays out of the cache key; the files are the user's,
    # so the key covers where they are and how many there are.
    key = {"size": size, "folder": str(folder.resolve()), "files": len(train_files) + len(test_files)}

    def build() -> dict[str, RawSplit]:
        return {"train": _load(train_files, size, "bffhq train"), "test": _load(test_files, size, "bffhq test")}

    splits = cached_splits("bffhq", key, build)
    return assemble(
        "bffhq", splits, aligned_bias=ALIGNED_BIAS, num_classes=2, num_bias=2,
        normalisation=CIFAR10, flip=True, params=params,
    )
