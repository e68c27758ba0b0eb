"""Differentiable Siamese Augmentation (DSA) with the published VICO parameters.

Values from ``ParamDiffAug`` in VICO-UoE/DatasetCondensation ``utils.py``: strategy
``color_crop_cutout_flip_scale_rotate`` in single mode ('S': each call applies ONE randomly chosen
family), flip probability 0.5, scale ratio 1.2 (per-axis factor uniform in [1/1.2, 1.2]), rotation
uniform in ±15°, crop = translation by up to 0.125 of the side with zero fill, cutout of a
0.5 x 0.5 square, colour = brightness (+U(-0.5, 0.5) x 1.0), saturation (x U(0, 1) x 2.0) and
contrast (x U(0, 1) + 0.5), in that order.

Siamese use: ``sample_params`` once, then ``apply`` the same parameters to the real and the
synthetic batch; with no ``batch_size`` one parameter set is shared by the whole batch (VICO's
seeded "batch mode"). ``__call__`` draws per-sample parameters, as VICO's evaluation training
does (seed -1). Everything is written with torch ops (affine_grid/grid_sample, indexing) on
normalised tensors: kornia's colour ops clamp to [0, 1] and sample parameters internally, and the
Siamese contract needs explicit parameter tensors. ``apply`` is differentiable w.r.t. ``x``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

VICO_STRATEGY = "color_crop_cutout_flip_scale_rotate"


class DSAugment:
    """DSA augmentation; ``flip=False`` drops the flip family (digits, where flips change meaning)."""

    def __init__(self, flip: bool = True, *, strategy: str = VICO_STRATEGY, prob_flip: float = 0.5,
                 ratio_scale: float = 1.2, ratio_rotate: float = 15.0, ratio_crop_pad: float = 0.125,
                 ratio_cutout: float = 0.5, brightness: float = 1.0, saturation: float = 2.0,
                 contrast: float = 0.5) -> None:
        families = [f for f in strategy.split("_") if f and (flip or f != "flip")]
        unknown = sorted(set(families) - {"color", "crop", "cutout", "flip", "scale", "rotate"})
        if unknown or not families:
            raise ValueError(f"DSA strategy '{strategy}' has unknown or no families {unknown}; "
                             f"use families from '{VICO_STRATEGY}' joined by '_'")
        self.families = families
        self.prob_flip = prob_flip
        self.ratio_scale = ratio_scale
        self.ratio_rotate = ratio_rotate
        self.ratio_crop_pad = ratio_crop_pad
        self.ratio_cutout = ratio_cutout
        self.brightness = brightness
        self.saturation = saturation
        self.contrast = contrast

    def sample_params(self, generator: torch.Generator | None = None, batch_size: int | None = None) -> dict:
        """One family and its random numbers: shared by the batch (``batch_size=None``) or per sample.

        Integer offsets (crop, cutout) are kept as uniforms in [0, 1) and turned into pixels in
        ``apply``, so one parameter set fits any image size. ``generator=None`` uses torch's default.
        """
        n = 1 if batch_size is None else batch_size

        def uniform(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=generator)

        family = self.families[int(torch.randint(len(self.families), (1,), generator=generator))]
        params: dict = {"family": family}
        if family == "color":
            params.update(brightness=uniform(n), saturation=uniform(n), contrast=uniform(n))
        elif family in ("crop", "cutout"):
            params.update(u_row=uniform(n), u_col=uniform(n))
        elif family == "flip":
            params.update(flip=uniform(n) < self.prob_flip)
        elif family == "scale":
            low = 1.0 / self.ratio_scale
            params.update(sx=uniform(n) * (self.ratio_scale - low) + low, sy=uniform(n) * (self.ratio_scale - low) + low)
        else:  # rotate
            params.update(angle=(uniform(n) - 0.5) * 2 * self.ratio_rotate / 180 * math.pi)
        return params

    def apply(self, x: Tensor, params: dict) -> Tensor:
        """Augment ``x`` [B, C, H, W] with ``params`` from ``sample_params`` (differentiable w.r.t. ``x``)."""
        p = {k: v.to(x.device) if isinstance(v, Tensor) else v for k, v in params.items()}
        family = p["family"]
        if family == "color":
            x = x + (p["brightness"].to(x.dtype).view(-1, 1, 1, 1) - 0.5) * self.brightness
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (p["saturation"].to(x.dtype).view(-1, 1, 1, 1) * self.saturation) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) * (p["contrast"].to(x.dtype).view(-1, 1, 1, 1) + self.contrast) + mean
        if family == "crop":
            return _translate(x, p["u_row"], p["u_col"], self.ratio_crop_pad)
        if family == "cutout":
            return _cutout(x, p["u_row"], p["u_col"], self.ratio_cutout)
        if family == "flip":
            return torch.where(p["flip"].view(-1, 1, 1, 1), x.flip(3), x)
        if family == "scale":
            zero = torch.zeros_like(p["sx"])
            theta = torch.stack([torch.stack([p["sx"], zero, zero], -1), torch.stack([zero, p["sy"], zero], -1)], 1)
            return _warp(x, theta)
        if family == "rotate":
            a, zero = p["angle"], torch.zeros_like(p["angle"])
            theta = torch.stack([torch.stack([a.cos(), -a.sin(), zero], -1), torch.stack([a.sin(), a.cos(), zero], -1)], 1)
            return _warp(x, theta)
        raise ValueError(f"unknown DSA family '{family}'")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment with per-sample parameters (the evaluation-training use)."""
        return self.apply(x, self.sample_params(generator, batch_size=x.shape[0]))


def _warp(x: Tensor, theta: Tensor) -> Tensor:
    """Resample ``x`` through the affine map ``theta`` [1 or B, 2, 3] (normalised coordinates, zero fill)."""
    theta = theta.to(x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def _translate(x: Tensor, u_row: Tensor, u_col: Tensor, ratio: float) -> Tensor:
    """Shift by whole pixels, up to ``ratio`` of each side, filling with zeros (VICO's pad-and-crop)."""
    b, _, h, w = x.shape
    max_row, max_col = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_row = (u_row * (2 * max_row + 1)).floor().long() - max_row
    shift_col = (u_col * (2 * max_col + 1)).floor().long() - max_col
    rows = (torch.arange(h, device=x.device) + shift_row.view(-1, 1)).expand(b, h)
    cols = (torch.arange(w, device=x.device) + shift_col.view(-1, 1)).expand(b, w)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None]
    moved = x[batch, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]  # [B, H, W, C]
    return moved.permute(0, 3, 1, 2) * inside[:, None].to(x.dtype)


def _cutout(x: Tensor, u_row: Tensor, u_col: Tensor, ratio: float) -> Tensor:
    """Zero a square of ``ratio`` of each side whose centre is uniform over the image (VICO's offsets)."""
    _, _, h, w = x.shape
    size_row, size_col = int(h * ratio + 0.5), int(w * ratio + 0.5)
    start_row = (u_row * (h + 1 - size_row % 2)).floor().long() - size_row // 2
    start_col = (u_col * (w + 1 - size_col % 2)).floor().long() - size_col // 2
    rows = torch.arange(h, device=x.device).view(1, -1) - start_row.view(-1, 1)
    cols = torch.arange(w, device=x.device).view(1, -1) - start_col.view(-1, 1)
    hole = ((rows >= 0) & (rows < size_row))[:, :, None] & ((cols >= 0) & (cols < size_col))[:, None, :]
    return x * (~hole)[:, None].to(x.dtype)
