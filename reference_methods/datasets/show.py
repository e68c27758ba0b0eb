"""``dd-distill datasets --show NAME``: print a dataset's statistics and save a picture of it.

The picture has one row per class: aligned examples on the left, conflicting ones on the right,
so a glance shows whether the bias looks as intended.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import torch

from dd_plugins.errors import ParameterError
from reference_methods.datasets.base import BiasedDataset


def parse_assignments(items: list[str]) -> dict:
    """``["key=value", ...]`` -> dict; values are read as TOML (numbers, booleans) or kept as strings."""
    params = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--set expects key=value, got '{item}'.")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        params[key.strip()] = value
    return params


def format_stats(dataset: BiasedDataset) -> str:
    """Per class counts of aligned and conflicting samples of both splits, as a text table."""
    stats = dataset.stats()
    lines = [
        f"{dataset.name}: {dataset.num_classes} classes, {dataset.num_bias} bias values, "
        f"images {dataset.channels}x{dataset.im_size[0]}x{dataset.im_size[1]}, params {dataset.params}",
        f"normalisation mean {dataset.mean} std {dataset.std}, flip augmentation {'on' if dataset.flip else 'off'}",
    ]
    for split_name, rows in stats.items():
        split = getattr(dataset, split_name)
        lines.append(f"\n{split_name} ({len(split)} samples)")
        lines.append(f"{'class':>5}  {'aligned':>8}  {'conflicting':>11}  {'conflict %':>10}")
        for c, row in rows.items():
            total = row["aligned"] + row["conflicting"]
            share = 100.0 * row["conflicting"] / total if total else 0.0
            lines.append(f"{c:>5}  {row['aligned']:>8}  {row['conflicting']:>11}  {share:>10.2f}")
        conflicting = int(split.conflicting.sum())
        lines.append(f"{'all':>5}  {len(split) - conflicting:>8}  {conflicting:>11}  {100.0 * conflicting / max(len(split), 1):>10.2f}")
    return "\n".join(lines)


def save_examples(dataset: BiasedDataset, path: Path, per_side: int = 6) -> Path:
    """A PNG with one row per class of the train split: ``per_side`` aligned, then conflicting, examples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = dataset.train
    _, h, w = split.images.shape[1:]
    gap = max(2, w // 4)
    canvas = torch.full((3, dataset.num_classes * (h + 2), 2 * per_side * (w + 2) + gap), 0.5)  # grey gaps: white and black images both stand out
    for c in range(dataset.num_classes):
        in_class = split.labels == c
        for side, mask in enumerate((in_class & split.aligned, in_class & split.conflicting)):
            picked = torch.nonzero(mask).flatten()[:per_side]
            images = dataset.denormalise(split.images[picked])
            if images.shape[1] == 1:
                images = images.expand(-1, 3, -1, -1)
            for j, image in enumerate(images):
                top = c * (h + 2) + 1
                left = side * (per_side * (w + 2) + gap) + j * (w + 2) + 1
                canvas[:, top : top + h, left : left + w] = image
    fig_w = max(4.0, canvas.shape[2] / 40)
    fig, ax = plt.subplots(figsize=(fig_w, fig_w * canvas.shape[1] / canvas.shape[2] + 0.6))
    ax.imshow(canvas.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_yticks([c * (h + 2) + h / 2 for c in range(dataset.num_classes)], [str(c) for c in range(dataset.num_classes)])
    half = per_side * (w + 2)
    ax.set_xticks([half / 2, half + gap + half / 2], ["bias-aligned", "bias-conflicting"])
    ax.set_ylabel("class")
    ax.set_title(f"{dataset.name} (train)")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
