"""The ten CIFAR-10-C corruptions of LfF's "type0" Corrupted CIFAR-10, in torch, kornia and PIL.

Every function maps float images [N, 3, H, W] in [0, 1] to corrupted images of the same shape in
[0, 1], draws its randomness from the given ``torch.Generator`` (same generator state, same
output) and takes ``severity`` 1-5. The parameter tables are those of Hendrycks & Dietterich's
CIFAR-10-C (``make_cifar_c.py``), which LfF's ``data/corrupted_cifar10_protocol.py`` reuses.
Where the original calls ImageMagick (motion blur in Snow), OpenCV (Spatter's water relief) or
photographs (Frost), the replacement is described in that function's docstring.
"""

from __future__ import annotations

import io
import math
from collections import OrderedDict
from typing import Callable

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

SEVERITIES = (1, 2, 3, 4, 5)

# ---------------------------------------------------------------------------------------------
# helpers


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> Tensor:
    return torch.rand(shape, generator=generator) * (high - low) + low


def _luma(x: Tensor) -> Tensor:
    """ITU-R 601 grey [N, 1, H, W] (OpenCV's RGB2GRAY weights)."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def gaussian_blur(x: Tensor, sigma: float, truncate: float = 4.0, mode: str = "replicate") -> Tensor:
    """Separable Gaussian blur of [N, C, H, W], kernel radius ``int(truncate * sigma + 0.5)`` (scipy's)."""
    if sigma <= 0:
        return x
    radius = int(truncate * sigma + 0.5)
    n, c, h, w = x.shape
    if mode == "reflect" and radius >= min(h, w):
        mode = "replicate"  # torch's reflect padding needs a border narrower than the image
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    flat = F.pad(x.reshape(n * c, 1, h, w), (radius, radius, radius, radius), mode=mode)
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def _base_grid(n: int, h: int, w: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")
    return xs.expand(n, h, w), ys.expand(n, h, w)


def _sample(x: Tensor, px: Tensor, py: Tensor, padding_mode: str) -> Tensor:
    """Bilinear sample of x at pixel coordinates (px, py) [N, H, W]."""
    h, w = x.shape[-2:]
    grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def motion_blur(x: Tensor, radius: float, sigma: float, angles_deg: Tensor) -> Tensor:
    """One-sided Gaussian motion blur, one angle per image, after ImageMagick's MotionBlurImage.

    ImageMagick averages ``2*ceil(radius)+1`` samples taken at distances 0, 1, 2, ... along the
    direction (cos a, sin a), weighted by exp(-i^2 / 2 sigma^2); edges repeat the border pixel.
    Here the samples are bilinear instead of rounded to whole pixels.
    """
    n, _, h, w = x.shape
    width = 2 * math.ceil(radius) + 1
    steps = torch.arange(width, dtype=x.dtype)
    weights = torch.exp(-(steps**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    angles = torch.deg2rad(angles_deg.to(x.dtype)).view(n, 1, 1)
    xs, ys = _base_grid(n, h, w, x.dtype)
    out = torch.zeros_like(x)
    for i in range(width):
        shifted = _sample(x, xs + i * torch.cos(angles), ys + i * torch.sin(angles), "border")
        out = out + weights[i] * shifted
    return out


def clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """Zoom into the centre by ``factor`` (bilinear) and crop back to the input size."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    zoomed = F.interpolate(crop, size=(round(ch * factor), round(cw * factor)), mode="bilinear", align_corners=True)
    trim_top, trim_left = (zoomed.shape[-2] - h) // 2, (zoomed.shape[-1] - w) // 2
    return zoomed[..., trim_top : trim_top + h, trim_left : trim_left + w]


def plasma_fractal(n: int, size: int, decay: float, generator: torch.Generator) -> Tensor:
    """Diamond-square height maps [N, size, size] in [0, 1], wrapping at the borders.

    As in the CIFAR-10-C fog, the jitter added at each level is ``wibble * U(-wibble, wibble)``
    with ``wibble`` starting at 100 and divided by ``decay`` per level. ``size`` is rounded up to
    a power of two and the map cropped.
    """
    full = 1 << max(1, math.ceil(math.log2(size)))
    m = torch.zeros((n, full, full), dtype=torch.float64)
    step, wibble = full, 100.0
    while step >= 2:
        half = step // 2
        corners = m[:, ::step, ::step]
        square = corners + corners.roll(-1, 1)
        square = square + square.roll(-1, 2)
        m[:, half::step, half::step] = square / 4 + wibble * _uniform(square.shape, -wibble, wibble, generator).double()
        centres = m[:, half::step, half::step]
        corners = m[:, ::step, ::step]
        across = centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)
        m[:, ::step, half::step] = across / 4 + wibble * _uniform(across.shape, -wibble, wibble, generator).double()
        down = centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)
        m[:, half::step, ::step] = down / 4 + wibble * _uniform(down.shape, -wibble, wibble, generator).double()
        step, wibble = half, wibble / decay
    m = m[:, :size, :size]
    low = m.amin(dim=(1, 2), keepdim=True)
    high = m.amax(dim=(1, 2), keepdim=True)
    return ((m - low) / (high - low).clamp_min(1e-12)).float()


def frost_texture(n: int, h: int, w: int, generator: torch.Generator) -> Tensor:
    """Procedural ice textures [N, 3, H, W] in [0, 1], standing in for CIFAR-10-C's frost photos.

    The original crops one of six photographs of frosted glass. This draws a cloudy base (plasma
    fractal) plus needle-like crystals (sparse bright seeds smeared by short motion blurs in three
    random directions), tinted pale blue. Mean brightness is about that of the photos, so the
    severity table keeps its meaning, but the texture is not the photographs'.
    """
    base = plasma_fractal(n, max(h, w), 2.0, generator)[:, :h, :w].unsqueeze(1)
    seeds = (torch.rand((n, 1, h, w), generator=generator) < 0.04).float() * _uniform((n, 1, h, w), 0.5, 1.0, generator)
    crystals = torch.zeros_like(seeds)
    for _ in range(3):
        angles = _uniform((n,), 0.0, 360.0, generator)
        crystals = torch.maximum(crystals, motion_blur(seeds, max(h, w) / 8, max(h, w) / 10, angles))
    crystals = crystals / crystals.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    ice = (0.25 + 0.45 * base + 0.6 * crystals).clamp(0.0, 1.0)
    tint = torch.tensor([0.86, 0.93, 1.0]).view(1, 3, 1, 1)
    return ice * tint


def _per_image_pil(x: Tensor, fn: Callable[[Image.Image], Image.Image]) -> Tensor:
    arrays = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = [np.asarray(fn(Image.fromarray(a, mode="RGB")).convert("RGB")) for a in arrays]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


# ---------------------------------------------------------------------------------------------
# the ten corruptions, in LfF type0 order (class k gets corruption k)


def snow(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Snow flakes: thresholded, zoomed noise streaked by a motion blur (ImageMagick's, reimplemented)."""
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ][severity - 1]
    n, _, h, w = x.shape
    flakes = torch.randn((n, 1, h, w), generator=generator) * scale + loc
    flakes = clipped_zoom(flakes, zoom)
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes).clamp(0, 1)
    flakes = motion_blur(flakes, radius, sigma, _uniform((n,), -135.0, -45.0, generator))
    x = keep * x + (1 - keep) * torch.maximum(x, _luma(x) * 1.5 + 0.5)
    return (x + flakes + flakes.flip(-1, -2)).clamp(0, 1)


def frost(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Frosted glass: the image dimmed and a procedural ice texture added (see ``frost_texture``)."""
    keep, ice = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    n, _, h, w = x.shape
    return (keep * x + ice * frost_texture(n, h, w, generator)).clamp(0, 1)


def fog(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Fog: a plasma-fractal haze added, then the range compressed back."""
    strength, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    n, _, h, w = x.shape
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    haze = plasma_fractal(n, max(h, w), decay, generator)[:, :h, :w].unsqueeze(1)
    return ((x + strength * haze) * peak / (peak + strength)).clamp(0, 1)


def brightness(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Brightness: the HSV value channel raised."""
    shift = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    hsv = kornia.color.rgb_to_hsv(x)
    hsv = torch.cat((hsv[:, :2], (hsv[:, 2:] + shift).clamp(0, 1)), dim=1)
    return kornia.color.hsv_to_rgb(hsv).clamp(0, 1)


def contrast(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Contrast: each channel pulled towards its mean."""
    factor = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    means = x.mean(dim=(2, 3), keepdim=True)
    return ((x - means) * factor + means).clamp(0, 1)


def spatter(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Spatter: water drops (severity 1-3) or mud (4-5) from a blurred, thresholded noise layer.

    The mud branch follows CIFAR-10-C. The water branch there shades the drops with an OpenCV
    relief (Canny edges, distance transform, histogram equalisation, emboss); here the relief is an
    emboss of the liquid layer itself, which gives drops of the same extent and colour.
    """
    loc, scale, sigma, threshold, amount, is_mud = [
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ][severity - 1]
    n, _, h, w = x.shape
    liquid = gaussian_blur(torch.randn((n, 1, h, w), generator=generator) * scale + loc, sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if is_mud:
        mask = gaussian_blur((liquid > threshold).float(), amount)
        mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
        mud = torch.tensor([63.0, 42.0, 20.0]).view(1, 3, 1, 1) / 255.0
        return (x * (1 - mask) + mud * mask).clamp(0, 1)
    emboss = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]).view(1, 1, 3, 3)
    relief = F.conv2d(F.pad(liquid, (1, 1, 1, 1), mode="replicate"), emboss).clamp_min(0)
    shade = liquid * (1 + relief)
    shade = shade / shade.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8) * amount
    water = torch.tensor([175.0, 238.0, 238.0]).view(1, 3, 1, 1) / 255.0
    return (x + shade * water).clamp(0, 1)


def elastic(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Elastic transform: a random affine jitter of three points, then a smooth displacement field."""
    size = x.shape[-1]
    alpha, sigma, jitter = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)][severity - 1]
    alpha, sigma, jitter = alpha * size, sigma * size, jitter * size
    n, _, h, w = x.shape
    centre = torch.tensor([w // 2, h // 2], dtype=torch.float32)
    half = min(h, w) // 3
    src = torch.stack((centre + half, torch.stack((centre[0] + half, centre[1] - half)), centre - half))  # [3, 2] (x, y)
    dst = src + _uniform((n, 3, 2), -jitter, jitter, generator)
    ones = torch.ones((n, 3, 1))
    # inverse affine (dst -> src) solved per image: [x' y' 1] @ A = [x y]
    inverse = torch.linalg.solve(torch.cat((dst, ones), dim=2), src.expand(n, 3, 2))
    dx = gaussian_blur(_uniform((n, 1, h, w), -1, 1, generator), sigma, truncate=3.0, mode="reflect")[:, 0] * alpha
    dy = gaussian_blur(_uniform((n, 1, h, w), -1, 1, generator), sigma, truncate=3.0, mode="reflect")[:, 0] * alpha
    xs, ys = _base_grid(n, h, w, torch.float32)
    qx, qy = xs + dx, ys + dy
    sx = qx * inverse[:, 0, 0].view(n, 1, 1) + qy * inverse[:, 1, 0].view(n, 1, 1) + inverse[:, 2, 0].view(n, 1, 1)
    sy = qx * inverse[:, 0, 1].view(n, 1, 1) + qy * inverse[:, 1, 1].view(n, 1, 1) + inverse[:, 2, 1].view(n, 1, 1)
    return _sample(x, sx, sy, "reflection").clamp(0, 1)


def jpeg(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """JPEG compression artefacts (PIL encoder)."""
    quality = [80, 65, 58, 50, 40][severity - 1]

    def compress(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer)

    return _per_image_pil(x, compress)


def pixelate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Pixelation: box-downscaled and box-upscaled again (PIL)."""
    factor = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    h, w = x.shape[-2:]

    def blocky(image: Image.Image) -> Image.Image:
        small = image.resize((int(w * factor), int(h * factor)), Image.BOX)
        return small.resize((w, h), Image.BOX)

    return _per_image_pil(x, blocky)


def saturate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Saturation: the HSV saturation channel scaled and shifted."""
    factor, shift = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    hsv = kornia.color.rgb_to_hsv(x)
    hsv = torch.cat((hsv[:, :1], (hsv[:, 1:2] * factor + shift).clamp(0, 1), hsv[:, 2:]), dim=1)
    return kornia.color.hsv_to_rgb(hsv).clamp(0, 1)


CORRUPTIONS: "OrderedDict[str, Callable[[Tensor, int, torch.Generator], Tensor]]" = OrderedDict(
    [
        ("Snow", snow),
        ("Frost", frost),
        ("Fog", fog),
        ("Brightness", brightness),
        ("Contrast", contrast),
        ("Spatter", spatter),
        ("Elastic", elastic),
        ("JPEG", jpeg),
        ("Pixelate", pixelate),
        ("Saturate", saturate),
    ]
)
