"""What the weighter benchmarks (bench_kde, bench_pseudo_labels) share: their command line, the
dataset at a conflict ratio, the parameter grid and how the result rows are printed and saved."""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import platform
import sys
from datetime import date

import torch

from dd_plugins.registry import get_dataset_builder


def parse_value(text: str):
    """A number or boolean when ``text`` reads as one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignments(items: list[str], sweep: bool) -> dict:
    """``key=value`` (or ``key=v1,v2`` for sweeps) pairs into a dict of values (or value lists)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected key=value, got '{item}'")
        values = [parse_value(v) for v in value.split(",")]
        out[key] = values if sweep else values[0]
    return out


def build_data(name: str, seed: int, conflict_ratio: float):
    """The dataset at ``conflict_ratio``: the LfF sets take it as is, FairDD's as bias_ratio = 1 - ratio."""
    builder = get_dataset_builder(name)
    params = inspect.signature(builder).parameters
    if "conflict_ratio" in params:
        return builder(seed=seed, conflict_ratio=conflict_ratio)
    if "bias_ratio" in params:
        return builder(seed=seed, bias_ratio=1.0 - conflict_ratio)
    raise SystemExit(f"dataset {name} takes neither conflict_ratio nor bias_ratio")


def weighter_bench_parser(prog: str, description: str, weighter: str, dataset: str,
                          conflict_ratios: list[float]) -> argparse.ArgumentParser:
    """The arguments every weighter benchmark takes; the caller adds ``--seed`` and its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--dataset", default=dataset, help="a registered dataset with bias labels (cmnist, bg_fmnist, "
                        "cdigits, cfmnist_fg, ...: FairDD's sets get bias_ratio = 1 - conflict ratio)")
    parser.add_argument("--conflict-ratio", type=float, nargs="+", default=conflict_ratios)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=f"fixed {weighter} parameter")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2", help=f"{weighter} parameter grid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    parser.add_argument("--json", help="write every row to this file")
    return parser


def parameter_grid(args: argparse.Namespace) -> list[dict]:
    """Every point of ``--sweep``'s grid, each with the ``--set`` values; sets the torch threads too."""
    if args.threads:
        torch.set_num_threads(args.threads)
    fixed = parse_assignments(args.set, sweep=False)
    sweep = parse_assignments(args.sweep, sweep=True)
    return [dict(fixed, **dict(zip(sweep, values))) for values in itertools.product(*sweep.values())]


def report_rows(rows: list[dict], table: str, args: argparse.Namespace, argv: list[str] | None) -> None:
    """Print the machine line and the markdown table; write the rows to ``--json`` if given."""
    print()
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"device {args.device}, {date.today().isoformat()}")
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv[1:] if argv is None else argv, "device": args.device,
                       "threads": torch.get_num_threads(), "date": date.today().isoformat(), "rows": rows}, f, indent=2)
