"""Speed benchmark (not a test): distillation iterations per second, DM's one-pass embedding vs a
per-class loop, and the evaluation's seconds per epoch.

``dd-distill bench-speed [--device cuda] [--ipc 50] [--methods dm,dsa,mtt] [--json out.json]``

Data are random tensors of CMNIST's shape (10 classes, 3x28x28; speed does not depend on pixel
values). Every method runs with its own defaults (the published settings) at the given IPC.
Iterations per second is (k_long - k_short) / (t_long - t_short) of two ``distill`` calls with the
same seed, which cancels the one-off setup (data to device, init, MTT's expert buffer, trained
once into a temporary folder with 1 expert of 2 epochs: expert length does not change the cost of
a matching iteration). The DM comparison times the loss, backward and image step of one
iteration with the same net and batches (median over alternating steps): ``class_embedding_loss`` (all classes in one pass) vs
``class_embedding_loss_per_class`` (VICO's loop of two passes per class). The evaluation figure
is (t_long - t_short) / (epochs_long - epochs_short) of the erm trainer at the protocol's settings
(ConvNet-3 width 128, DSA, batch 256) on an IPC-sized set, one net; with DM's time it says
how long one cell of the paper preset takes (20 000 DM iterations, 5 nets x 1000 epochs).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import date

import torch

from dd_plugins.registry import get_method, get_trainer, list_methods
from reference_methods.augment import DSAugment
from reference_methods.datasets.base import BiasedDataset, BiasedSplit
from reference_methods.evaluate import random_real_subset
from reference_methods.methods.dm import class_embedding_loss, class_embedding_loss_per_class
from reference_methods.nets import ConvNet
from reference_methods.trainers.base import TrainSchedule

DM_PAPER_ITERATIONS = 20000
PAPER_EVAL_EPOCHS, PAPER_NUM_EVAL = 1000, 5
# Per-method overrides that only shorten one-off work outside the timed iterations.
SETUP_OVERRIDES = {"mtt": {"num_experts": 1, "expert_train_epochs": 2, "max_start_epoch": 1}}


def random_dataset(num_classes: int, per_class: int, channels: int, size: int) -> BiasedDataset:
    """Random images of the given shape, ``per_class`` per class, bias labels all aligned."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    split = BiasedSplit(torch.randn(labels.numel(), channels, size, size, generator=g), labels, labels.clone(),
                        torch.arange(num_classes))
    return BiasedDataset("bench", split, split, num_classes, num_classes, (0.0,) * channels, (1.0,) * channels,
                         flip=False)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def iterations_per_second(name: str, data: BiasedDataset, ipc: int, short: int, long: int,
                          device: torch.device) -> float:
    """Iterations/s of method ``name`` at its defaults and ``ipc``, setup cancelled by two run lengths."""
    weights = torch.ones(len(data.train))
    seconds = []
    with tempfile.TemporaryDirectory() as buffer_dir:
        overrides = dict(SETUP_OVERRIDES.get(name, {}))
        if name == "mtt":
            overrides["buffer_dir"] = buffer_dir
        for iterations in (short, long):
            method = get_method(name, ipc=ipc, iterations=iterations, **overrides)
            synchronise(device)
            start = time.perf_counter()
            method.distill(data, weights, device=device, seed=0)
            synchronise(device)
            seconds.append(time.perf_counter() - start)
    return (long - short) / max(seconds[1] - seconds[0], 1e-9)


def evaluation_seconds_per_epoch(data: BiasedDataset, ipc: int, short: int, long: int, device: torch.device) -> float:
    """Seconds per epoch of one erm net on ``ipc`` images per class at the protocol's settings."""
    subset = random_real_subset(data.train, ipc, torch.Generator().manual_seed(0))
    augmenter, g = DSAugment(flip=data.flip), torch.Generator().manual_seed(0)
    seconds = []
    for epochs in (short, long):
        synchronise(device)
        start = time.perf_counter()
        get_trainer("erm").fit(lambda: ConvNet(data.channels, data.num_classes, data.im_size), subset.images, subset.labels,
                               schedule=TrainSchedule(epochs=epochs), augment=lambda x: augmenter(x, g),
                               device=device, generator=g)
        synchronise(device)
        seconds.append(time.perf_counter() - start)
    return max(seconds[1] - seconds[0], 1e-9) / (long - short)


def dm_embedding_seconds(data: BiasedDataset, ipc: int, batch_real: int, repeats: int,
                         device: torch.device) -> dict[str, float]:
    """Median seconds per DM step (loss, backward, image update): one pass vs the per-class loop.

    The two variants alternate step by step, so drifting load on a shared machine hits both alike.
    """
    k = data.num_classes
    g = torch.Generator().manual_seed(0)
    net = ConvNet(data.channels, k, data.im_size).to(device).requires_grad_(False)
    real = torch.randn(k * batch_real, data.channels, *data.im_size, generator=g).to(device)
    coefficients = torch.full((k, batch_real), 1.0 / batch_real, device=device)
    syn = torch.randn(k * ipc, data.channels, *data.im_size, generator=g).to(device).requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=1.0, momentum=0.5)
    variants = {"one_pass": class_embedding_loss, "per_class": class_embedding_loss_per_class}
    times: dict[str, list[float]] = {label: [] for label in variants}
    for step in range(repeats + 1):  # step 0 warms up kernels and the allocator
        for label, loss_fn in variants.items():
            synchronise(device)
            start = time.perf_counter()
            loss = loss_fn(net, real, coefficients, syn)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            synchronise(device)
            if step > 0:
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dd-distill bench-speed", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--ipc", type=int, default=50, help="images per class (default 50, the CMNIST headline)")
    parser.add_argument("--methods", default="", help="comma-separated method names (default: every registered one)")
    parser.add_argument("--per-class", type=int, default=300, help="random real images per class")
    parser.add_argument("--short", type=int, default=1, help="iterations of the short run")
    parser.add_argument("--long", type=int, default=3, help="iterations of the long run")
    parser.add_argument("--dm-repeats", type=int, default=5, help="timed steps per DM embedding variant")
    parser.add_argument("--eval-short", type=int, default=2, help="evaluation epochs of the short run")
    parser.add_argument("--eval-long", type=int, default=12, help="evaluation epochs of the long run")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--json", default="", help="also write the results as JSON to this path")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    data = random_dataset(10, args.per_class, 3, 28)
    names = [n for n in args.methods.split(",") if n] or list(list_methods())
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    results: dict = {"date": date.today().isoformat(), "device": device_name, "torch": torch.__version__,
                     "ipc": args.ipc, "methods": {}}
    print(f"device: {device_name}; data: 10 classes x {args.per_class} random 3x28x28 images; ipc {args.ipc}")

    dm = dm_embedding_seconds(data, args.ipc, min(256, args.per_class), args.dm_repeats, device)
    results["dm_embedding"] = {**dm, "speedup": dm["per_class"] / dm["one_pass"]}
    print(f"DM step, one pass: {dm['one_pass'] * 1e3:.1f} ms; per-class loop: {dm['per_class'] * 1e3:.1f} ms; "
          f"speed-up x{dm['per_class'] / dm['one_pass']:.2f}")

    for name in names:
        rate = iterations_per_second(name, data, args.ipc, args.short, args.long, device)
        results["methods"][name] = {"iterations_per_s": rate}
        line = f"{name}: {rate:.3g} iterations/s"
        if name == "dm":
            results["methods"][name]["paper_run_s"] = DM_PAPER_ITERATIONS / rate
            line += f"; {DM_PAPER_ITERATIONS} iterations ~ {DM_PAPER_ITERATIONS / rate / 60:.1f} min"
        print(line, flush=True)

    per_epoch = evaluation_seconds_per_epoch(data, args.ipc, args.eval_short, args.eval_long, device)
    paper_eval_s = per_epoch * PAPER_EVAL_EPOCHS * PAPER_NUM_EVAL
    results["evaluation"] = {"seconds_per_epoch": per_epoch, "paper_eval_s": paper_eval_s}
    print(f"evaluation (erm, width 128, DSA): {per_epoch * 1e3:.1f} ms/epoch; "
          f"{PAPER_NUM_EVAL} nets x {PAPER_EVAL_EPOCHS} epochs ~ {paper_eval_s / 60:.1f} min", flush=True)
    if "dm" in results["methods"]:
        cell_s = results["methods"]["dm"]["paper_run_s"] + paper_eval_s
        results["paper_dm_cell_s"] = cell_s
        print(f"one paper-preset DM cell (distillation + evaluation, no baselines) ~ {cell_s / 60:.1f} min")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0
