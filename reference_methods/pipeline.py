"""One experiment: data -> weights -> distillation -> evaluation, into a run folder that a re-run resumes.

The run folder holds ``config.json`` (the resolved config), ``weights.pt``, ``weight_stats.json``,
``weights.png``, ``synthetic.pt``, ``synthetic.png``, ``metrics.json``, ``timing.json`` and
``run.log``. Each step's output is written atomically when the step ends, so an interrupted run
loses at most the step in progress (and distillation resumes from its checkpoint). A run whose
``metrics.json`` exists is finished and is not run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dd_plugins import DDPluginsError, compute_weights
from dd_plugins.diagnostics import format_diagnostics, weight_diagnostics
from dd_plugins.registry import get_dataset_builder, get_method, get_trainer, get_weighter
from reference_methods import distributed
from reference_methods.config import EVAL_OWN_DEFAULTS, ConfigError, RunConfig, component_kwargs, trainer_kwargs
from reference_methods.datasets.base import BiasedDataset
from reference_methods.evaluate import evaluate_set, random_real_subset, save_synthetic
from reference_methods.io import atomic_torch_save, atomic_write_bytes, atomic_write_json
from reference_methods.pictures import save_synthetic_grid, save_weight_histogram
from reference_methods.seeds import derive_seed, generator
from reference_methods.trainers.base import TrainSchedule

RUN_FILES = ("config.json", "weights.pt", "weight_stats.json", "weights.png", "synthetic.pt", "synthetic.png",
             "metrics.json", "timing.json", "run.log")
CHECKPOINT_DIR = "checkpoint"
# Keys that may change between a run and its resumption without changing what it computes.
RESUMABLE_KEYS = ("out_dir", "cache_dir", "device")


class RunError(DDPluginsError):
    """A run folder that cannot be used: not writable, or holding another config's run."""


@dataclass
class RunResult:
    """What a run produced: its folder, its metrics, and whether it was already finished."""

    run_dir: Path
    metrics: dict[str, Any]
    finished_before: bool = False


class RunLog:
    """Lines to ``run.log`` (appended, so a crash loses at most the line being written) and to stdout."""

    def __init__(self, path: Path, echo: bool = True, prefix: str = "") -> None:
        self.path = path
        self.echo = echo
        self.prefix = prefix

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path, "a") as f:
            f.write(f"{stamp} {message}\n")
        if self.echo:
            print(f"{self.prefix}{message}", flush=True)


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device is '{name}' but CUDA is not available here; use run.device = \"auto\" or \"cpu\".")
    return device


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there, or say what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise RunError(f"cannot write to the output folder {folder} ({exc.strerror or exc}). Choose a writable "
                       "folder with --out DIR or run.out_dir, or fix its permissions.") from None


def comparable(config_dict: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without the keys that may change on resume."""
    out = json.loads(json.dumps(config_dict))
    for key in RESUMABLE_KEYS:
        out["run"].pop(key, None)
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, as ``key: old -> new``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, path + ".")
        elif a != b:
            out.append(f"{path}: {a!r} -> {b!r}")
    return out


def prepare_run_dir(config: RunConfig, run_dir: Path, force: bool) -> None:
    """Make ``run_dir`` ready: writable, cleared with ``force``, and holding this config (or none yet)."""
    ensure_writable(run_dir)
    if force:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    saved = run_dir / "config.json"
    if saved.exists():
        try:
            old = json.loads(saved.read_text())
        except json.JSONDecodeError:
            old = None
        if old is None or comparable(old) != comparable(config.to_dict()):
            changes = config_differences(comparable(old or {}), comparable(config.to_dict()))
            raise RunError(
                f"the run folder {run_dir} holds a run of another config ({'; '.join(changes[:5]) or 'unreadable'}). "
                "Re-run with --force to start over there, or choose another folder with --out."
            )
    atomic_write_json(config.to_dict(), saved)


def build_components(config: RunConfig) -> tuple[Any, Any, Any]:
    """Weighter, distiller and evaluation trainer from the config; a factory's ValueError names the section."""

    def make(section: str, factory, name: str, kwargs: dict[str, Any]):
        try:
            return factory(name, **kwargs)
        except ValueError as exc:
            if isinstance(exc, DDPluginsError):
                raise
            raise ConfigError(f"{section} '{name}': {exc}. Fix {section}.* in the config or the --set overrides.") from None

    weighter = make("weighter", get_weighter, config.weighter.name, component_kwargs("weighter", config))
    method = make("method", get_method, config.method.name, component_kwargs("method", config))
    trainer = make("eval.trainer", get_trainer, config.eval["trainer"], trainer_kwargs(config))
    return weighter, method, trainer


def build_data(config: RunConfig) -> BiasedDataset:
    """The dataset of ``[data]``, built with the run's data seed."""
    builder = get_dataset_builder(config.data.name)
    kwargs = component_kwargs("data", config)
    try:
        return builder(seed=derive_seed(config.seed, "data"), **kwargs)
    except ValueError as exc:
        if isinstance(exc, DDPluginsError):
            raise
        raise ConfigError(f"data '{config.data.name}': {exc}. Fix data.* in the config or the --set overrides.") from None


def cache_dir_for(config: RunConfig, default: Path) -> Path:
    """``run.cache_dir`` if set, else ``default`` (the grid's or the run's ``.cache`` folder)."""
    return Path(config.run["cache_dir"]) if config.run["cache_dir"] else default


class Timing:
    """Seconds per step, kept in ``timing.json`` so a resumed run still reports what each step took."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def record(self, step: str, seconds: float) -> None:
        self.seconds[step] = round(seconds, 3)
        atomic_write_json(self.seconds, self.path)


def weigh_step(config: RunConfig, data: BiasedDataset, weighter: Any, run_dir: Path, device: torch.device,
               cache_dir: Path, progress: bool, log: RunLog, timing: Timing) -> tuple[torch.Tensor, dict]:
    """Normalised weights and their diagnostics, from ``weights.pt`` when a previous attempt saved them."""
    weights_path, stats_path = run_dir / "weights.pt", run_dir / "weight_stats.json"
    if weights_path.exists() and stats_path.exists():
        weights = torch.load(weights_path, map_location="cpu", weights_only=True)["weights"]
        stats = json.loads(stats_path.read_text())
        log(f"weights: reused {weights_path}")
        return weights, stats
    log(f"weights: {config.weighter.name} on {len(data.train)} training samples")
    start = time.perf_counter()
    weights = compute_weights(
        weighter, config.weighter.name, data.train.images, data.train.labels, data.num_classes,
        bias_labels=data.train.bias_labels, device=device, seed=derive_seed(config.seed, "weighter"),
        cache_dir=cache_dir, progress=progress,
    )
    seconds = time.perf_counter() - start
    stats = weight_diagnostics(weights, data.train.labels, data.train.conflicting, data.num_classes,
                               bias_labels=data.train.bias_labels)
    stats["weighter"] = config.weighter.name
    stats["seconds"] = round(seconds, 3)
    atomic_torch_save({"weights": weights, "weighter": config.weighter.name}, weights_path)
    atomic_write_json(stats, stats_path)
    save_weight_histogram(weights, data.train.conflicting, run_dir / "weights.png",
                          title=f"{config.weighter.name} on {data.name}")
    timing.record("weights", seconds)
    log(f"weights: {seconds:.1f} s; {format_diagnostics(stats)}")
    return weights, stats


def shared_synthetic_path(config: RunConfig, cache_dir: Path) -> Path:
    """Where runs with the same data, weighter, method and seed (any ``[eval]``) share their synthetic set."""
    resolved = config.to_dict()
    identity = {k: resolved[k] for k in ("data", "weighter", "method")} | {"seed": config.seed}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / "synthetic" / f"{key}.pt"


def restore_shared_synthetic(config: RunConfig, run_dir: Path, cache_dir: Path, log: RunLog) -> None:
    """Copy the synthetic set of an earlier run that differed only in ``[eval]`` (e.g. another trainer)
    into ``run_dir``, so comparing evaluations does not distil the same set again. The copy carries
    this run's config (the folder stays self-describing) and the distilling run's as ``distilled_by``."""
    path, shared = run_dir / "synthetic.pt", shared_synthetic_path(config, cache_dir)
    if not path.exists() and shared.exists():
        saved = torch.load(shared, map_location="cpu", weights_only=False)
        atomic_torch_save({**saved, "config": config.to_dict(), "distilled_by": saved["config"]}, path)
        log(f"distill: reused the set shared in {shared}")


def share_synthetic(config: RunConfig, run_dir: Path, cache_dir: Path) -> None:
    """Offer this run's synthetic set to later runs with the same data, weighter, method and seed."""
    shared = shared_synthetic_path(config, cache_dir)
    if not shared.exists():
        atomic_write_bytes((run_dir / "synthetic.pt").read_bytes(), shared)


def distill_step(config: RunConfig, data: BiasedDataset, weights: torch.Tensor, method: Any, run_dir: Path,
                 device: torch.device, progress: bool, log: RunLog, timing: Timing) -> dict[str, Any]:
    """The synthetic set, saved as ``synthetic.pt`` (+ PNG); loaded from there when it exists."""
    path = run_dir / "synthetic.pt"
    if path.exists():
        log(f"distill: reused {path}")
        return torch.load(path, map_location="cpu", weights_only=False)
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    resumed = " (resuming from checkpoint)" if checkpoint_dir.exists() and any(checkpoint_dir.iterdir()) else ""
    log(f"distill: {config.method.name}, ipc {config.method.params.get('ipc')}{resumed}")
    start = time.perf_counter()
    syn = method.distill(data, weights, device=device, seed=derive_seed(config.seed, "distiller"),
                         progress=progress, checkpoint_dir=checkpoint_dir)
    seconds = time.perf_counter() - start
    save_synthetic(syn, path, config.to_dict())
    save_synthetic_grid(data.denormalise(syn.images.float()), syn.labels, data.num_classes,
                        run_dir / "synthetic.png", title=f"{config.method.name} + {config.weighter.name}")
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the finished set supersedes it
    timing.record("distill", seconds)
    log(f"distill: {seconds:.1f} s{resumed}")
    return torch.load(path, map_location="cpu", weights_only=False)


def schedule_for(config: RunConfig, epochs: int | None = None, lr: float | None = None) -> TrainSchedule:
    """The evaluation schedule of ``[eval]``, optionally with other epochs (the whole-train baseline) or lr."""
    fields = {f.name: config.eval[f.name] for f in dataclasses.fields(TrainSchedule)}
    if epochs is not None:
        fields["epochs"] = epochs
    if lr is not None:
        fields["lr"] = lr
    return TrainSchedule(**fields)


def evaluation_keywords(config: RunConfig) -> dict[str, Any]:
    """The ``[eval]`` keys that are keywords of ``evaluate_set``."""
    schedule_fields = {f.name for f in dataclasses.fields(TrainSchedule)}
    return {k: v for k, v in config.eval.items() if k not in schedule_fields and k not in EVAL_OWN_DEFAULTS}


def baseline_key(config: RunConfig, baseline: str) -> str:
    """Fingerprint of everything a baseline depends on (not the weighter, not the method beyond ipc)."""
    identity = {"baseline": baseline, "data": config.to_dict()["data"], "eval": config.eval, "seed": config.seed,
                "ipc": config.method.params.get("ipc") if baseline == "random_real" else None}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def baselines_step(config: RunConfig, data: BiasedDataset, trainer: Any, device: torch.device, cache_dir: Path,
                   progress: bool, log: RunLog) -> dict[str, Any]:
    """Metrics of the baselines named in ``eval.baselines``, shared through ``cache_dir`` by every run
    that has the same data, evaluation, seed (and IPC, for the random subset)."""
    results = {}
    for baseline in config.eval["baselines"]:
        cached = cache_dir / "baselines" / f"{baseline}-{baseline_key(config, baseline)}.json"
        if cached.exists():
            results[baseline] = json.loads(cached.read_text())
            log(f"baseline {baseline}: reused {cached}")
            continue
        seed = derive_seed(config.seed, f"baselines/{baseline}")
        if baseline == "random_real":
            subset = random_real_subset(data.train, config.method.params["ipc"], generator(seed))
            images, labels, schedule = subset.images, subset.labels, schedule_for(config)
        else:
            images, labels = data.train.images, data.train.labels
            schedule = schedule_for(config, epochs=config.eval["whole_train_epochs"], lr=config.eval["whole_train_lr"])
        log(f"baseline {baseline}: training {config.eval['num_eval']} nets on {labels.shape[0]} images")
        start = time.perf_counter()
        metrics = evaluate_set(images, labels, data, trainer=trainer, schedule=schedule, device=device,
                               seed=derive_seed(seed, "eval"), progress=progress, **evaluation_keywords(config))
        metrics["seconds"] = round(time.perf_counter() - start, 3)
        atomic_write_json(metrics, cached)
        results[baseline] = metrics
        log(f"baseline {baseline}: {summary_line(metrics)}")
    return results


def summary_line(metrics: dict[str, Any]) -> str:
    """Accuracy, conflicting accuracy, worst group and the weakest (class, bias) group as one log line."""
    parts = []
    for key, label in (("acc", "acc"), ("conflicting_acc", "conflicting"), ("worst_group", "worst group")):
        if key in metrics:
            parts.append(f"{label} {metrics[key]['mean']:.1f} ± {metrics[key]['std']:.1f}")
    if metrics.get("groups"):
        weakest = min(metrics["groups"], key=lambda g: g["mean"])
        parts.append(f"weakest group: class {weakest['class']}, bias {weakest['bias']} ({weakest['mean']:.1f})")
    return ", ".join(parts)


def run_experiment(config: RunConfig, run_dir: Path, *, force: bool = False, progress: bool = True,
                   echo: bool = True, cache_dir: Path | None = None, log_prefix: str = "") -> RunResult:
    """Run one experiment into ``run_dir``: resume what an earlier attempt left, skip it if finished.

    ``cache_dir`` (default ``run_dir/.cache``, overridden by ``run.cache_dir``) holds what runs may
    share: weighter caches and baseline metrics. Under torchrun rank 0 does all of this; the other
    ranks only join the distillation (``follow_distillation``).
    """
    run_dir = Path(run_dir)
    if not distributed.is_main():
        return follow_distillation(config, run_dir)
    prepare_run_dir(config, run_dir, force)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        distributed.broadcast_object(None)  # other torchrun ranks: nothing to distil
        return RunResult(run_dir, json.loads(metrics_path.read_text()), finished_before=True)
    log = RunLog(run_dir / "run.log", echo=echo, prefix=log_prefix)
    timing = Timing(run_dir / "timing.json")
    cache = cache_dir_for(config, cache_dir or run_dir / ".cache")
    device = resolve_device(config.run["device"])
    weighter, method, trainer = build_components(config)
    log(f"run {config.name} (seed {config.seed}) on {device} into {run_dir}")

    data = build_data(config)
    log(f"data: {data.name}, {len(data.train)} train / {len(data.test)} test images, {data.num_classes} classes")
    weights, stats = weigh_step(config, data, weighter, run_dir, device, cache, progress, log, timing)
    restore_shared_synthetic(config, run_dir, cache, log)
    distributed.broadcast_object(None if (run_dir / "synthetic.pt").exists() else weights)  # weighed once, here
    syn = distill_step(config, data, weights, method, run_dir, device, progress, log, timing)
    share_synthetic(config, run_dir, cache)

    learned_lr = syn["extras"].get("syn_lr") if config.eval["learned_lr"] else None
    schedule = schedule_for(config, lr=float(learned_lr) if learned_lr is not None else None)
    log(f"evaluate: {config.eval['num_eval']} nets, {schedule.epochs} epochs, lr {schedule.lr:.4g}"
        f"{' (learned by the method)' if learned_lr is not None else ''}, trainer {config.eval['trainer']}")
    start = time.perf_counter()
    synthetic_metrics = evaluate_set(syn["images"], syn["labels"], data, trainer=trainer, schedule=schedule,
                                     device=device, seed=derive_seed(config.seed, "eval"), progress=progress,
                                     **evaluation_keywords(config))
    timing.record("eval", time.perf_counter() - start)
    log(f"synthetic set: {summary_line(synthetic_metrics)}")
    baselines = baselines_step(config, data, trainer, device, cache, progress, log)

    metrics = {
        "synthetic": synthetic_metrics,
        "baselines": baselines,
        "weights": {k: stats[k] for k in ("count_share", "weight_share", "auc", "bias_only_acc") if k in stats},
        "time": dict(timing.seconds),
    }
    atomic_write_json(metrics, metrics_path)
    log(f"done: {metrics_path}")
    return RunResult(run_dir, metrics)


def follow_distillation(config: RunConfig, run_dir: Path) -> RunResult:
    """A torchrun rank other than 0: distil its share of the classes with the weights rank 0 sends.

    Rank 0 prepares the folder, weighs, evaluates and writes every file; this rank writes nothing
    and returns no metrics. When rank 0 has nothing to distil (finished run, saved set) it returns at once.
    """
    weights = distributed.broadcast_object(None)
    if weights is not None:
        _, method, _ = build_components(config)
        method.distill(build_data(config), weights, device=resolve_device(config.run["device"]),
                       seed=derive_seed(config.seed, "distiller"), progress=False,
                       checkpoint_dir=Path(run_dir) / CHECKPOINT_DIR)
    return RunResult(Path(run_dir), {})


def run_weighing(config: RunConfig, run_dir: Path, *, force: bool = False, progress: bool = True,
                 echo: bool = True, cache_dir: Path | None = None) -> dict[str, Any]:
    """Only the weighter step into ``run_dir`` (a later ``run`` of the same config reuses it); returns the stats."""
    run_dir = Path(run_dir)
    prepare_run_dir(config, run_dir, force)
    log = RunLog(run_dir / "run.log", echo=echo)
    device = resolve_device(config.run["device"])
    weighter, _, _ = build_components(config)
    data = build_data(config)
    cache = cache_dir_for(config, cache_dir or run_dir / ".cache")
    _, stats = weigh_step(config, data, weighter, run_dir, device, cache, progress, log, Timing(run_dir / "timing.json"))
    return stats
