"""DSA augmentation: published parameters, Siamese use, flip switch, differentiability."""

from __future__ import annotations

import math

import pytest
import torch

from reference_methods.augment import DSAugment

FAMILIES = ["color", "crop", "cutout", "flip", "scale", "rotate"]


@pytest.mark.parametrize("family", FAMILIES)
def test_same_parameters_transform_real_and_synthetic_batches_alike(family):
    aug = DSAugment(strategy=family)
    real, syn = torch.randn(5, 3, 16, 16), torch.randn(2, 3, 16, 16)
    for seed in range(5):
        params = aug.sample_params(torch.Generator().manual_seed(seed))
        both = aug.apply(torch.cat([real, syn]), params)
        torch.testing.assert_close(both, torch.cat([aug.apply(real, params), aug.apply(syn, params)]))
        # one parameter set for the whole batch: a real image copied into the synthetic batch changes alike
        syn_with_copy = torch.cat([syn, real[3:4]])
        torch.testing.assert_close(aug.apply(syn_with_copy, params)[2], aug.apply(real, params)[3])


def test_siamese_params_are_one_set_and_evaluation_params_are_per_sample():
    aug = DSAugment(strategy="rotate")
    x = torch.randn(1, 3, 16, 16).repeat(4, 1, 1, 1)
    shared = aug.apply(x, aug.sample_params(torch.Generator().manual_seed(0)))
    assert all(torch.equal(shared[0], shared[i]) for i in range(4))
    per_sample = aug(x, torch.Generator().manual_seed(0))
    assert not torch.allclose(per_sample[0], per_sample[1])


def test_published_parameter_ranges():
    aug = DSAugment()
    assert aug.families == FAMILIES
    assert (aug.prob_flip, aug.ratio_scale, aug.ratio_rotate, aug.ratio_crop_pad, aug.ratio_cutout) == (0.5, 1.2, 15.0, 0.125, 0.5)
    assert (aug.brightness, aug.saturation, aug.contrast) == (1.0, 2.0, 0.5)
    scale = DSAugment(strategy="scale").sample_params(torch.Generator().manual_seed(0), batch_size=2000)
    assert scale["sx"].min() >= 1 / 1.2 and scale["sx"].max() <= 1.2
    angle = DSAugment(strategy="rotate").sample_params(torch.Generator().manual_seed(0), batch_size=2000)["angle"]
    assert angle.abs().max() <= 15 / 180 * math.pi and angle.abs().max() > 14 / 180 * math.pi


def test_flip_off_never_flips():
    aug = DSAugment(flip=False)
    assert "flip" not in aug.families
    g = torch.Generator().manual_seed(0)
    assert all(aug.sample_params(g)["family"] != "flip" for _ in range(200))


def test_crop_shifts_whole_pixels_with_zero_fill_and_cutout_zeroes_a_half_square():
    aug = DSAugment()
    x = torch.arange(64.0).view(1, 1, 8, 8) + 1
    # 8 x 0.125 = 1 pixel at most: u in the top third of [0, 1) means a shift of +1
    shifted = aug.apply(x, {"family": "crop", "u_row": torch.tensor([0.9]), "u_col": torch.tensor([0.5])})
    assert torch.equal(shifted[0, 0, :7], x[0, 0, 1:]) and (shifted[0, 0, 7] == 0).all()
    cut = aug.apply(x, {"family": "cutout", "u_row": torch.tensor([0.5]), "u_col": torch.tensor([0.5])})
    assert int((cut == 0).sum()) == 16


@pytest.mark.parametrize("family", FAMILIES)
def test_apply_is_differentiable_and_reproducible(family):
    aug = DSAugment(strategy=family)
    x = torch.randn(3, 3, 16, 16, requires_grad=True)
    params = aug.sample_params(torch.Generator().manual_seed(3))
    aug.apply(x, params).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = aug.sample_params(torch.Generator().manual_seed(3))
    assert all(torch.equal(params[k], again[k]) if torch.is_tensor(params[k]) else params[k] == again[k] for k in params)


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="color_crop_cutout_flip_scale_rotate"):
        DSAugment(strategy="color_blur")
