"""The synthetic set's start: uniform real (VICO's), weighted real (drawn ∝ weight, no duplicates), noise."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny_biased_dataset
from reference_methods.evaluate import random_real_subset
from reference_methods.methods.dm import DM
from reference_methods.methods.dsa import DSADistiller
from reference_methods.methods.loop import initial_images

CPU = torch.device("cpu")


def _rows_of(images, pool):
    """Index in ``pool`` of each image (each must be found)."""
    return [int(torch.nonzero((pool == x).flatten(1).all(1))[0]) for x in images]


def test_weighted_init_draws_distinct_images_of_positive_weight_in_class_blocks(tiny_biased_dataset):
    data = tiny_biased_dataset
    weights = data.train.conflicting.double()  # all weight on the 4 conflicting images of each class
    images = initial_images(data, 3, "weighted", torch.Generator().manual_seed(0), CPU, weights)
    rows = _rows_of(images, data.train.images)
    assert len(set(rows)) == 9
    assert data.train.conflicting[rows].all()
    assert data.train.labels[rows].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_weighted_init_follows_the_weights():
    """Image 0 holds 90% of a 10-image class's weight: a draw of one image picks it about 90% of the time."""
    data = make_tiny_biased_dataset(per_class=10)
    weights = torch.full((30,), 1.0 / 90)
    first = torch.nonzero(data.train.labels == 0)[0, 0]
    weights[first] = 1.0
    g = torch.Generator().manual_seed(0)
    hits = sum(_rows_of(initial_images(data, 1, "weighted", g, CPU, weights)[:1], data.train.images)[0] == first
               for _ in range(200))
    assert 160 <= hits <= 199


def test_weighted_init_with_too_few_positive_weights_names_the_class(tiny_biased_dataset):
    data = tiny_biased_dataset
    with pytest.raises(ValueError, match="class 0 has 4 images of positive weight, fewer than ipc=5"):
        initial_images(data, 5, "weighted", torch.Generator().manual_seed(0), CPU, data.train.conflicting.double())
    with pytest.raises(ValueError, match="needs the sample weights"):
        initial_images(data, 2, "weighted", torch.Generator().manual_seed(0), CPU)


def test_real_init_is_the_random_real_subset_of_the_same_generator(tiny_biased_dataset):
    """DM's real init and the random-real baseline draw the same images from the same seed."""
    data = tiny_biased_dataset
    images = initial_images(data, 2, "real", torch.Generator().manual_seed(3), CPU)
    subset = random_real_subset(data.train, 2, torch.Generator().manual_seed(3))
    assert torch.equal(images, subset.images.float())


@pytest.mark.parametrize("make", [lambda: DM(ipc=2, iterations=0, batch_real=8, net_width=8, net_depth=2, init="weighted"),
                                  lambda: DSADistiller(ipc=2, iterations=0, batch_real=8, net_width=8, net_depth=2,
                                                       init="weighted")])
def test_dm_and_dsa_start_from_the_weighted_draw(tiny_biased_dataset, make):
    data = tiny_biased_dataset
    syn = make().distill(data, data.train.conflicting.float(), device=CPU, seed=0)
    assert data.train.conflicting[_rows_of(syn.images, data.train.images)].all()
