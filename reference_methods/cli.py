"""The ``dd-distill`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from dd_plugins import DDPluginsError
from dd_plugins.manager import describe_plugins
from dd_plugins.registry import list_names


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
    p = sub.add_parser("datasets", help="list registered datasets with a one-line description")
    p.set_defaults(func=cmd_list, kind="dataset")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DDPluginsError as exc:
        print(f"dd-distill: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
