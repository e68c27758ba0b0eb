"""Biased datasets on small in-process data: bias bookkeeping, colouring, corruptions, cache, loaders, CLI."""

from __future__ import annotations

import gzip
import inspect
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dd_plugins.errors import ParameterError
from dd_plugins.registry import create, get_dataset_builder, list_datasets
from reference_methods.cli import main
from reference_methods.datasets import storage
from reference_methods.datasets.bffhq import build_bffhq
from reference_methods.datasets.bias import assign_bias, bias_counts
from reference_methods.datasets.cdigits import build_cdigits
from reference_methods.datasets.cifar10c import build_cifar10c, corrupt_split
from reference_methods.datasets.colour import (
    FAIRDD_COLOURS,
    LFF_COLOURS,
    binary_background,
    binary_foreground,
    colour_background,
    colour_foreground,
    noisy_colours,
)
from reference_methods.datasets.corruptions import CORRUPTIONS, SEVERITIES
from reference_methods.datasets.errors import DataNotFoundError, DatasetParameterError
from reference_methods.datasets.fairdd import CIFAR10S_ALIGNED, build_cifar10s, cifar10s_splits, pil_grey
from reference_methods.datasets.fmnist_c import build_fmnist_c
from reference_methods.datasets.lff import build_cmnist, colour_split
from reference_methods.datasets.raw import load_mnist_family
from reference_methods.datasets.show import parse_assignments

NAMES = {"cmnist", "bg_fmnist", "cifar10c", "fmnist_c", "cmnist_fg", "cmnist_bg", "cfmnist_fg", "cfmnist_bg", "cifar10s", "bffhq", "cdigits"}


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("DD_CACHE_DIR", str(tmp_path / "cache"))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ bias bookkeeping


@pytest.mark.parametrize("size,share", [(5923, 0.95), (6742, 0.995), (980, 0.1), (37, 0.99), (10, 0.0), (10, 1.0)])
def test_bias_counts_are_exact_and_even(size, share):
    counts = bias_counts(size, 3, share, 10)
    assert counts.sum() == size and (counts >= 0).all()
    assert counts[3] == round(size * share)
    others = torch.cat((counts[:3], counts[4:]))
    assert others.max() - others.min() <= 1


def test_counts_for_mnist_class_zero_at_5_percent():
    # 5923 images: round(0.95 * 5923) = 5627 aligned, 296 conflicting over 9 colours (as LfF's)
    counts = bias_counts(5923, 0, 0.95, 10)
    assert counts.tolist() == [5627, 33, 33, 33, 33, 32, 33, 33, 33, 33]


def test_assign_bias_counts_and_determinism():
    labels = torch.arange(10).repeat_interleave(torch.tensor([50, 61, 70, 33, 90, 12, 40, 41, 100, 3]))
    aligned = torch.arange(10)
    bias = assign_bias(labels, aligned, 0.9, 10, _gen(1))
    for c in range(10):
        got = torch.bincount(bias[labels == c], minlength=10)
        assert torch.equal(got, bias_counts(int((labels == c).sum()), c, 0.9, 10))
    assert torch.equal(bias, assign_bias(labels, aligned, 0.9, 10, _gen(1)))
    assert not torch.equal(bias, assign_bias(labels, aligned, 0.9, 10, _gen(2)))


def test_balanced_share_makes_every_bias_equally_frequent():
    labels = torch.arange(10).repeat(100)
    bias = assign_bias(labels, torch.arange(10), 0.1, 10, _gen(0))
    for c in range(10):
        assert torch.bincount(bias[labels == c], minlength=10).tolist() == [10] * 10


# ------------------------------------------------------------------ colouring


def test_foreground_colouring_keeps_black_background():
    grey = torch.zeros(2, 4, 4)
    grey[:, 1:3, 1:3] = 1.0
    grey[1, 1, 1] = 0.5
    colours = LFF_COLOURS[torch.tensor([0, 4])]
    out = colour_foreground(grey, colours)
    assert out.shape == (2, 3, 4, 4)
    assert (out[:, :, 0, 0] == 0).all()
    assert torch.allclose(out[0, :, 2, 2], LFF_COLOURS[0])
    assert torch.allclose(out[1, :, 1, 1], 0.5 * LFF_COLOURS[4])


def test_background_colouring_paints_background_and_keeps_garment_grey():
    grey = torch.zeros(1, 4, 4)
    grey[0, 1:3, 1:3] = 0.6
    out = colour_background(grey, LFF_COLOURS[torch.tensor([6])])
    assert torch.allclose(out[0, :, 0, 0], LFF_COLOURS[6])
    assert torch.allclose(out[0, :, 1, 1], torch.full((3,), 0.6))


def test_fairdd_binary_colouring():
    grey = torch.tensor([[[0.0, 127 / 255], [128 / 255, 1.0]]])
    colours = FAIRDD_COLOURS[torch.tensor([2])]
    fg, bg = binary_foreground(grey, colours), binary_background(grey, colours)
    assert fg[0, :, 1, 0].tolist() == FAIRDD_COLOURS[2].tolist() and fg[0, :, 0, 1].sum() == 0
    assert bg[0, :, 0, 1].tolist() == FAIRDD_COLOURS[2].tolist() and bg[0, :, 1, 1].sum() == 0


def test_colour_noise_is_per_image_and_clipped():
    bias = torch.tensor([0, 0, 9, 9])
    exact = noisy_colours(bias, LFF_COLOURS, 0.0, _gen(0))
    assert torch.equal(exact, LFF_COLOURS[bias])
    noisy = noisy_colours(bias, LFF_COLOURS, 0.5, _gen(0))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy[0], noisy[1])


def test_colour_split_paints_each_image_in_its_bias_colour():
    labels = torch.arange(10).repeat(20)
    grey = torch.zeros(200, 6, 6, dtype=torch.uint8)
    grey[:, 2:4, 2:4] = 255
    split = colour_split(grey, labels, aligned_share=0.8, colour_fn=colour_foreground, palette=LFF_COLOURS, color_std=0.0, seed=3)
    assert split.images.dtype == torch.uint8 and split.images.shape == (200, 3, 6, 6)
    expected = (LFF_COLOURS[split.bias_labels] * 255).round().to(torch.uint8)
    assert torch.equal(split.images[:, :, 3, 3], expected)
    assert (split.images[:, :, 0, 0] == 0).all()
    assert int((split.bias_labels == labels).sum()) == 160


# ------------------------------------------------------------------ corruptions


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_shape_range_determinism_and_effect(name):
    fn = CORRUPTIONS[name]
    images = torch.rand(4, 3, 32, 32, generator=_gen(0))
    for severity in SEVERITIES:
        out = fn(images, severity, _gen(7))
        assert out.shape == images.shape and out.dtype == torch.float32
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        assert torch.equal(out, fn(images, severity, _gen(7)))
        assert (out - images).abs().mean() > 1e-3, f"{name} severity {severity} left the images unchanged"


def test_corruptions_follow_lff_type0_order():
    assert list(CORRUPTIONS) == ["Snow", "Frost", "Fog", "Brightness", "Contrast", "Spatter", "Elastic", "JPEG", "Pixelate", "Saturate"]


def test_stronger_contrast_severity_flattens_more():
    images = torch.rand(4, 3, 32, 32, generator=_gen(0))
    stds = [CORRUPTIONS["Contrast"](images, s, _gen(0)).std().item() for s in SEVERITIES]
    assert stds == sorted(stds, reverse=True)


def test_corrupt_split_counts_and_applies_corruption_per_bias():
    labels = torch.arange(10).repeat(30)
    images = (torch.rand(300, 3, 32, 32, generator=_gen(1)) * 255).to(torch.uint8)
    split = corrupt_split(images, labels, aligned_share=0.9, severity=3, seed=5)
    for c in range(10):
        assert int((split.bias_labels[labels == c] == c).sum()) == 27
    assert split.images.dtype == torch.uint8 and split.images.shape == images.shape
    assert not torch.equal(split.images, images)
    again = corrupt_split(images, labels, aligned_share=0.9, severity=3, seed=5)
    assert torch.equal(split.images, again.images) and torch.equal(split.bias_labels, again.bias_labels)


# ------------------------------------------------------------------ CIFAR10-S


def test_pil_grey_matches_pil():
    images = (torch.rand(3, 3, 8, 8, generator=_gen(2)) * 255).to(torch.uint8)
    grey = pil_grey(images)
    for image, ours in zip(images, grey):
        theirs = np.asarray(Image.fromarray(image.permute(1, 2, 0).numpy()).convert("L"))
        assert np.array_equal(ours[0].numpy(), theirs) and torch.equal(ours[0], ours[2])


def test_cifar10s_splits():
    labels = torch.arange(10).repeat(20)
    images = (torch.rand(200, 3, 8, 8, generator=_gen(3)) * 255).to(torch.uint8)
    splits = cifar10s_splits((images, labels), (images[:50], labels[:50]), bias_ratio=0.9, seed=0)
    train = splits["train"]
    for c in range(10):
        assert int((train.bias_labels[train.labels == c] == CIFAR10S_ALIGNED[c]).sum()) == 18
    grey = train.bias_labels == 0
    assert torch.equal(train.images[grey][:, 0], train.images[grey][:, 1])
    assert torch.equal(train.images[~grey], images[~grey])
    test = splits["test"]
    assert len(test.labels) == 100 and test.bias_labels.tolist() == [0] * 50 + [1] * 50
    assert torch.equal(test.images[50:], images[:50])


# ------------------------------------------------------------------ registry and parameter checks


def test_every_dataset_is_registered_with_the_builder_signature():
    listed = list_datasets()
    assert NAMES <= set(listed)
    for name in NAMES:
        assert listed[name]
        params = inspect.signature(get_dataset_builder(name)).parameters
        assert params["seed"].kind is inspect.Parameter.KEYWORD_ONLY and params["seed"].default == 0
        assert params["root"].default is None
        assert all(p.default is not inspect.Parameter.empty for p in params.values())


@pytest.mark.parametrize(
    "name,params",
    [
        ("cmnist", {"conflict_ratio": 1.5}),
        ("cmnist", {"conflict_ratio": -0.01}),
        ("cmnist", {"conflict_ratio": math.nan}),
        ("cmnist", {"color_std": -1.0}),
        ("cmnist", {"seed": -1}),
        ("bg_fmnist", {"conflict_ratio": "0.05"}),
        ("cifar10c", {"severity": 0}),
        ("cifar10c", {"severity": 6}),
        ("cifar10c", {"severity": 2.5}),
        ("cifar10c", {"conflict_ratio": 2}),
        ("fmnist_c", {"severity": 6}),
        ("fmnist_c", {"conflict_ratio": -0.5}),
        ("cmnist_fg", {"bias_ratio": 1.1}),
        ("cfmnist_bg", {"test_bias_ratio": -1}),
        ("cifar10s", {"bias_ratio": 7}),
        ("bffhq", {"size": 2}),
        ("cdigits", {"conflict_ratio": 3}),
    ],
)
def test_bad_parameters_fail_before_any_data_is_read(name, params, tmp_path):
    missing_root = tmp_path / "no-data-here"
    with pytest.raises(ValueError) as info:
        create("dataset", name, root=str(missing_root), **params)
    assert isinstance(info.value, DatasetParameterError)
    assert name in str(info.value)
    assert not missing_root.exists()


def test_unknown_parameter_is_rejected_with_a_hint():
    with pytest.raises(ParameterError, match="conflict_ratio"):
        create("dataset", "cmnist", conflict_rate=0.05)


# ------------------------------------------------------------------ cdigits


def test_cdigits_shapes_protocol_and_fixed_split():
    data = build_cdigits(seed=0)
    assert data.name == "cdigits" and data.num_classes == 10 and data.num_bias == 10 and data.flip is False
    assert data.train.images.shape == (1347, 3, 16, 16) and data.test.images.shape == (450, 3, 16, 16)
    assert data.train.images.dtype == torch.float32 and data.train.labels.dtype == torch.int64
    assert data.train.bias_labels.dtype == torch.int64 and data.train.aligned_bias.tolist() == list(range(10))
    pictures = data.denormalise(data.train.images)
    assert pictures.min() >= 0 and pictures.max() <= 1
    stats = data.stats()
    for c in range(10):
        row = stats["train"][str(c)]
        size = row["aligned"] + row["conflicting"]
        assert row["aligned"] == round(size * 0.95)
        test_bias = data.test.bias_labels[data.test.labels == c]
        counts = torch.bincount(test_bias, minlength=10)
        assert counts.max() - counts.min() <= 1
    other = build_cdigits(seed=1, conflict_ratio=0.02)
    assert torch.equal(data.test.labels, other.test.labels)
    assert not torch.equal(data.train.bias_labels, other.train.bias_labels)


def test_cdigits_is_deterministic_by_seed():
    a, b = build_cdigits(seed=4), build_cdigits(seed=4)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.bias_labels, b.test.bias_labels)


# ------------------------------------------------------------------ cache


def _splits(seed: int = 0) -> dict[str, storage.RawSplit]:
    g = _gen(seed)
    return {
        "train": storage.RawSplit((torch.rand(20, 3, 4, 4, generator=g) * 255).to(torch.uint8), torch.arange(20) % 2, torch.arange(20) % 3),
        "test": storage.RawSplit(torch.zeros(4, 3, 4, 4, dtype=torch.uint8), torch.arange(4) % 2, torch.zeros(4, dtype=torch.int64)),
    }


def test_cache_builds_once_and_keys_on_every_parameter(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return _splits()

    first = storage.cached_splits("toy", {"ratio": 0.1}, build)
    second = storage.cached_splits("toy", {"ratio": 0.1}, build)
    assert len(calls) == 1 and torch.equal(first["train"].images, second["train"].images)
    storage.cached_splits("toy", {"ratio": 0.2}, build)
    assert len(calls) == 2
    assert len(list((tmp_path / "cache").glob("toy-*.pt"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "tamper"])
def test_damaged_cache_file_is_detected_and_rebuilt(tmp_path, damage):
    storage.cached_splits("toy", {"k": 1}, _splits)
    (path,) = (tmp_path / "cache").glob("toy-*.pt")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a torch file")
    else:
        payload = torch.load(path, weights_only=True)
        payload["splits"]["train"]["images"][0, 0, 0, 0] += 1
        torch.save(payload, path)
    calls = []

    def build():
        calls.append(1)
        return _splits()

    with pytest.warns(UserWarning, match="rebuilding"):
        splits = storage.cached_splits("toy", {"k": 1}, build)
    assert calls == [1] and torch.equal(splits["train"].images, _splits()["train"].images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage.cached_splits("toy", {"k": 1}, build)
    assert calls == [1]


def test_unwritable_cache_only_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("DD_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="DD_CACHE_DIR"):
        splits = storage.cached_splits("toy", {}, _splits)
    assert len(splits["train"].labels) == 20


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("DD_DATA_ROOT", str(tmp_path / "env"))
    assert storage.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert storage.data_root() == tmp_path / "env"
    monkeypatch.delenv("DD_DATA_ROOT")
    assert storage.data_root() == Path.home() / ".cache" / "dd_plugins" / "data"


# ------------------------------------------------------------------ raw MNIST files (tiny fakes)


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x800 | array.ndim
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, n_train: int = 60, n_test: int = 20, family: str = "MNIST") -> None:
    raw = root / family / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_cmnist_builds_from_idx_files_and_uses_the_cache(tmp_path):
    _fake_mnist(tmp_path / "data")
    raw = load_mnist_family("MNIST", tmp_path / "data")
    assert raw["train"][0].shape == (60, 28, 28) and raw["test"][1].tolist() == list(range(10)) * 2
    data = build_cmnist(root=str(tmp_path / "data"), conflict_ratio=0.5)
    assert data.train.images.shape == (60, 3, 28, 28) and data.test.images.shape == (20, 3, 28, 28)
    assert all(row["conflicting"] == 3 for row in data.stats()["train"].values())
    assert len(list((tmp_path / "cache").glob("cmnist-*.pt"))) == 1
    again = build_cmnist(root=str(tmp_path / "data"), conflict_ratio=0.5)
    assert torch.equal(data.train.images, again.train.images)


def test_fmnist_c_corrupts_fashion_mnist_by_class(tmp_path):
    _fake_mnist(tmp_path / "data", n_train=100, family="FashionMNIST")
    data = build_fmnist_c(root=str(tmp_path / "data"), conflict_ratio=0.1, severity=3)
    assert data.train.images.shape == (100, 3, 28, 28) and data.test.images.shape == (20, 3, 28, 28)
    assert data.num_bias == 10 and data.flip is False
    assert all(row == {"aligned": 9, "conflicting": 1} for row in data.stats()["train"].values())
    assert torch.equal(data.train.bias_labels[data.train.aligned], data.train.labels[data.train.aligned])
    raw = load_mnist_family("FashionMNIST", tmp_path / "data")["train"][0]
    clean = raw.float().div(255).sub(0.5).div(0.5).unsqueeze(1).expand(-1, 3, -1, -1)
    changed = (data.train.images - clean).abs().flatten(1).amax(1) > 0.05
    assert changed.float().mean() > 0.9  # every corruption alters the garment images at severity 3
    assert torch.equal(data.train.images, build_fmnist_c(root=str(tmp_path / "data"), conflict_ratio=0.1, severity=3).train.images)


def test_missing_raw_files_name_the_files_and_folder(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        build_cmnist(root=str(tmp_path / "offline"))
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "offline" / "MNIST" / "raw") in message
    assert "DD_DATA_ROOT" in message


def test_cifar_builders_need_real_cifar10(tmp_path):
    with pytest.raises(DataNotFoundError, match="data_batch_1"):
        build_cifar10c(root=str(tmp_path / "offline"))


def _fake_cifar10(root: Path, per_batch: int = 20) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), "labels": [i % 10 for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


def test_cifar_builders_read_the_python_batches(tmp_path):
    _fake_cifar10(tmp_path)
    corrupted = build_cifar10c(root=str(tmp_path), conflict_ratio=0.1, severity=2)
    assert corrupted.train.images.shape == (100, 3, 32, 32) and corrupted.test.images.shape == (20, 3, 32, 32)
    assert corrupted.flip is True and corrupted.num_bias == 10
    assert all(row == {"aligned": 9, "conflicting": 1} for row in corrupted.stats()["train"].values())
    grey_colour = build_cifar10s(root=str(tmp_path), bias_ratio=0.8)
    assert grey_colour.train.images.shape == (100, 3, 32, 32) and grey_colour.test.images.shape == (40, 3, 32, 32)
    assert grey_colour.num_bias == 2 and grey_colour.train.aligned_bias.tolist() == [0] * 5 + [1] * 5
    assert all(row == {"aligned": 8, "conflicting": 2} for row in grey_colour.stats()["train"].values())


# ------------------------------------------------------------------ bFFHQ


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _fake_bffhq(root: Path) -> None:
    base = root / "bffhq"
    files = [("0.5pct/align/0", 0, 0), ("0.5pct/align/0", 0, 0), ("0.5pct/align/1", 1, 1), ("0.5pct/align/1", 1, 1),
             ("0.5pct/align/1", 1, 1), ("0.5pct/conflict/0", 0, 1), ("valid", 1, 0), ("test", 0, 0), ("test", 0, 1),
             ("test", 1, 1), ("test", 1, 0)]
    for i, (folder, age, gender) in enumerate(files):
        _png(base / folder / f"{i:05d}_{age}_{gender}.png", i)


def test_bffhq_reads_the_dfa_layout(tmp_path):
    _fake_bffhq(tmp_path)
    data = build_bffhq(root=str(tmp_path), size=16)
    assert data.train.images.shape == (6, 3, 16, 16) and data.test.images.shape == (4, 3, 16, 16)
    assert data.num_classes == 2 and data.flip is True
    assert data.stats()["train"] == {"0": {"aligned": 2, "conflicting": 1}, "1": {"aligned": 3, "conflicting": 0}}
    assert data.stats()["test"] == {"0": {"aligned": 1, "conflicting": 1}, "1": {"aligned": 1, "conflicting": 1}}


def test_bffhq_missing_says_where_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        build_bffhq(root=str(tmp_path))
    assert "0.5pct/align" in str(info.value) and "Learning-Debiased-Disentangled" in str(info.value)


def test_bffhq_rejects_unparseable_names(tmp_path):
    _fake_bffhq(tmp_path)
    _png(tmp_path / "bffhq" / "test" / "face.png", 99)
    with pytest.raises(DataNotFoundError, match="_<age>_<gender>"):
        build_bffhq(root=str(tmp_path), size=16)


# ------------------------------------------------------------------ CLI


def test_parse_assignments():
    assert parse_assignments(["a=0.05", "b=3", "c=true", "root=/tmp/x"]) == {"a": 0.05, "b": 3, "c": True, "root": "/tmp/x"}
    with pytest.raises(ParameterError):
        parse_assignments(["novalue"])


def test_cli_lists_and_shows_datasets(tmp_path, capsys):
    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in NAMES)
    out = tmp_path / "pics" / "cdigits.png"
    assert main(["datasets", "--show", "cdigits", "--set", "conflict_ratio=0.1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "conflicting" in text and "train (1347 samples)" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["datasets", "--show", "cdigits", "--set", "conflict_ratio=2"]) == 2
    assert "conflict_ratio" in capsys.readouterr().err
