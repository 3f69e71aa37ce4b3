"""The report's probabilistic part: quantile models scored honestly (raw; conformally
calibrated on the end of validation, online by a moving window, and by coverage tracking),
the standard twin's teacher-forced intervals beside its honest ones, the persistence-error
baseline interval; a table, a fan chart and a reliability diagram."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.baselines import Persistence
from forecast.data import ForecastDataModule
from forecast.evaluation.intervals import (
    calibrate,
    calibrated,
    coverage_keys,
    interval_scores,
    persistence_quantiles,
    rolling_calibrated,
    unseen_quantiles,
)
from forecast.evaluation.protocols import Forecasts, collect, forecast_origins
from forecast.evaluation.scoring import ModelResult
from forecast.features import DataSpec, series_arrays
from forecast.files import atomic_write_bytes
from forecast.quantiles import central_pairs, level_key
from forecast.report.figures import png_bytes
from forecast.report.quantile_figures import Band, Reliability, fan_chart, reliability_figure
from forecast.report.tables import fmt, markdown_table

log = logging.getLogger(__name__)

FIGURES = {"fan_chart": "quantile_fan_chart.png", "reliability": "quantile_reliability.png"}


@dataclass
class QuantileRun:
    """One quantile run's test forecasts: honest raw and calibrated, teacher-forced raw."""

    honest: Forecasts
    honest_calibrated: Forecasts | None
    teacher_forced: Forecasts
    calibration: dict | None
    honest_rolling: Forecasts | None = None  # calibrated online, the window moving daily
    honest_tracked: Forecasts | None = None  # calibrated online by coverage tracking


def _mean(values: list) -> object:
    """Mean of equally shaped nested dicts / lists of numbers (one run: itself)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        return [_mean([v[i] for v in values]) for i in range(len(first))]
    if isinstance(first, int | float) and not isinstance(first, bool):
        return float(np.mean(values))
    return first


def quantile_run(model: object, dm: ForecastDataModule, test: list[np.ndarray],
                 calibration_days: float | None, batch_size: int, scaled: bool = False,
                 rate: float | None = None, scored: ModelResult | None = None) -> QuantileRun:
    """Forecasts of one quantile model; conformal offsets from the last
    ``calibration_days`` of validation (None: no calibration; ``scaled``: offsets as
    shares of each interval's width); ``rate``: also the online window with coverage
    tracking (adaptive conformal), from the first validation origin that reads no training
    row. ``scored``: the run as scored already, whose test quantiles are reused."""
    spec = DataSpec.from_dict(model.hparams.data_spec)
    arrays = series_arrays(dm.frame, spec)
    levels = model.hparams.quantiles

    def run(origins: list[np.ndarray], protocol: str) -> Forecasts:
        return forecast_origins(model, arrays, origins, spec, protocol, dm.span, batch_size,
                                quantiles=True)

    reuse = scored is not None and scored.honest_quantiles is not None
    honest = scored.honest_quantiles if reuse else run(test, "honest")
    tf = (honest if model.hparams.causal
          else scored.teacher_forced_quantiles if reuse else run(test, "teacher_forced"))
    if calibration_days is None:
        return QuantileRun(honest, None, tf, None)
    if dm.refit:  # its validation residuals are in-sample: offsets from them would be too small
        log.warning("%s: no conformal calibration: the net was refit on validation "
                    "(data.refit=true); train quantile runs with data.refit=false to calibrate "
                    "them", model.hparams.name)
        return QuantileRun(honest, None, tf, None)
    # every validation origin whose input window reads no training row, forecast once:
    # the fixed window is its last calibration_days, online calibration moves through it
    val_start, val_end = dm.splits["val"]
    val = unseen_quantiles(model, arrays, spec, dm, ("val",), batch_size)
    if len(val.origin) == 0:  # calibration is optional: the raw intervals are still scored
        log.warning("%s: no conformal calibration: no validation origin has its %d steps of "
                    "input and %d targets inside validation (%s .. %s); lengthen the "
                    "validation split (data.splits or data.fractions)", model.hparams.name,
                    model.receptive_field - 1, dm.horizon, f"{val_start:%Y-%m-%d %H:%M}",
                    f"{val_end:%Y-%m-%d %H:%M}")
        return QuantileRun(honest, None, tf, None)
    cal = calibrate(val.select(val.origin >= (val_end - pd.Timedelta(days=calibration_days))
                               .value), levels, scaled)
    log.info("%s: conformal calibration on %d validation origins %s .. %s", model.hparams.name,
             cal.n_origins, cal.first_origin, cal.last_origin)
    both = Forecasts(*(np.concatenate([getattr(val, k), getattr(honest, k)])
                       for k in ("series", "origin", "pred", "target", "last")))
    in_test = np.arange(len(both.origin)) >= len(val.origin)
    rolling = rolling_calibrated(both, in_test, levels, calibration_days, spec.step.value,
                                 scaled)
    tracked = (None if rate is None else rolling_calibrated(
        both, in_test, levels, calibration_days, spec.step.value, scaled, rate))
    return QuantileRun(honest, calibrated(honest, levels, cal), tf,
                       {**cal.to_dict(levels), "days": calibration_days}, rolling, tracked)


def interval_entries(groups: dict[str, list[ModelResult]], dm: ForecastDataModule,
                     test: list[np.ndarray], reference: Forecasts,
                     calibration_days: float | None, batch_size: int = 256,
                     scaled: bool = False, rate: float | None = None
                     ) -> tuple[dict[str, dict], dict[str, list[QuantileRun]], list[float]]:
    """Per quantile model (means over its seeds) and for the persistence baseline
    interval: the metrics.json additions; the runs' forecasts; the quantile levels."""
    quantile = {label: g for label, g in groups.items()
                if g[0].model.hparams.get("quantiles")}
    if not quantile:
        return {}, {}, []
    levels = list(next(iter(quantile.values()))[0].model.hparams.quantiles)
    entries, runs = {}, {}
    for label, g in quantile.items():
        runs[label] = [quantile_run(r.model, dm, test, calibration_days, batch_size, scaled,
                                    rate, r) for r in g]
        lv = g[0].model.hparams.quantiles
        kinds = [("honest", "")]  # QuantileRun field (and metrics key), coverage-key suffix
        if not g[0].model.hparams.causal:
            kinds.append(("teacher_forced", "_teacher_forced"))
        calibrated = calibration_days is not None and all(
            q.honest_calibrated is not None for q in runs[label])  # else: validation too short
        if calibrated:
            kinds += [("honest_calibrated", "_calibrated"), ("honest_rolling", "_rolling")]
            if rate is not None:
                kinds.append(("honest_tracked", "_tracked"))
        e = {"quantiles": list(lv), "intervals": {}}
        for kind, suffix in kinds:
            scores = _mean([interval_scores(getattr(q, kind).target, getattr(q, kind).pred, lv)
                            for q in runs[label]])
            e["intervals"][kind] = scores
            e.update(coverage_keys(scores, suffix))
        if calibration_days is not None:
            e["intervals"]["calibration"] = [q.calibration for q in runs[label]]  # None: skipped
        if rate is not None and calibrated:
            e["intervals"]["honest_tracked"]["rate"] = rate
        entries[label] = e
    train = dm.split_origins("train", 1)
    train_fc = collect(dm.arrays, train, Persistence(dm.horizon).predict(dm.arrays, train),
                       dm.spec)
    base = persistence_quantiles(train_fc, reference, levels)
    scores = interval_scores(base.target, base.pred, levels)
    entries["persistence"] = {**coverage_keys(scores), "intervals": {
        "honest": scores, "method": "last value + empirical quantiles of persistence errors "
                                    "on training origins, per horizon step"}}
    runs["persistence"] = [QuantileRun(base, None, base, None)]
    return entries, runs, levels


def _rows(entries: dict[str, dict]) -> list[tuple[str, str, str, dict]]:
    """(name, version label, kind, scores) of every scored version, in table order."""
    out = []
    for name, e in entries.items():
        iv = e["intervals"]
        if name == "persistence":
            out.append((name, "persistence-error interval (baseline)", "honest", iv["honest"]))
            continue
        if "teacher_forced" in iv:
            out.append((name, f"{name}, teacher-forced (peeks)", "teacher_forced",
                        iv["teacher_forced"]))
        out.append((name, f"{name}, honest, raw", "honest", iv["honest"]))
        if "honest_calibrated" in iv:
            out.append((name, f"{name}, honest, calibrated", "honest_calibrated",
                        iv["honest_calibrated"]))
        if "honest_rolling" in iv:
            out.append((name, f"{name}, honest, calibrated online", "honest_rolling",
                        iv["honest_rolling"]))
        if "honest_tracked" in iv:
            out.append((name, f"{name}, honest, calibrated by tracking", "honest_tracked",
                        iv["honest_tracked"]))
    return out


def interval_table(entries: dict[str, dict], units: str) -> str:
    """Markdown: per version, pinball per level, CRPS, and per central interval its
    coverage, width and Winkler score."""
    rows = _rows(entries)
    levels = list(rows[0][3]["pinball"])
    names = list(rows[0][3]["intervals"])
    header = ["forecaster", *(f"pinball {k}" for k in levels), "CRPS",
              *(f"cover {n} %" for n in names), *(f"width {n} %" for n in names),
              *(f"Winkler {n} %" for n in names)]
    lines = [[label, *(fmt(s["pinball"][k], digits=3) for k in levels), fmt(s["crps"], digits=3),
              *(f"{100 * s['intervals'][n]['coverage']:.1f}" for n in names),
              *(fmt(s["intervals"][n]["width"]) for n in names),
              *(fmt(s["intervals"][n]["winkler"]) for n in names)]
             for _, label, _, s in rows]
    kinds = {kind for *_, kind, _ in rows}
    how = ("calibrated: split-conformal offsets per horizon step from the end of validation "
           "(no training row read); calibrated online: the same, from the days before each "
           "forecast day whose targets were observed by then; calibrated by tracking: that "
           "moving window asked for a coverage level that moves each day by the rate times "
           "the gap between the observed and the nominal miss rate, from the first "
           "validation day." if "honest_calibrated" in kinds else
           "no conformal calibration: no validation origin has its whole input window and "
           "its targets inside validation (a longer validation split would allow it)."
           if any(None in e["intervals"].get("calibration", []) for e in entries.values())
           else "no conformal calibration (calibration_days=null).")
    return "\n".join([
        f"Test period, all series, scores in {units} (coverage in % of targets). Honest: "
        f"rolling origin; {how}", "", markdown_table(header, lines)])


def write_interval_figures(out_dir: Path, entries: dict[str, dict],
                           runs: dict[str, list[QuantileRun]], levels: list[float],
                           dm: ForecastDataModule, station: str, units: str, lead: int,
                           week_start: pd.Timestamp) -> dict[str, str]:
    """The fan chart (the first causal quantile model, honest, with the chosen calibration:
    tracking, else the online window, else the fixed one, when run) and the reliability
    diagram; returns {figure key: file name}."""
    figs = {}
    causal = next((n for n, e in entries.items() if n != "persistence"
                   and "teacher_forced" not in e["intervals"]), None)
    if causal is not None:
        q = runs[causal][0]
        fc = q.honest_tracked or q.honest_rolling or q.honest_calibrated or q.honest
        lead = min(lead, dm.horizon)
        valid = fc.origin + lead * dm.spec.step.value
        keep = ((fc.series == station) & (valid >= week_start.value)
                & (valid < (week_start + pd.Timedelta(days=7)).value))
        order = np.argsort(valid[keep])
        pick = fc.pred[keep][order, lead - 1]  # [T, Q]
        bands = [Band(pick[:, i], pick[:, j], nominal) for i, j, nominal in central_pairs(levels)]
        kind = ("calibrated by tracking" if q.honest_tracked is not None
                else "calibrated online" if q.honest_rolling is not None
                else "calibrated" if q.honest_calibrated is not None else "raw")
        figs["fan_chart"] = fan_chart(
            valid[keep][order].astype("datetime64[ns]"), fc.target[keep][order, lead - 1],
            pick[:, levels.index(0.5)], bands,
            f"{station}: {causal} quantile forecasts issued {lead} h ahead (honest, {kind}) "
            "over one test week", units, causal)
    rel = []
    for name, label, kind, s in _rows(entries):
        cov = {v["nominal"]: np.asarray(v["coverage_by_horizon"])
               for v in s["intervals"].values()}
        rel.append(Reliability(name, label, np.asarray(levels),
                               np.asarray([s["below"][level_key(v)] for v in levels]), cov,
                               dashed=kind == "teacher_forced",
                               marker={"honest_calibrated": "s", "honest_rolling": "^",
                                       "honest_tracked": "D"}.get(kind, "o")))
    figs["reliability"] = reliability_figure(
        rel, "Reliability of the quantile forecasts on the test period (all series)")
    for key, fig in figs.items():
        atomic_write_bytes(out_dir / FIGURES[key], png_bytes(fig))
    return {key: FIGURES[key] for key in figs}
