"""Crash-safe file writing (``dd_plugins.atomic``) for the kinds of file a run saves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from dd_plugins.atomic import atomic_write


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write bytes (a rendered PNG, say) so that ``path`` holds either the old or the whole new content."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: Path) -> None:
    """Write text so that ``path`` holds either the old or the whole new content."""
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(obj: Any, path: Path) -> None:
    """Write JSON (indented, sorted keys) atomically."""
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)
