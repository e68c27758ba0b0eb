"""The ``dd-distill`` command line."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dd_plugins import DDPluginsError
from dd_plugins.manager import describe_plugins
from dd_plugins.registry import list_names

if TYPE_CHECKING:
    from reference_methods.config import RawConfig


def _print_names(kind: str) -> int:
    names = list_names(kind)
    width = max((len(n) for n in names), default=0)
    for name, description in names.items():
        print(f"{name.ljust(width)}  {description}".rstrip())
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    print(json.dumps(describe_plugins(), indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    return _print_names(args.kind)


def cmd_datasets(args: argparse.Namespace) -> int:
    if not args.show:
        return _print_names("dataset")
    from pathlib import Path

    from dd_plugins.registry import create
    from reference_methods.datasets.show import format_stats, parse_assignments, save_examples

    dataset = create("dataset", args.show, **parse_assignments(args.set))
    print(format_stats(dataset))
    print(f"\nexamples: {save_examples(dataset, Path(args.out or f'{args.show}_examples.png'))}")
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from reference_methods.bench_speed import main as bench_speed_main  # torch-heavy; only when asked

    return bench_speed_main(args.bench_args)


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars unless --quiet; into a log file they redraw once a minute (dd_plugins.progress)."""
    return not args.quiet


def _print_report(folder: Path, compare: str | None = None) -> None:
    from reference_methods.report import write_report

    markdown, paths = write_report([folder], folder, compare=compare)
    print()
    print(markdown, end="")
    print(f"\nReport: {paths[0]}, {paths[1]}, {paths[2]}")


def _grid_about(description: str, overrides: dict) -> str:
    """The grid file's description plus the --set values, which may change what that description says."""
    parts = [description] if description else []
    if overrides:
        shown = (f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in overrides.items())
        parts.append("--set " + ", ".join(shown))
    return f" ({'; '.join(parts)})" if parts else ""


def cmd_run(args: argparse.Namespace) -> int:
    from reference_methods import distributed
    from reference_methods.config import ConfigError, load_raw, parse_overrides
    from reference_methods.grid import parse_shard
    from reference_methods.launchers import run_submitit, split_overrides

    raw = load_raw(args.config)
    overrides, launcher_overrides = split_overrides(parse_overrides(args.set))
    shard = parse_shard(args.shard) if args.shard else None
    if args.launcher == "submitit":
        if shard or args.jobs > 1:
            raise ConfigError("--shard and --jobs split a grid on this machine; with --launcher submitit the job "
                              "array does that: set launcher.array_parallelism instead.")
        return run_submitit(args.config, raw, overrides, launcher_overrides, out=args.out,
                            only_failed=args.only_failed, force=args.force)
    joined_here = distributed.launched_by_torchrun() and not distributed.is_distributed()
    if joined_here:
        distributed.init_from_env()
    try:
        return _run_config_or_grid(args, raw, overrides, shard)
    finally:
        if joined_here:  # torch asks each process to leave its group before exit, not during interpreter teardown
            distributed.shutdown()


def _run_config_or_grid(args: argparse.Namespace, raw: RawConfig, overrides: dict,
                        shard: tuple[int, int] | None) -> int:
    """``dd-distill run`` after launcher routing: one run (on every torchrun rank) or a grid here."""
    from reference_methods import distributed
    from reference_methods.config import ConfigError, resolve
    from reference_methods.grid import CACHE_DIR, expand_grid, grid_axes, grid_cell_folder, grid_summary, run_grid
    from reference_methods.launchers import grid_status
    from reference_methods.pipeline import run_experiment

    if not grid_axes(raw, overrides):
        config = resolve(raw, overrides)
        out_dir = Path(args.out) if args.out else Path(config.run["out_dir"]) / raw.name
        cell_dir = grid_cell_folder(out_dir, raw, config)  # one cell of the grid already in out_dir
        run_dir = cell_dir or out_dir
        result = run_experiment(config, run_dir, force=args.force, progress=_progress(args) and distributed.is_main(),
                                echo=not args.quiet, cache_dir=out_dir / CACHE_DIR if cell_dir else None)
        if not distributed.is_main():  # rank 0 reports
            return 0
        if result.finished_before:
            print(f"{run_dir} holds a finished run of this config; use --force to run it again.")
        _print_report(out_dir, args.compare)
        return 0
    if distributed.is_distributed():
        raise ConfigError("torchrun runs one config, not a grid: fix the grid's axes with --set KEY=VALUE, or run "
                          "the cells with --jobs N here or --launcher submitit on a cluster.")
    cells = expand_grid(raw, overrides)
    grid_dir = Path(args.out) if args.out else Path(cells[0].config.run["out_dir"]) / raw.name
    about = _grid_about(raw.description, overrides)
    print(f"grid {raw.name}{about}: {len(cells)} cells into {grid_dir}" + (f", shard {args.shard}" if shard else ""))
    if args.only_failed and grid_dir.is_dir():
        grid_status(grid_dir)  # records cells whose submitit job died as failed, so they are retried too
    outcomes = run_grid(raw, cells, grid_dir, overrides=overrides, jobs=args.jobs, shard=shard, force=args.force,
                        progress=_progress(args) and args.jobs <= 1, only_failed=args.only_failed,
                        echo=not args.quiet)
    print(grid_summary(outcomes))
    if any(o.status != "failed" for o in outcomes):
        _print_report(grid_dir, args.compare)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def cmd_weigh(args: argparse.Namespace) -> int:
    from dd_plugins.diagnostics import format_diagnostics
    from reference_methods.config import load_raw, parse_overrides, resolve
    from reference_methods.grid import CACHE_DIR, expand_grid, grid_axes
    from reference_methods.pipeline import run_weighing

    raw = load_raw(args.config)
    overrides = parse_overrides(args.set)
    if not grid_axes(raw, overrides):
        config = resolve(raw, overrides)
        run_dir = Path(args.out) if args.out else Path(config.run["out_dir"]) / raw.name
        jobs = [(config, run_dir, run_dir / ".cache")]
    else:
        cells = expand_grid(raw, overrides)
        grid_dir = Path(args.out) if args.out else Path(cells[0].config.run["out_dir"]) / raw.name
        seen, jobs = set(), []
        for cell in cells:  # one weighing per distinct (data, weighter, seed); other axes reuse it
            key = json.dumps([cell.config.to_dict()[s] for s in ("data", "weighter")] + [cell.config.seed])
            if key not in seen:
                seen.add(key)
                jobs.append((cell.config, grid_dir / cell.name, grid_dir / CACHE_DIR))
    for config, run_dir, cache_dir in jobs:
        stats = run_weighing(config, run_dir, force=args.force, progress=_progress(args), echo=not args.quiet,
                             cache_dir=cache_dir)
        print(f"{config.weighter.name} on {config.data.name} (seed {config.seed}): {format_diagnostics(stats)}; "
              f"histogram {run_dir / 'weights.png'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from reference_methods.launchers import format_status, grid_status

    print(format_status(grid_status(Path(args.folder))))
    return 0


def _report_dir(folders: list[Path], out: str | None) -> Path:
    """One folder keeps its report inside; several go to ./report, so no folder's own report is replaced."""
    if out:
        return Path(out)
    return folders[0] if len(folders) == 1 else Path("report")


def cmd_report(args: argparse.Namespace) -> int:
    from reference_methods.report import write_report

    folders = [Path(f) for f in args.folders]
    markdown, paths = write_report(folders, _report_dir(folders, args.out), compare=args.compare, groups=args.groups)
    print(markdown, end="")
    print(f"\nReport: {paths[0]}, {paths[1]}, {paths[2]}")
    return 0


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a shipped config name (e.g. quickstart, bench/cmnist_ipc) or a TOML file")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (TOML syntax; bare words are strings); repeatable")
    p.add_argument("--out", metavar="DIR", help="run (or grid) folder; default run.out_dir/<config name>")
    p.add_argument("--force", action="store_true", help="start over instead of resuming what the folder holds")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no log lines on the console")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dd-distill",
        description="Dataset distillation with sample-weighting plugins against bias amplification.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed plugins as JSON (name, version, hooks)")
    p.set_defaults(func=cmd_plugins)
    for kind, plural in (("weighter", "weighters"), ("method", "methods"), ("trainer", "trainers")):
        p = sub.add_parser(plural, help=f"list registered {plural} with a one-line description")
        p.set_defaults(func=cmd_list, kind=kind)
    p = sub.add_parser("datasets", help="list registered datasets, or --show one (statistics and a PNG of examples)")
    p.add_argument("--show", metavar="NAME", help="build dataset NAME, print per-class aligned/conflicting counts, save examples")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="dataset parameter for --show (repeatable)")
    p.add_argument("--out", metavar="PNG", help="where --show saves the examples (default: NAME_examples.png)")
    p.set_defaults(func=cmd_datasets)
    sub.add_parser("bench-speed", add_help=False,
                   help="time iterations/s of each method and DM's one-pass embedding (see bench-speed --help)")

    p = sub.add_parser("run", help="weigh, distil and evaluate one config or every cell of its [grid]")
    _add_config_arguments(p)
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="grid cells run in N parallel processes")
    p.add_argument("--shard", metavar="I/N", help="run only grid cells I, I+N, I+2N, ... (0 <= I < N)")
    p.add_argument("--compare", choices=["weighter"], help="add the gain of each row over the uniform weighter")
    p.add_argument("--launcher", choices=["local", "submitit"], default="local",
                   help="local: run here (default); submitit: submit the cells as a SLURM job array ([launcher] table)")
    p.add_argument("--only-failed", action="store_true", help="run (or submit) only the grid cells that failed")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("weigh", help="only the weighter step, with diagnostics and a weight histogram")
    _add_config_arguments(p)
    p.set_defaults(func=cmd_weigh)
    p = sub.add_parser("status", help="one line per unfinished cell of a grid folder, then done/running/failed/pending")
    p.add_argument("folder", metavar="DIR", help="a grid (or run) folder written by dd-distill run")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("report", help="gather run folders into Markdown/CSV tables and a PNG chart")
    p.add_argument("folders", nargs="+", metavar="DIR", help="run or grid folders (searched recursively)")
    p.add_argument("--out", metavar="DIR",
                   help="where report.md/.csv/.png go; default DIR itself for one folder, ./report for several")
    p.add_argument("--compare", choices=["weighter"], help="add the gain of each row over the uniform weighter")
    p.add_argument("--groups", type=int, default=0, metavar="K",
                   help="also list each row's K weakest (class, bias value) test groups")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench-speed"]:  # its own parser takes every option, --help included
        args = argparse.Namespace(func=cmd_bench_speed, bench_args=argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DDPluginsError as exc:
        print(f"dd-distill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dd-distill: interrupted. Finished steps are saved; re-run the same command to resume "
              "(distillation continues from its last checkpoint).", file=sys.stderr)
        return 130
    except OSError as exc:
        what = f" {exc.filename}" if exc.filename else ""
        advice = ("The disk is full: free space" if exc.errno == errno.ENOSPC
                  else "Check the path and its permissions")
        print(f"dd-distill: error: could not read or write{what} ({exc.strerror or exc}). {advice}, then re-run "
              "the same command: results already written are kept and the run resumes.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
