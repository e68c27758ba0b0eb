"""Instant fake components for the pipeline, grid and quickstart-plumbing tests.

Registered in-process (``pm.register(pipeline_fakes, name="pipeline_fakes")``); a module, so
``--jobs`` worker processes can register it again by name. ``CALLS`` records what ran in this
process, so tests can see which steps a resumed run repeated.
"""

from __future__ import annotations

import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import torch

import dd_plugins
from conftest import make_tiny_biased_dataset
from reference_methods.datasets.base import BiasedDataset
from reference_methods.methods.base import SyntheticSet

CALLS: list[tuple[str, int]] = []  # (component, seed it received)

TINY_EVAL = """
[eval]
num_eval = 1
epochs = 2
net_width = 8
net_depth = 1
dsa = false
whole_train_epochs = 1
"""


def build_tiny(*, seed: int = 0, per_class: int = 20, conflicting_share: float = 0.1) -> BiasedDataset:
    """Three classes of coloured bands, 3x16x16 (tests only)."""
    CALLS.append(("data", seed))
    return make_tiny_biased_dataset(seed=seed, per_class=per_class, conflicting_share=conflicting_share)


class TopWeighted:
    """The synthetic set is the ``ipc`` highest-weighted real images of each class (instant; tests only)."""

    def __init__(self, ipc: int = 2, iterations: int = 1, fail: bool = False, syn_lr: float | None = None,
                 interrupt: bool = False) -> None:
        if ipc < 1:
            raise ValueError("ipc must be >= 1")
        self.ipc = ipc
        self.fail = fail
        self.syn_lr = syn_lr
        self.interrupt = interrupt

    def distill(self, data: BiasedDataset, weights: torch.Tensor, *, device: torch.device, seed: int,
                progress: bool = False, checkpoint_dir: Path | None = None) -> SyntheticSet:
        CALLS.append(("distiller", seed))
        if self.fail:
            raise RuntimeError("deliberate failure of this cell")
        if self.interrupt:
            raise KeyboardInterrupt
        picks = []
        for c in range(data.num_classes):
            members = torch.nonzero(data.train.labels == c).flatten()
            picks.append(members[torch.argsort(weights[members], descending=True, stable=True)[:self.ipc]])
        index = torch.cat(picks)
        extras = {"picked": index.tolist(), **({"syn_lr": self.syn_lr} if self.syn_lr is not None else {})}
        return SyntheticSet(data.train.images[index].clone(), data.train.labels[index].clone(), extras)


class RecordingWeighter:
    """Weight 1 everywhere; records the seed it received."""

    requires: frozenset[str] = frozenset()

    def weigh(self, ctx: dd_plugins.WeightContext) -> torch.Tensor:
        CALLS.append(("weighter", ctx.seed))
        return torch.ones(ctx.labels.shape[0])


class NaNWeighter:
    """Returns NaN weights: a deliberately failing weighter."""

    requires: frozenset[str] = frozenset()

    def weigh(self, ctx: dd_plugins.WeightContext) -> torch.Tensor:
        return torch.full((ctx.labels.shape[0],), float("nan"))


@dd_plugins.hookimpl
def dd_register_datasets(register):
    register("tiny", build_tiny)


@dd_plugins.hookimpl
def dd_register_methods(register):
    register("top", TopWeighted)


@dd_plugins.hookimpl
def dd_register_weighters(register):
    register("recording", RecordingWeighter)
    register("nan", NaNWeighter)


@contextmanager
def registered():
    """These fakes registered on the plugin manager for the duration of the block."""
    pm = dd_plugins.get_plugin_manager()
    pm.register(sys.modules[__name__], name="pipeline_fakes")
    CALLS.clear()
    try:
        yield
    finally:
        pm.unregister(name="pipeline_fakes")


def write_config(folder: Path, body: str, name: str = "tiny") -> Path:
    """A config file ``folder/name.toml`` with ``body`` and the tiny evaluation settings."""
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(body) + TINY_EVAL)
    return path


BASE = """
[run]
seed = 0
device = "cpu"

[data]
name = "tiny"

[weighter]
name = "uniform"

[method]
name = "top"
ipc = 2
"""
