"""A real third-party package (tests/example_plugin) installed with pip and found by its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dd_plugins

EXAMPLE = Path(__file__).parent / "example_plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install the example plugin into a private folder and put that folder on sys.path."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True,
        env={**os.environ, "TMPDIR": str(build), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    sys.path.insert(0, str(target))
    dd_plugins.reset_plugin_manager()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("dd_example_weighter", None)
    dd_plugins.reset_plugin_manager()


def test_installed_plugin_is_usable_by_name(installed_example):
    weighter = dd_plugins.get_weighter("jitter", spread=0.25)
    labels = torch.tensor([0, 0, 1, 1])
    weights = dd_plugins.compute_weights(weighter, "jitter", torch.zeros(4, 1, 2, 2), labels, 2, seed=3)
    again = dd_plugins.compute_weights(weighter, "jitter", torch.zeros(4, 1, 2, 2), labels, 2, seed=3)
    assert torch.equal(weights, again)
    assert weights[labels == 0].mean().item() == pytest.approx(1.0)
    assert not torch.equal(weights, torch.ones(4))


def test_installed_plugin_shows_in_the_cli(installed_example):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_example), os.environ.get("PYTHONPATH", "")])}
    listing = subprocess.run([sys.executable, "-m", "reference_methods.cli", "weighters"],
                             capture_output=True, text=True, env=env, check=True)
    assert "jitter" in listing.stdout
    assert "Random weights in [1 - spread, 1 + spread]" in listing.stdout
    plugins = subprocess.run([sys.executable, "-m", "reference_methods.cli", "plugins"],
                             capture_output=True, text=True, env=env, check=True)
    assert '"distribution": "dd-example-weighter"' in plugins.stdout
