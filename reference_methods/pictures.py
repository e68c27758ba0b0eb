"""Pictures of a run: the synthetic set as a grid (one row per class) and the weight histogram."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from reference_methods.io import atomic_write_bytes  # noqa: E402

MAX_COLUMNS = 20  # more images per class than this would make unreadably small tiles


def save_figure(fig: plt.Figure, path: Path, dpi: int = 120) -> None:
    """Render ``fig`` to PNG in memory, write it atomically, and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), path)


def image_grid(images: Tensor, labels: Tensor, num_classes: int, max_columns: int = MAX_COLUMNS) -> Tensor:
    """Images in [0, 1] laid out one row per class, [H_total, W_total, C]; empty cells stay white."""
    images = images.detach().float().cpu()
    labels = labels.detach().cpu()
    per_class = [images[labels == c][:max_columns] for c in range(num_classes)]
    columns = max([len(p) for p in per_class] + [1])
    channels, h, w = images.shape[1:]
    pad = 1
    canvas = torch.ones(channels, num_classes * (h + pad) + pad, columns * (w + pad) + pad)
    for row, block in enumerate(per_class):
        for col, image in enumerate(block):
            top, left = pad + row * (h + pad), pad + col * (w + pad)
            canvas[:, top:top + h, left:left + w] = image
    return canvas.permute(1, 2, 0)


def save_synthetic_grid(images: Tensor, labels: Tensor, num_classes: int, path: Path, title: str = "") -> None:
    """PNG of a (denormalised, [0, 1]) image set, one row per class labelled by its class index."""
    grid = image_grid(images, labels, num_classes)
    columns = min(MAX_COLUMNS, max(int((labels == c).sum()) for c in range(num_classes)))
    size = 0.45  # inches per tile
    fig, ax = plt.subplots(figsize=(min(12.0, 1.0 + size * columns), min(12.0, 0.8 + size * num_classes)))
    if grid.shape[2] == 1:
        ax.imshow(grid[:, :, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(grid.clamp(0, 1).numpy(), interpolation="nearest")
    tile = (grid.shape[0] - 1) / num_classes
    ax.set_yticks([1 + tile * (c + 0.5) for c in range(num_classes)], [str(c) for c in range(num_classes)])
    ax.set_xticks([])
    ax.set_ylabel("class")
    if title:
        ax.set_title(title)
    save_figure(fig, path)


def save_weight_histogram(weights: Tensor, conflicting: Tensor, path: Path, title: str = "") -> None:
    """Histogram of normalised weights, bias-aligned vs bias-conflicting samples (log-spaced bins)."""
    weights = weights.detach().double().cpu()
    conflicting = conflicting.bool().cpu()
    positive = weights[weights > 0]
    low = positive.min().item() if positive.numel() else 1.0
    high = weights.max().item() if weights.numel() else 1.0
    if high <= low * 1.0001:
        low, high = low / 2, high * 2  # uniform weights: one visible bar around 1
    bins = torch.logspace(torch.log10(torch.tensor(low)), torch.log10(torch.tensor(high)), 40).numpy()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for mask, label, colour in ((~conflicting, "bias-aligned", "tab:blue"), (conflicting, "bias-conflicting", "tab:red")):
        values = weights[mask].clamp(min=low).numpy()
        ax.hist(values, bins=bins, alpha=0.6, label=f"{label} (n={int(mask.sum())})", color=colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight (mean 1 within each class)")
    ax.set_ylabel("samples")
    ax.legend()
    if title:
        ax.set_title(title)
    save_figure(fig, path)
