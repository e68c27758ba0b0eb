"""Crash-safe file writing: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write bytes (a rendered PNG, say) so that ``path`` holds either the old or the whole new content."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: Path) -> None:
    """Write text so that ``path`` holds either the old or the whole new content."""
    _atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(obj: Any, path: Path) -> None:
    """Write JSON (indented, sorted keys) atomically."""
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)
