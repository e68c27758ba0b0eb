"""Does a real DM run pay for anything bench-speed leaves out? DM iterations/s, one setting at a time.

``python -m reference_methods.bench_dm_overhead --device cuda`` times DM at IPC 50 (published
settings) on bench-speed's random data, then on CMNIST (60 000 images) with uniform weights, with
kde-like weights (the weighted sampler), with checkpoints and with the progress bar. Each figure
is ``long`` iterations divided by the difference between a ``short + long`` and a ``short`` run,
so data transfer and start-up cancel out. Needs the MNIST files (``DD_DATA_ROOT``).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from dd_plugins import get_dataset_builder
from reference_methods.bench_speed import random_dataset, synchronise
from reference_methods.datasets.base import BiasedDataset
from reference_methods.methods.dm import DM


def iterations_per_second(data: BiasedDataset, weights: torch.Tensor, short: int, long: int,
                          device: torch.device, progress: bool = False, checkpoints: bool = False) -> float:
    """With ``checkpoints`` each run gets a fresh folder, so the long run does not resume the short one."""
    seconds = []
    for iterations in (short, short + long):
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            synchronise(device)
            start = time.perf_counter()
            DM(ipc=50, iterations=iterations).distill(data, weights, device=device, seed=0, progress=progress,
                                                      checkpoint_dir=checkpoint_dir if checkpoints else None)
            synchronise(device)
            seconds.append(time.perf_counter() - start)
    return long / max(seconds[1] - seconds[0], 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_methods.bench_dm_overhead",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--short", type=int, default=20, help="iterations of the short run")
    parser.add_argument("--long", type=int, default=300, help="iterations the long run adds")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    bench_data = random_dataset(10, 300, 3, 28)
    cmnist = get_dataset_builder("cmnist")(seed=0, conflict_ratio=0.05)
    kde_like = torch.rand(len(cmnist.train), generator=torch.Generator().manual_seed(0)) ** 4 + 1e-3
    uniform = torch.ones(len(cmnist.train))
    iterations_per_second(bench_data, torch.ones(len(bench_data.train)), 1, 10, device)  # warm-up
    settings = [
        ("bench-speed's data (random, 300 images per class), uniform weights", bench_data,
         torch.ones(len(bench_data.train)), {}),
        ("CMNIST 60 000 images, uniform weights", cmnist, uniform, {}),
        ("CMNIST, kde-like weights (weighted sampler)", cmnist, kde_like, {}),
        ("CMNIST, kde-like weights, checkpoint every 500 iterations", cmnist, kde_like, {"checkpoints": True}),
        ("CMNIST, kde-like weights, progress bar", cmnist, kde_like, {"progress": True}),
    ]
    for label, data, weights, kwargs in settings:
        rate = iterations_per_second(data, weights, args.short, args.long, device, **kwargs)
        print(f"{label}: {rate:.1f} iterations/s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
