"""CMNIST and BG-FMNIST built from the real MNIST / Fashion-MNIST files in DD_DATA_ROOT."""

from __future__ import annotations

import os

import pytest
import torch

from reference_methods.datasets.bias import bias_counts
from reference_methods.datasets.colour import LFF_COLOURS
from reference_methods.datasets.lff import build_bg_fmnist, build_cmnist

pytestmark = pytest.mark.skipif(
    not os.environ.get("DD_DATA_ROOT"),
    reason="DD_DATA_ROOT is unset: point it at a writable copy of shared/data (MNIST/raw, FashionMNIST/raw)",
)

MNIST_TRAIN_SIZES = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_SIZES = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# round(0.05 * class size): the exact number of colour-conflicting training digits per class
CMNIST_5PCT_CONFLICTING = [296, 337, 298, 307, 292, 271, 296, 313, 293, 297]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DD_CACHE_DIR", str(tmp_path_factory.mktemp("dataset-cache")))
        yield


@pytest.fixture(scope="module")
def cmnist(cache):
    return build_cmnist(seed=0, conflict_ratio=0.05)


def test_cmnist_5pct_exact_counts(cmnist):
    assert cmnist.train.images.shape == (60000, 3, 28, 28) and cmnist.test.images.shape == (10000, 3, 28, 28)
    stats = cmnist.stats()
    assert [stats["train"][str(c)]["conflicting"] for c in range(10)] == CMNIST_5PCT_CONFLICTING
    assert sum(CMNIST_5PCT_CONFLICTING) == 3000
    for c in range(10):
        in_class = cmnist.train.labels == c
        assert int(in_class.sum()) == MNIST_TRAIN_SIZES[c]
        counts = torch.bincount(cmnist.train.bias_labels[in_class], minlength=10)
        assert counts[c] == MNIST_TRAIN_SIZES[c] - CMNIST_5PCT_CONFLICTING[c]
        others = torch.cat((counts[:c], counts[c + 1 :]))
        assert others.max() - others.min() <= 1, f"class {c}: conflicting colours not spread evenly: {others.tolist()}"


def test_cmnist_test_colours_are_uniform(cmnist):
    for c in range(10):
        in_class = cmnist.test.labels == c
        assert int(in_class.sum()) == MNIST_TEST_SIZES[c]
        counts = torch.bincount(cmnist.test.bias_labels[in_class], minlength=10)
        assert counts.tolist() == bias_counts(MNIST_TEST_SIZES[c], c, 0.1, 10).tolist()
        assert counts.max() - counts.min() <= 1
    assert int(cmnist.test.conflicting.sum()) == 9000


def test_cmnist_strokes_carry_their_bias_colour(cmnist):
    pictures = cmnist.denormalise(cmnist.train.images[:2000])
    brightest = pictures.amax(dim=1, keepdim=True)
    stroke = (brightest > 0.7 * brightest.amax(dim=(2, 3), keepdim=True)).float()
    mean_colour = (pictures * stroke).sum(dim=(2, 3)) / stroke.sum(dim=(2, 3))
    scale = mean_colour.amax(dim=1, keepdim=True) / LFF_COLOURS[cmnist.train.bias_labels[:2000]].amax(dim=1, keepdim=True)
    nearest = torch.cdist(mean_colour / scale, LFF_COLOURS).argmin(dim=1)
    assert (nearest == cmnist.train.bias_labels[:2000]).float().mean() > 0.99
    assert (pictures[:, :, 0, 0] == 0).all()


def test_bg_fmnist_background_is_the_bias_colour(cache):
    data = build_bg_fmnist(seed=0, conflict_ratio=0.01)
    corners = data.denormalise(data.test.images[:, :, :1, :1]).flatten(1)
    error = (corners - LFF_COLOURS[data.test.bias_labels]).abs().amax(dim=1)
    assert (error < 0.05).float().mean() > 0.95
    assert int(data.train.conflicting.sum()) == 600
    for c in range(10):
        counts = torch.bincount(data.test.bias_labels[data.test.labels == c], minlength=10)
        assert counts.tolist() == [100] * 10
