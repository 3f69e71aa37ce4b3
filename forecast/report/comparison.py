"""Compare trained runs with the baselines on the same test origins and write the
leakage report: ``report.md``, ``metrics.json``, figures (and, for the README,
``results.json`` and two figures in a docs folder)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.baselines import Baseline, Persistence
from forecast.data import ForecastDataModule
from forecast.evaluation.protocols import collect, station_scores
from forecast.evaluation.runs import Run, RunError, check_comparable, group_runs
from forecast.evaluation.scoring import baseline_entry, model_entry, score_run, seed_ensemble
from forecast.evaluation.selection import ensemble_name
from forecast.files import atomic_write_bytes, atomic_write_text, write_json
from forecast.module import load_checkpoint
from forecast.report.intervals import interval_entries, interval_table, write_interval_figures
from forecast.report.leak_figures import write_figures
from forecast.report.results import results_summary
from forecast.report.text import report_markdown, verdict

log = logging.getLogger(__name__)

# the README's two figures, copied with docs_dir
README_FIGURES = {"leak": "leak_teacher_forced_vs_honest.png",
                  "mae_by_horizon": "leak_mae_by_horizon.png"}


@dataclass
class ReportOptions:
    """What the report shows; none of it changes a score."""

    station: str = "JFK"  # the headline series (the first one if absent)
    units: str = "degF"
    figure_lead: int = 12
    week_start: str | None = None
    audit_batch: int = 4
    audit_rows: int = 96
    batch_size: int = 256
    docs_dir: Path | None = None  # also write results.json and the README's figures here
    calibration_days: float | None = 21.0  # quantile models: conformal window (None: off)
    calibration_scaled: bool = False  # conformal offsets as shares of each interval's width
    calibration_rate: float | None = 0.2  # coverage tracking: daily step of the coverage level


def data_module(run: Run, **overrides: object) -> ForecastDataModule:
    """The run's data module, built from its resolved config with no Hydra."""
    data = dict(run.config["data"])
    target = data.pop("_target_", None)
    if target != "forecast.data.ForecastDataModule":
        raise RunError(f"{run.path}/config.yaml: data._target_ {target!r} is not "
                       "forecast.data.ForecastDataModule")
    return ForecastDataModule(**{**data, **overrides})


def baseline_validation(baseline: Baseline, dm: ForecastDataModule, history: int) -> float:
    """Honest validation MAE of a baseline fitted on train: how the strongest is named
    without looking at the test split."""
    val = dm.split_origins("val", history)
    ref = collect(dm.arrays, val, Persistence(dm.horizon).predict(dm.arrays, val), dm.spec)
    fc = collect(dm.arrays, val, baseline.predict(dm.arrays, val), dm.spec)
    return station_scores(fc, ref)["all"]["mae"]


def compare_runs(runs: list[Run], baselines: dict[str, Baseline], out_dir: str | Path,
                 options: ReportOptions | None = None) -> dict:
    """Score the runs and baselines on the same test origins; write report, metrics, figures."""
    opt = options or ReportOptions()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_comparable(runs)
    by_label = group_runs(runs)
    for label, g in by_label.items():
        log.info("%s: %s", label, ", ".join(str(r.path) for r in g))

    dm = data_module(runs[0])
    spec = dm.load()
    horizon = dm.horizon
    models = {label: [load_checkpoint(str(r.checkpoint)) for r in g]
              for label, g in by_label.items()}
    for label, ms in models.items():
        for run, m in zip(by_label[label], ms, strict=True):
            if m.hparams.horizon != horizon:
                raise RunError(f"{run.path}: horizon {m.hparams.horizon} != data horizon "
                               f"{horizon} in its config.yaml")
    history = max([m.receptive_field - 1 for ms in models.values() for m in ms]
                  + [b.history for b in baselines.values()])
    test = dm.split_origins("test", history)
    n_origins = sum(len(o) for o in test)
    if n_origins == 0:
        raise RunError(f"{dm.path}: no test origin has {history} steps of history and "
                       f"{horizon} targets in one segment; widen the test split")
    reference = collect(dm.arrays, test, Persistence(horizon).predict(dm.arrays, test), spec)

    baseline_scores, fit_seconds, validation = {}, {}, {}
    plain = data_module(runs[0], refit=False) if dm.refit else dm  # scalers fitted on train
    plain.load()
    for name, b in baselines.items():
        fit_started = time.perf_counter()
        b.fit(plain.arrays, plain.split_origins("train", b.history))
        fit_seconds[name] = time.perf_counter() - fit_started
        validation[name] = baseline_validation(b, plain, history)  # fitted on train alone
        if dm.refit:  # as the nets (data.refit): fitted again on train + validation
            b.fit(dm.arrays, dm.fit_origins(b.history))
        fc = collect(dm.arrays, test, b.predict(dm.arrays, test), spec)
        baseline_scores[name] = station_scores(fc, reference)
        log.info("baseline %s: honest MAE %.3f (validation %.3f, fitted in %.1f s)", name,
                 baseline_scores[name]["all"]["mae"], validation[name], fit_seconds[name])
    if "persistence" not in baseline_scores:
        baseline_scores = {"persistence": station_scores(reference, reference), **baseline_scores}

    groups = {label: [score_run(r, m, dm, test, reference, opt.batch_size, opt.audit_batch)
                      for r, m in zip(by_label[label], ms, strict=True)]
              for label, ms in models.items()}
    with_means: dict[str, list] = {}
    for label, g in groups.items():  # several seeds of a point model: their mean too, next
        with_means[label] = g
        if len(g) > 1 and not g[0].model.hparams.get("quantiles"):
            with_means[ensemble_name(label, len(g))] = [seed_ensemble(g, reference)]
    groups = with_means
    entries = {label: model_entry(g) for label, g in groups.items()}
    for name, scores in baseline_scores.items():
        if name in entries:
            raise RunError(f"model name {name!r} collides with a baseline; rename the model")
        entries[name] = baseline_entry(scores)
        entries[name]["val_honest_mae"] = validation.get(name)
        entries[name]["fit_seconds"] = fit_seconds.get(name)

    series = [a.name for a in dm.arrays]
    station = opt.station if opt.station in series else series[0]
    if station != opt.station:
        log.warning("station %s not in the data (%s); showing %s", opt.station, series, station)
    runs_only = {k: g for k, g in groups.items() if g[0].runs is None}  # figures: no means
    figures = write_figures(out_dir, runs_only, entries, list(baseline_scores), reference, dm,
                            station, opt.units, opt.figure_lead, opt.week_start, opt.audit_rows)
    extra, quantile_runs, levels = interval_entries(groups, dm, test, reference,
                                                    opt.calibration_days, opt.batch_size,
                                                    opt.calibration_scaled,
                                                    opt.calibration_rate)
    interval_text, quantile_figures = "", {}
    if extra:
        for name, e in extra.items():
            entries[name].update(e)
        week = pd.Timestamp(opt.week_start) if opt.week_start else dm.splits["test"][0]
        week = week.tz_localize("UTC") if week.tzinfo is None else week.tz_convert("UTC")
        quantile_figures = write_interval_figures(out_dir, extra, quantile_runs, levels, dm,
                                                  station, opt.units, opt.figure_lead, week)
        interval_text = ("\n## Probabilistic forecasts\n\n" + interval_table(extra, opt.units)
                         + "\n\n" + "".join(f"![{k}]({f})\n\n"
                                             for k, f in quantile_figures.items()))
    test_start, test_end = dm.splits["test"]
    first_target = min(int(a.times[o.min() + 1]) for a, o in zip(dm.arrays, test, strict=True)
                       if len(o))
    last_target = max(int(a.times[o.max() + horizon])
                      for a, o in zip(dm.arrays, test, strict=True) if len(o))
    strongest = min(validation, key=validation.get) if validation else None
    protocol = {
        "horizon": horizon, "history": history, "n_origins": n_origins,
        "n_targets": int(np.isfinite(reference.target).sum()), "station": station,
        "test_start": test_start.strftime("%Y-%m-%d %H:%M"),
        "test_end": test_end.strftime("%Y-%m-%d %H:%M UTC"),
        "first_target": str(np.datetime64(first_target, "ns").astype("datetime64[m]")),
        "last_target": str(np.datetime64(last_target, "ns").astype("datetime64[m]")),
        "figure_lead": min(opt.figure_lead, horizon),
        "audit_window": next(iter(groups.values()))[0].audit.length,
        "audit_position": next(iter(groups.values()))[0].audit.position,
        "baselines": [f"{k} ({type(b).__name__}, reads {b.history} steps back)"
                      for k, b in baselines.items()],
        "strongest_baseline": strongest,
        "refit": dm.refit,
    }
    text = verdict(entries, groups, opt.units, strongest)
    atomic_write_text(out_dir / "report.md", report_markdown(
        entries, groups, list(baseline_scores), protocol, figures, text, opt.units) + "\n"
        + interval_text)
    write_json(out_dir / "metrics.json", entries)
    if opt.docs_dir is not None:
        docs = Path(opt.docs_dir)
        for key, file in README_FIGURES.items():
            atomic_write_bytes(docs / file, (out_dir / figures[key]).read_bytes())
        for file in quantile_figures.values():
            atomic_write_bytes(docs / file, (out_dir / file).read_bytes())
        write_json(docs / "results.json", results_summary(entries, protocol, opt.units))
        log.info("README figures and results.json written to %s", docs)
    log.info("verdict: %s", text)
    log.info("report written to %s in %.1f s", out_dir / "report.md",
             time.perf_counter() - started)
    return entries
