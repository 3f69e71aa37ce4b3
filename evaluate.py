"""Compare trained runs with baselines and show the leak: ``python evaluate.py``.

With no argument it takes the newest causal and the newest standard run (all seeds
of it, when it came from a multirun sweep); ``runs=[DIR,...]`` names them instead.
Every model and baseline is scored on the same test origins and targets.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from forecast import load_checkpoint
from forecast.audit import Audit, audit, expected_extents, influence
from forecast.baselines import Persistence
from forecast.data import ForecastDataModule
from forecast.evaluation import Forecasts, collect, forecast_origins, station_scores
from forecast.features import DataSpec, series_arrays
from forecast.files import atomic_write_bytes, atomic_write_text, write_json
from forecast.frame import DataError
from forecast.module import CheckpointError, ForecastModule
from forecast.report import (
    Curve,
    FieldPanel,
    LeakBar,
    fmt,
    forecast_week_figure,
    leak_bars_figure,
    mae_by_horizon_figure,
    markdown_table,
    png_bytes,
    receptive_field_figure,
)

log = logging.getLogger("evaluate")

RUN_FILES = ("checkpoints/best.ckpt", "metrics.json", "config.yaml")
# data settings that must agree for runs to be scored on the same targets
DATA_KEYS = ("path", "checksum", "time_column", "target", "covariates", "series_id", "freq",
             "time_format", "max_gap", "bounds", "splits", "fractions", "horizon")
HOW_TO_TRAIN = ("`python train.py model=causal` and `python train.py model=standard` "
                "(several seeds: `python train.py -m model=causal,standard seed=0,1,2`)")
FIGURES = {
    "forecast_week": "forecast_week.png",
    "mae_by_horizon": "mae_by_horizon.png",
    "leak": "teacher_forced_vs_honest.png",
    "receptive_field": "receptive_field.png",
}
# the README's two figures, copied by `python evaluate.py docs_dir=docs`
README_FIGURES = {"leak": "leak_teacher_forced_vs_honest.png",
                  "mae_by_horizon": "leak_mae_by_horizon.png"}


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
    config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=True)
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
    return str(run.config["data"].get("_target_", "")).endswith("FieldDataModule")


def newest_runs(search: list[str], field: bool = False) -> list[Run]:
    """The newest finished causal and standard runs under ``search`` (a sweep: all seeds);
    ``field``: runs on gridded data (``data=era5_uk|field``) instead of series."""
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
    """Refuse runs whose data settings differ: they would not share targets."""
    first = runs[0]
    for run in runs[1:]:
        for key in DATA_KEYS:
            a, b = first.config["data"].get(key), run.config["data"].get(key)
            if a != b:
                raise RunError(f"runs {first.path} and {run.path} differ in data.{key} "
                               f"({a!r} vs {b!r}); compare runs trained on the same data")


def same_targets(a: Forecasts, b: Forecasts) -> bool:
    return (a.target.shape == b.target.shape and np.array_equal(a.origin, b.origin)
            and np.allclose(a.target, b.target, atol=1e-3, equal_nan=True))


def stats(values: list[float]) -> dict:
    """Mean and spread across seeds (std is None for a single run)."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
            "min": float(v.min()), "max": float(v.max()), "n": len(v)}


def mean_lists(lists: list[list[float]]) -> list[float]:
    return np.mean(np.asarray(lists, dtype=float), axis=0).tolist()


def std_lists(lists: list[list[float]]) -> list[float] | None:
    return np.std(np.asarray(lists, dtype=float), axis=0, ddof=1).tolist() if len(lists) > 1 \
        else None


@dataclass
class ModelResult:
    """One trained run scored both ways and audited."""

    run: Run
    model: ForecastModule
    teacher_forced: Forecasts
    honest: Forecasts
    tf_scores: dict
    honest_scores: dict
    audit: Audit


def score_run(run: Run, model: ForecastModule, dm: ForecastDataModule, test: list[np.ndarray],
              reference: Forecasts, cfg: DictConfig) -> ModelResult:
    """Teacher-forced and honest forecasts on ``test`` origins, scores and the audit."""
    spec = DataSpec.from_dict(model.hparams.data_spec)
    arrays = series_arrays(dm.frame, spec)  # scaled with the checkpoint's own statistics
    tf = forecast_origins(model, arrays, test, spec, "teacher_forced", dm.span, cfg.batch_size)
    hon = forecast_origins(model, arrays, test, spec, "honest", dm.span, cfg.batch_size)
    for fc in (tf, hon):
        if not same_targets(fc, reference):
            raise RunError(f"{run.path}: its test targets differ from the baselines'; the "
                           "checkpoint's data spec does not match its config.yaml")
    r = model.receptive_field
    aud = audit(model, model.hparams.n_features, length=2 * r + 1, batch=cfg.audit_batch)
    log.info("%s: teacher-forced MAE %.3f, honest %.3f; audit past %d future %d (R=%d)",
             run.path, station_scores(tf, reference)["all"]["mae"],
             station_scores(hon, reference)["all"]["mae"], aud.past, aud.future, r)
    return ModelResult(run, model, tf, hon, station_scores(tf, reference),
                       station_scores(hon, reference), aud)


def model_entry(results: list[ModelResult]) -> dict:
    """metrics.json entry of one model: means over seeds, spreads, stations, audit."""
    first = results[0]
    hp = first.model.hparams
    tf = [r.tf_scores for r in results]
    hon = [r.honest_scores for r in results]
    past, future = expected_extents(first.model.receptive_field, bool(hp.causal))
    entry = {
        "kind": "model",
        "causal": bool(hp.causal),
        "receptive_field": first.model.receptive_field,
        "seeds": [r.run.seed for r in results],
        "runs": [str(r.run.path) for r in results],
        "teacher_forced_mae": stats([s["all"]["mae"] for s in tf])["mean"],
        "honest_mae": stats([s["all"]["mae"] for s in hon])["mean"],
        "honest_rmse": stats([s["all"]["rmse"] for s in hon])["mean"],
        "teacher_forced_rmse": stats([s["all"]["rmse"] for s in tf])["mean"],
        "mae_by_horizon": mean_lists([s["all"]["mae_by_horizon"] for s in hon]),
        "teacher_forced_mae_by_horizon": mean_lists([s["all"]["mae_by_horizon"] for s in tf]),
        "honest_rmse_by_horizon": mean_lists([s["all"]["rmse_by_horizon"] for s in hon]),
        "skill": stats([s["all"]["skill"] for s in hon])["mean"],
        "teacher_forced_skill": stats([s["all"]["skill"] for s in tf])["mean"],
        "spread": {
            "teacher_forced_mae": stats([s["all"]["mae"] for s in tf]),
            "honest_mae": stats([s["all"]["mae"] for s in hon]),
            "honest_rmse": stats([s["all"]["rmse"] for s in hon]),
            "mae_by_horizon_std": std_lists([s["all"]["mae_by_horizon"] for s in hon]),
        },
        "max_abs_diff_teacher_forced_vs_honest": max(
            float(np.nanmax(np.abs(r.teacher_forced.pred - r.honest.pred))) for r in results),
        "n_targets": hon[0]["all"]["n_targets"],
        "stations": {
            name: {
                "teacher_forced_mae": stats([s[name]["mae"] for s in tf])["mean"],
                "honest_mae": stats([s[name]["mae"] for s in hon])["mean"],
                "honest_mae_std": stats([s[name]["mae"] for s in hon])["std"],
                "honest_rmse": stats([s[name]["rmse"] for s in hon])["mean"],
                "skill": stats([s[name]["skill"] for s in hon])["mean"],
                "mae_by_horizon": mean_lists([s[name]["mae_by_horizon"] for s in hon]),
            }
            for name in hon[0] if name != "all"
        },
        "audit": {
            "receptive_field": first.model.receptive_field,
            "expected_past": past, "expected_future": future,
            "measured_past": max(r.audit.past for r in results),
            "measured_future": max(r.audit.future for r in results),
            "bounded": all(r.audit.bounded for r in results),
            "window": first.audit.length, "position": first.audit.position,
        },
        "per_run": [
            {"run": str(r.run.path), "seed": r.run.seed,
             "teacher_forced_mae": r.tf_scores["all"]["mae"],
             "honest_mae": r.honest_scores["all"]["mae"],
             "honest_rmse": r.honest_scores["all"]["rmse"],
             "measured_past": r.audit.past, "measured_future": r.audit.future}
            for r in results
        ],
    }
    entry["inflation"] = entry["honest_mae"] / entry["teacher_forced_mae"]
    return entry


def baseline_entry(scores: dict) -> dict:
    """A baseline reads nothing after the origin, so both protocols give the same score."""
    s = scores["all"]
    return {
        "kind": "baseline",
        "teacher_forced_mae": s["mae"], "honest_mae": s["mae"], "honest_rmse": s["rmse"],
        "mae_by_horizon": s["mae_by_horizon"], "honest_rmse_by_horizon": s["rmse_by_horizon"],
        "skill": s["skill"], "n_targets": s["n_targets"],
        "stations": {name: {"honest_mae": v["mae"], "honest_rmse": v["rmse"], "skill": v["skill"],
                            "mae_by_horizon": v["mae_by_horizon"]}
                     for name, v in scores.items() if name != "all"},
    }


def verdict(entries: dict, groups: dict[str, list[ModelResult]], units: str) -> str:
    """Two or three plain sentences: how good the leaky model looks, and how it really does."""
    causal = next((k for k, g in groups.items() if g[0].model.hparams.causal), None)
    standard = next((k for k, g in groups.items() if not g[0].model.hparams.causal), None)
    pers = entries["persistence"]["honest_mae"]
    lines = []
    if standard is not None:
        s = entries[standard]
        if causal is not None:
            c = entries[causal]
            ratio = c["teacher_forced_mae"] / s["teacher_forced_mae"]
            looks = f"{ratio:.1f}x better than" if ratio >= 1.05 else "no better than"
            lines.append(
                f"Allowed to peek at the future, the {standard} model looks {looks} the "
                f"{causal} one: teacher-forced MAE {s['teacher_forced_mae']:.2f} vs "
                f"{c['teacher_forced_mae']:.2f} {units}.")
        worse = "worse" if s["honest_mae"] > pers else "better"
        tail = ""
        if causal is not None:
            c = entries[causal]
            word = "worse" if s["honest_mae"] > c["honest_mae"] else "better"
            tail = f" and {word} than the {causal} model's {c['honest_mae']:.2f} {units}"
        lines.append(
            f"Made to forecast honestly (rolling origin, nothing after the origin), it scores "
            f"{s['honest_mae']:.2f} {units}: its teacher-forced MAE understates the real error "
            f"by an inflation factor of {s['inflation']:.1f}x, {worse} than persistence "
            f"({pers:.2f} {units}){tail}.")
    if causal is not None:
        c = entries[causal]
        audited = c["audit"]["measured_future"]
        lines.append(
            f"The {causal} model's teacher-forced and honest scores agree "
            f"({c['teacher_forced_mae']:.2f} vs {c['honest_mae']:.2f} {units}, largest "
            f"forecast difference {c['max_abs_diff_teacher_forced_vs_honest']:.1e}), and the "
            f"audit measures {audited} future input steps in its receptive field"
            + (f", against {entries[standard]['audit']['measured_future']} for the "
               f"{standard} model." if standard is not None else "."))
    return " ".join(lines)


def report_markdown(entries: dict, groups: dict[str, list[ModelResult]], baselines: list[str],
                    protocol: dict, figures: dict[str, str], text: str, units: str) -> str:
    """report.md: verdict, score tables, audit table, figures, protocol."""
    models = list(groups)
    horizon = protocol["horizon"]
    out = ["# Leakage report", "", "## Verdict", "", text, ""]

    def spread(name: str, key: str) -> float | None:
        return entries[name]["spread"][key]["std"] if name in groups else None

    rows = []
    for name in [*models, *baselines]:
        e = entries[name]
        kind = "baseline" if name in baselines else ("causal" if e["causal"] else "non-causal")
        tf = fmt(e["teacher_forced_mae"], spread(name, "teacher_forced_mae")) \
            if name in groups else "(same)"
        rows.append([name, kind, str(len(e.get("seeds", [])) or "—"), tf,
                     fmt(e["honest_mae"], spread(name, "honest_mae")),
                     fmt(e["honest_rmse"], spread(name, "honest_rmse")), fmt(e["skill"], None, 3),
                     f"{e['inflation']:.2f}x" if name in groups else "1.00x"])
    out += [f"## Test scores, all series, mean over h = 1..{horizon} ({units})", "",
            markdown_table(["model", "kind", "seeds", "teacher-forced MAE", "honest MAE",
                            "honest RMSE", "honest skill vs persistence",
                            "honest / teacher-forced"], rows, "llrrrrrr"), "",
            "Mean ± standard deviation across seeds where several were trained. Baselines read "
            "nothing after the origin, so both protocols give them the same score.", ""]

    stations = list(entries["persistence"]["stations"])
    headline = protocol["station"]
    rows = [[name, *(fmt(entries[name]["stations"][s]["honest_mae"]) for s in stations),
             fmt(entries[name]["honest_mae"])] for name in [*models, *baselines]]
    out += [f"## Honest MAE per series ({units}; headline series: {headline})", "",
            markdown_table(["model", *stations, "all"], rows), ""]
    rows = [[name, *(fmt(entries[name]["stations"][s]["teacher_forced_mae"]) for s in stations),
             fmt(entries[name]["teacher_forced_mae"])] for name in models]
    out += [f"Teacher-forced MAE per series ({units}):", "",
            markdown_table(["model", *stations, "all"], rows), ""]

    steps = [h for h in (1, 2, 3, 6, 12, 18, 24, 36, 48) if h <= horizon]
    if horizon not in steps:
        steps.append(horizon)
    rows = []
    for name in [*models, *baselines]:
        e = entries[name]
        rows.append([f"{name} (honest)", *(fmt(e["mae_by_horizon"][h - 1]) for h in steps)])
        if name in groups and not e["causal"]:
            rows.append([f"{name} (teacher-forced)",
                         *(fmt(e["teacher_forced_mae_by_horizon"][h - 1]) for h in steps)])
    out += [f"## MAE by horizon step, all series ({units})", "",
            markdown_table(["model", *(f"h={h}" for h in steps)], rows), ""]

    rows = []
    for name in models:
        a = entries[name]["audit"]
        ok = (a["measured_past"], a["measured_future"]) == (a["expected_past"],
                                                            a["expected_future"])
        leak = "reads no future step" if a["measured_future"] == 0 else \
            f"reads {a['measured_future']} future steps"
        rows.append([name, str(a["receptive_field"]), str(a["expected_past"]),
                     str(a["expected_future"]), str(a["measured_past"]),
                     str(a["measured_future"]),
                     f"{leak}; {'as configured' if ok else 'DIFFERS from the config'}"])
    out += ["## Leakage audit (measured by autograd on the trained checkpoints)", "",
            markdown_table(["model", "R", "configured past", "configured future",
                            "measured past", "measured future", "verdict"], rows,
                           "lrrrrrl"), "",
            f"Output step t = {protocol['audit_position']} of a {protocol['audit_window']}-step "
            "window of random inputs; an input step counts when the gradient of any of the H "
            "outputs at t with respect to it is non-zero.", ""]

    captions = {
        "forecast_week": f"Forecasts issued {protocol['figure_lead']} h ahead over one test "
                         f"week at {headline}",
        "mae_by_horizon": "MAE by horizon step, every model and baseline",
        "leak": "Teacher-forced vs honest MAE per model: the leak at a glance",
        "receptive_field": "Measured receptive field of each trained model",
    }
    out += ["## Figures", ""]
    for key, file in figures.items():
        out += [f"![{captions[key]}]({file})", ""]

    runs = [[name, str(r.run.seed), str(r.run.path)] for name, g in groups.items() for r in g]
    out += ["## Protocol", "",
            f"- Test period {protocol['test_start']} .. {protocol['test_end']}; "
            f"{protocol['n_origins']} origins x {horizon} steps: {protocol['n_targets']} observed "
            f"targets, the same for every model and baseline "
            f"({protocol['n_origins'] * horizon - protocol['n_targets']} missing targets are "
            "not scored).",
            f"- Every origin has {protocol['history']} steps of history (the largest need among "
            "the models and baselines).",
            "- Teacher-forced: dense test windows, every position scored, as in training. "
            "Honest: one window ending at each origin, only its last position's forecasts used.",
            "- Baselines: " + ", ".join(protocol["baselines"]) + "; fitted on the training "
            "split only.",
            "", markdown_table(["model", "seed", "run"], runs, "lrl"), ""]
    return "\n".join(out)


def week_curves(groups: dict[str, list[ModelResult]], reference: Forecasts, station: str,
                start: pd.Timestamp, lead: int, step: pd.Timedelta
                ) -> tuple[np.ndarray, np.ndarray, list[Curve]]:
    """(times, actual, curves) of ``lead``-step forecasts at ``station`` for one week."""
    lead_ns = lead * step.value
    valid = reference.origin + lead_ns
    keep = ((reference.series == station) & (valid >= start.value)
            & (valid < (start + pd.Timedelta(days=7)).value))
    order = np.argsort(valid[keep])
    times = valid[keep][order].astype("datetime64[ns]")

    def pick(fc: Forecasts) -> np.ndarray:
        return fc.pred[keep][order, lead - 1]

    curves = []
    for name, g in groups.items():
        first = g[0]
        if first.model.hparams.causal:
            curves.append(Curve(name, f"{name} (honest)", pick(first.honest)))
        else:
            curves.append(Curve(name, f"{name} (teacher-forced, peeks)",
                                pick(first.teacher_forced), dashed=True))
            curves.append(Curve(name, f"{name} (honest)", pick(first.honest)))
    curves.append(Curve("persistence", "persistence", pick(reference)))
    return times, reference.target[keep][order, lead - 1], curves


def evaluate(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Score the runs and baselines on the same test origins; write report, metrics, figures."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [str(r) for r in cfg.runs or []]
    runs = named_runs(names) if names else newest_runs([str(s) for s in cfg.search],
                                                       bool(cfg.field))
    if any(is_field_run(r) for r in runs):
        return evaluate_field_runs(cfg, runs, out_dir)
    check_comparable(runs)
    by_label = group_runs(runs)
    for label, g in by_label.items():
        log.info("%s: %s", label, ", ".join(str(r.path) for r in g))

    dm: ForecastDataModule = instantiate(runs[0].config["data"], _convert_="all")
    spec = dm.load()
    horizon = dm.horizon
    models = {label: [load_checkpoint(r.checkpoint) for r in g] for label, g in by_label.items()}
    for label, ms in models.items():
        for run, m in zip(by_label[label], ms, strict=True):
            if m.hparams.horizon != horizon:
                raise RunError(f"{run.path}: horizon {m.hparams.horizon} != data horizon "
                               f"{horizon} in its config.yaml")
    baselines = {str(k): instantiate(v, horizon=horizon) for k, v in cfg.baselines.items()}
    reference_model = Persistence(horizon)
    history = max([m.receptive_field - 1 for ms in models.values() for m in ms]
                  + [b.history for b in baselines.values()])
    test = dm.split_origins("test", history)
    n_origins = sum(len(o) for o in test)
    if n_origins == 0:
        raise RunError(f"{dm.path}: no test origin has {history} steps of history and "
                       f"{horizon} targets in one segment; widen the test split")
    reference = collect(dm.arrays, test, reference_model.predict(dm.arrays, test), spec)

    baseline_scores = {}
    for name, b in baselines.items():
        b.fit(dm.arrays, dm.split_origins("train", b.history))
        fc = collect(dm.arrays, test, b.predict(dm.arrays, test), spec)
        baseline_scores[name] = station_scores(fc, reference)
        log.info("baseline %s: honest MAE %.3f", name, baseline_scores[name]["all"]["mae"])
    if "persistence" not in baseline_scores:
        baseline_scores = {"persistence": station_scores(reference, reference), **baseline_scores}

    groups = {label: [score_run(r, m, dm, test, reference, cfg)
                      for r, m in zip(by_label[label], ms, strict=True)]
              for label, ms in models.items()}
    entries = {label: model_entry(g) for label, g in groups.items()}
    for name, scores in baseline_scores.items():
        if name in entries:
            raise RunError(f"model name {name!r} collides with a baseline; rename the model")
        entries[name] = baseline_entry(scores)

    units = str(cfg.units)
    series = [a.name for a in dm.arrays]
    station = str(cfg.station) if str(cfg.station) in series else series[0]
    if station != str(cfg.station):
        log.warning("station %s not in the data (%s); showing %s", cfg.station, series, station)
    figures = write_figures(cfg, out_dir, groups, entries, list(baseline_scores), reference,
                            dm, station, units)
    test_start, test_end = dm.splits["test"]
    protocol = {
        "horizon": horizon, "history": history, "n_origins": n_origins,
        "n_targets": int(np.isfinite(reference.target).sum()), "station": station,
        "test_start": test_start.strftime("%Y-%m-%d %H:%M"),
        "test_end": test_end.strftime("%Y-%m-%d %H:%M UTC"),
        "figure_lead": min(int(cfg.figure_lead), horizon),
        "audit_window": next(iter(groups.values()))[0].audit.length,
        "audit_position": next(iter(groups.values()))[0].audit.position,
        "baselines": [f"{k} ({type(b).__name__}, reads {b.history} steps back)"
                      for k, b in baselines.items()],
    }
    text = verdict(entries, groups, units)
    atomic_write_text(out_dir / "report.md", report_markdown(
        entries, groups, list(baseline_scores), protocol, figures, text, units) + "\n")
    write_json(out_dir / "metrics.json", entries)
    if cfg.docs_dir:
        docs = Path(str(cfg.docs_dir))
        for key, file in README_FIGURES.items():
            atomic_write_bytes(docs / file, (out_dir / figures[key]).read_bytes())
        log.info("README figures copied to %s", docs)
    log.info("verdict: %s", text)
    log.info("report written to %s in %.1f s", out_dir / "report.md",
             time.perf_counter() - started)
    return entries


def write_figures(cfg: DictConfig, out_dir: Path, groups: dict[str, list[ModelResult]],
                  entries: dict, baselines: list[str], reference: Forecasts,
                  dm: ForecastDataModule, station: str, units: str) -> dict[str, str]:
    """The four PNG figures, written atomically; returns {figure key: file name}."""
    spec = dm.spec
    lead = min(int(cfg.figure_lead), dm.horizon)
    if cfg.week_start:
        start = pd.Timestamp(str(cfg.week_start))
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    else:
        start = dm.splits["test"][0]
    times, actual, curves = week_curves(groups, reference, station, start, lead, spec.step)
    figs = {"forecast_week": forecast_week_figure(times, actual, curves, station, lead, units)}

    curves = []
    for name, g in groups.items():
        e = entries[name]
        seeds = f", {len(g)} seeds" if len(g) > 1 else ""
        spread = e["spread"]["mae_by_horizon_std"]
        curves.append(Curve(name, f"{name} (honest{seeds})", np.asarray(e["mae_by_horizon"]),
                            None if spread is None else np.asarray(spread)))
        if not e["causal"]:
            curves.append(Curve(name, f"{name} (teacher-forced, peeks)",
                                np.asarray(e["teacher_forced_mae_by_horizon"]), dashed=True))
    curves += [Curve(b, b, np.asarray(entries[b]["mae_by_horizon"])) for b in baselines]
    figs["mae_by_horizon"] = mae_by_horizon_figure(
        curves, f"MAE by horizon step on the test period (all series, "
                f"{len(reference.origin)} origins)", units)

    bars = [LeakBar(name, entries[name]["teacher_forced_mae"], entries[name]["honest_mae"],
                    entries[name]["spread"]["teacher_forced_mae"]["std"],
                    entries[name]["spread"]["honest_mae"]["std"]) for name in groups]
    figs["leak"] = leak_bars_figure(bars, {b: entries[b]["honest_mae"] for b in baselines},
                                    units)

    panels = []
    for name, g in groups.items():
        first = g[0]
        a = entries[name]["audit"]
        rows = np.unique(np.linspace(0, first.audit.length - 1, int(cfg.audit_rows)).round()
                         .astype(int))
        x = torch.randn(1, first.audit.length,
                        first.model.hparams.n_features,
                        generator=torch.Generator().manual_seed(0))
        panels.append(FieldPanel(
            name=name,
            title=(f"{name}: R = {a['receptive_field']}, configured past {a['expected_past']} / "
                   f"future {a['expected_future']}\nmeasured past {first.audit.past} / "
                   f"future {first.audit.future}"),
            influence=influence(first.model, x, rows, project=True), positions=rows,
            profile=first.audit.influence, position=first.audit.position,
            past=first.audit.past, future=first.audit.future))
    figs["receptive_field"] = receptive_field_figure(panels)

    for key, fig in figs.items():
        atomic_write_bytes(out_dir / FIGURES[key], png_bytes(fig))
    return {key: FIGURES[key] for key in figs}


def evaluate_field_runs(cfg: DictConfig, runs: list[Run], out_dir: Path) -> dict:
    """Field runs: both nets and the field baselines over all grid points, the audit in time
    and space, maps, a GIF, and (``point_run=DIR``) point vs field."""
    from forecast.field_point import point_forecasts
    from forecast.field_report import FieldRun, evaluate_fields

    if not all(is_field_run(r) for r in runs):
        raise RunError("runs: field runs and series runs cannot be compared in one report")
    point = None
    if cfg.point_run:
        p = load_run(Path(str(cfg.point_run)))
        point = point_forecasts(p.checkpoint, p.config["data"], str(cfg.point.name),
                                float(cfg.point.lat), float(cfg.point.lon))
    return evaluate_fields([FieldRun(r.path, r.config["data"]) for r in runs], out_dir, point,
                           cfg.map_time, int(cfg.gif_lead), int(cfg.gif_hours),
                           Path(str(cfg.docs_dir)) if cfg.docs_dir else None)


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg, HydraConfig.get().runtime.output_dir)
    except (RunError, CheckpointError, DataError) as err:
        log.error("%s", err)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
