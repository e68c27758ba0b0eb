"""Every `dd-distill run` / `dd-distill weigh` command and every config example in the docs resolves.

The docs are where researchers copy commands from (docs/results.md alone holds ~200), so a renamed
key, a stale config name or a shell-quoting slip must fail here, not in their terminal. bash itself
expands each block (variables, loops, quotes) with `dd-distill` replaced by a function that prints
its arguments; each argument list then goes through the CLI's parser and config resolution, which
builds no data and runs nothing. Commands quoted inline in prose go through the same resolution,
except the shorthand ones that name a shell variable or an upper-case stand-in (`CONFIG`, `LR`).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import dd_plugins
from reference_methods.cli import build_parser
from reference_methods.config import ConfigError, RawConfig, load_raw, parse_overrides, resolve
from reference_methods.grid import expand_grid, grid_axes, parse_shard
from reference_methods.launchers import split_overrides

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = Path(__file__).parent / "example_plugin"
# What the docs write for "fill in your own": a value that makes the command runnable.
PLACEHOLDERS = {"<writable copy of shared/data>": "/tmp/data", "<data root>": "/tmp/data", "<w>": "kde",
                "<weighter>": "kde", "WEIGHTER": "kde", "<r>": "0.05", "<s>": "0", "<d>": "cmnist_fg",
                "<weighter flags>": "--set weighter.name=kde"}
OPTIONAL_FLAG = re.compile(r"\[(--[^\]]*)\]")  # "[--set method.init=weighted]": run it with the flag
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)
# Lines bash needs to reproduce a command: assignments, loop headers and the commands themselves.
NEEDED = re.compile(r"^\s*(?:[A-Za-z_]\w*=(?:\"[^\"]*\"|'[^']*'|\S*)\s*(?:#.*)?$"  # NAME=value
                    r"|for \S+ in .*; do|done\b|.*\bdd-distill (?:run|weigh)\b)")
FENCED_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_COMMAND = re.compile(r"`dd-distill ((?:run|weigh) [^`]*)`")
SHORTHAND = re.compile(r"\$|\.\.\.|\b[A-Z]{2,}\b")  # stands for something the prose defines elsewhere
SHIM = "dd-distill() { printf '%s\\037' \"$@\"; printf '\\036'; }\n"
USERS_OWN_FILES = {"my_grid.toml"}  # configs the docs ask the reader to write


def logical_lines(block: str) -> list[str]:
    lines, pending = [], ""
    for line in block.split("\n"):
        if line.rstrip().endswith("\\") and not line.lstrip().startswith("#"):
            pending += line.rstrip()[:-1] + " "
        else:
            lines.append(pending + line)
            pending = ""
    return lines


def fill_placeholders(text: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return OPTIONAL_FLAG.sub(r"\1", text)


def command_script(block: str) -> str:
    kept = []
    for line in logical_lines(fill_placeholders(block)):
        if NEEDED.match(line):
            kept.append(line[line.index("dd-distill"):] if " && " in line and "dd-distill" in line else line)
    return "\n".join(kept)


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def where(path: Path, text: str, match: re.Match) -> str:
    """file:line of a fenced block or inline command, for the failure message."""
    return f"{path.name}:{text[:match.start()].count(chr(10)) + 1}"


def resolve_config_or_grid(raw: RawConfig, overrides: dict) -> None:
    """What `dd-distill run` resolves before it runs anything: one config, or every cell of a grid."""
    if grid_axes(raw, overrides):
        expand_grid(raw, overrides)
    else:
        resolve(raw, overrides)


def doc_commands() -> list[tuple[str, list[str]]]:
    """(file:line of the block, argv) for every dd-distill run/weigh command in README.md and docs/."""
    found = []
    for path in doc_pages():
        text = path.read_text()
        for block in BASH_BLOCK.finditer(text):
            script = command_script(block.group(1))
            if "dd-distill" not in script:
                continue
            block_at = where(path, text, block)
            shell = subprocess.run([shutil.which("bash"), "-c", SHIM + script], capture_output=True, text=True,
                                   check=True, env={"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "6"})
            assert not shell.stderr, f"{block_at}: bash says {shell.stderr}"
            found += [(block_at, call.split("\037")[:-1]) for call in shell.stdout.split("\036")[:-1]]
    return found


def inline_commands() -> list[tuple[str, list[str]]]:
    """(file:line, argv) for every complete dd-distill run/weigh command quoted in prose."""
    found = []
    for path in doc_pages():
        text = path.read_text()
        prose = FENCED_BLOCK.sub(lambda block: "\n" * block.group(0).count("\n"), text)
        for command in INLINE_COMMAND.finditer(prose):
            if not SHORTHAND.search(command.group(1)):
                found.append((where(path, prose, command), shlex.split(fill_placeholders(command.group(1)))))
    return found


def resolve_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    if args.config in USERS_OWN_FILES:
        return
    raw = load_raw(args.config)
    overrides = parse_overrides(args.set)
    if args.command == "run":
        overrides, _ = split_overrides(overrides)
        if args.shard:
            parse_shard(args.shard)
    resolve_config_or_grid(raw, overrides)


@pytest.fixture
def example_plugin_registered():
    """docs/writing_a_weighter.md runs its example weighter by name."""
    spec = importlib.util.spec_from_file_location("dd_example_weighter_for_docs",
                                                  EXAMPLE_PLUGIN / "dd_example_weighter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dd_plugins.reset_plugin_manager()
    if "jitter" not in dd_plugins.list_weighters():  # unless the example is pip-installed here
        dd_plugins.get_plugin_manager().register(module)
    yield
    dd_plugins.reset_plugin_manager()


def resolve_all(commands: list[tuple[str, list[str]]]) -> list[str]:
    problems = []
    for at, argv in commands:
        try:
            resolve_command(argv)
        except SystemExit:
            problems.append(f"{at}: dd-distill {' '.join(argv)}: the CLI rejects these arguments")
        except Exception as exc:  # every failure is reported together, each with the command it came from
            problems.append(f"{at}: dd-distill {' '.join(argv)}: {type(exc).__name__}: {exc}")
    return problems


def test_every_documented_command_resolves(example_plugin_registered):
    commands = doc_commands()
    assert any(at.startswith("README.md:") and argv == ["run", "quickstart"] for at, argv in commands)
    assert len(commands) > 150
    problems = resolve_all(commands)
    assert not problems, "\n".join(problems)


def test_every_inline_command_resolves():
    commands = inline_commands()
    assert any(at.startswith("README.md:") and argv == ["run", "quickstart", "--set", "weighter.name=kde"]
               for at, argv in commands)
    assert len(commands) > 20
    problems = resolve_all(commands)
    assert not problems, "\n".join(problems)


def test_every_documented_config_resolves(tmp_path):
    """Config examples may be fragments: a missing data or method name is filled in, nothing else."""
    checked, problems = 0, []
    for path in doc_pages():
        text = path.read_text()
        for number, block in enumerate(TOML_BLOCK.finditer(text)):
            if "[project" in block.group(1) or "[build-system]" in block.group(1):
                continue  # a plugin's pyproject.toml, not a config
            config = tmp_path / f"{path.stem}_{number}.toml"
            config.write_text(block.group(1))
            try:
                raw = load_raw(config)
                fill = {f"{section}.name": default for section, default in (("data", "cdigits"), ("method", "dm"))
                        if "name" not in raw.tables.get(section, {})}
                resolve_config_or_grid(raw, fill)
            except ConfigError as exc:
                problems.append(f"{where(path, text, block)}: {exc}")
            checked += 1
    assert checked >= 7
    assert not problems, "\n".join(problems)
