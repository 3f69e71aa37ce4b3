"""Run discovery: finished training run folders, named or the newest ones, and the check
that runs compared together were trained on the same data."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

RUN_FILES = ("checkpoints/best.ckpt", "metrics.json", "config.yaml")
# data settings that change neither targets nor features: runs may differ in them
TRAINING_ONLY_KEYS = ("train_stride", "batch_size", "num_workers")
DEFAULTS = {"refit": False}  # data keys older runs did not write: the value they trained with
HOW_TO_TRAIN = ("`python train.py model=causal` and `python train.py model=standard` "
                "(several seeds: `python train.py -m model=causal,standard seed=0,1,2`)")


class RunError(ValueError):
    """No usable training runs, or runs that cannot be compared."""


@dataclass
class Run:
    """A finished training run folder and its resolved training config."""

    path: Path
    config: dict
    sweep: Path | None = None  # the multirun folder it belongs to, if any
    ckpt: Path | None = None  # a checkpoint named on the command line (default: best.ckpt)

    @property
    def name(self) -> str:
        return str(self.config["model"].get("name") or ("causal" if self.causal else "standard"))

    @property
    def causal(self) -> bool:
        return bool(self.config["model"]["causal"])

    @property
    def seed(self) -> int | None:
        return self.config.get("seed")

    @property
    def checkpoint(self) -> Path:
        return self.ckpt or self.path / "checkpoints" / "best.ckpt"

    @property
    def finished(self) -> float:
        return (self.path / "metrics.json").stat().st_mtime


def missing_files(path: Path) -> list[str]:
    return [f for f in RUN_FILES if not (path / f).is_file()]


def load_run(path: Path, sweep: Path | None = None) -> Run:
    config = yaml.safe_load((path / "config.yaml").read_text())  # written resolved by train.py
    if not isinstance(config, dict) or "model" not in config or "data" not in config:
        raise RunError(f"{path}/config.yaml: not a training config (no model/data section)")
    return Run(path=path, config=config, sweep=sweep)


def named_runs(names: list[str]) -> list[Run]:
    """Runs named on the command line: run folders, sweep folders holding runs, or
    checkpoints inside a run folder (``<run>/checkpoints/last.ckpt``)."""
    runs: list[Run] = []
    for name in names:
        path = Path(name)
        if path.is_file() and path.suffix == ".ckpt":
            run_dir = path.parent.parent
            if not (run_dir / "config.yaml").is_file():
                raise RunError(f"runs: {path}: no config.yaml in {run_dir}; name a checkpoint "
                               f"inside a training run folder, which {HOW_TO_TRAIN} create")
            runs.append(replace(load_run(run_dir), ckpt=path))
            continue
        if not path.is_dir():
            raise RunError(f"runs: {path} is not a folder; name training run folders, "
                           f"which {HOW_TO_TRAIN} create")
        if not missing_files(path):
            runs.append(load_run(path))
            continue
        children = sorted(d for d in path.iterdir() if d.is_dir() and not missing_files(d))
        if not children:
            raise RunError(f"runs: {path} is not a training run: it lacks "
                           f"{', '.join(missing_files(path))} (a finished `python train.py` "
                           "run folder holds them)")
        runs += [load_run(d, sweep=path) for d in children]
    return runs


def is_field_run(run: Run) -> bool:
    """A run on gridded data (``data=era5_uk`` or ``data=field``)."""
    return str(run.config["data"].get("_target_", "")).endswith("FieldDataModule")


def newest_runs(search: list[str], field: bool = False) -> list[Run]:
    """The newest finished causal and standard runs under ``search`` (a sweep: all seeds);
    ``field``: runs on gridded data instead of series."""
    found: list[Run] = []
    for root in map(Path, search):
        if not root.is_dir():
            continue
        for depth, pattern in ((1, "*"), (2, "*/*")):
            for d in sorted(root.glob(pattern)):
                if d.is_dir() and not missing_files(d):
                    found.append(load_run(d, sweep=d.parent if depth == 2 else None))
    found = [r for r in found if is_field_run(r) is field]
    if not found:
        raise RunError(
            f"no finished training runs under {', '.join(search)} (a run folder holds "
            f"{', '.join(RUN_FILES)}); create them with {HOW_TO_TRAIN}, or name run folders "
            "with `python evaluate.py runs=[DIR,DIR]`"
        )
    chosen: list[Run] = []
    for causal, word in ((True, "causal"), (False, "standard")):
        kind = [r for r in found if r.causal is causal]
        if not kind:
            log.warning("no finished %s run under %s; `python train.py model=%s` creates one",
                        word, ", ".join(search), word)
            continue
        newest = max(kind, key=lambda r: r.finished)
        if newest.sweep is None:
            chosen.append(newest)
        else:  # every seed of the same model in the same sweep
            chosen += [r for r in kind if r.sweep == newest.sweep
                       and r.config["model"] == newest.config["model"]]
    return chosen


def group_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs of the same model config (they differ only in seed) under one label."""
    groups: dict[str, list[Run]] = {}
    keys: dict[str, str] = {}
    for run in sorted(runs, key=lambda r: (not r.causal, r.name, r.seed or 0)):
        key = json.dumps(run.config["model"], sort_keys=True)
        label = keys.get(key)
        if label is None:
            label = run.name if run.name not in groups else f"{run.name} ({run.path.name})"
            keys[key] = label
            groups[label] = []
        if any(r.path.resolve() == run.path.resolve() for r in groups[label]):
            continue
        groups[label].append(run)
    return groups


def check_comparable(runs: list[Run]) -> None:
    """Refuse runs whose data settings differ in anything that changes targets or features
    (file, columns, repairs, splits, calendar, angular columns, span, horizon, ...)."""
    first = runs[0]
    for run in runs[1:]:
        a_cfg, b_cfg = first.config["data"], run.config["data"]
        for key in sorted(set(a_cfg) | set(b_cfg)):
            a, b = a_cfg.get(key, DEFAULTS.get(key)), b_cfg.get(key, DEFAULTS.get(key))
            if key not in TRAINING_ONLY_KEYS and a != b:
                raise RunError(f"runs {first.path} and {run.path} differ in data.{key} "
                               f"({a!r} vs {b!r}); compare runs trained on the same data")


def find_runs(names: list[str], search: list[str], field: bool = False) -> list[Run]:
    """The runs named on the command line, or else the newest ones under ``search``
    (``field``: the newest field runs)."""
    return named_runs(names) if names else newest_runs(search, field)
