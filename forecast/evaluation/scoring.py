"""Scoring trained runs and baselines on the same origins: per-run results, and the
metrics.json entries (means and spreads over seeds, per series, the audit)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from forecast.data import ForecastDataModule
from forecast.evaluation.audit import Audit, audit, expected_extents
from forecast.evaluation.protocols import (
    Forecasts,
    forecast_origins,
    mean_forecasts,
    station_scores,
)
from forecast.evaluation.runs import Run, RunError
from forecast.features import DataSpec, series_arrays
from forecast.module import ForecastModule

log = logging.getLogger(__name__)


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
    # a quantile model's quantiles [N, H, Q] (its point forecasts above are their median)
    teacher_forced_quantiles: Forecasts | None = None
    honest_quantiles: Forecasts | None = None
    runs: list[Run] | None = None  # an ensemble: the runs whose forecasts it averages


def score_run(run: Run, model: ForecastModule, dm: ForecastDataModule, test: list[np.ndarray],
              reference: Forecasts, batch_size: int = 256, audit_batch: int = 4) -> ModelResult:
    """Teacher-forced and honest forecasts on ``test`` origins, scores and the audit."""
    spec = DataSpec.from_dict(model.hparams.data_spec)
    arrays = series_arrays(dm.frame, spec)  # scaled with the checkpoint's own statistics
    levels = model.hparams.get("quantiles")
    tfq, honq = (forecast_origins(model, arrays, test, spec, protocol, dm.span, batch_size,
                                  quantiles=bool(levels))
                 for protocol in ("teacher_forced", "honest"))
    # a quantile model is forecast once: its point forecast is the median
    tf, hon = (tfq, honq) if not levels else (median(tfq, levels), median(honq, levels))
    for fc in (tf, hon):
        if not same_targets(fc, reference):
            raise RunError(f"{run.path}: its test targets differ from the baselines'; the "
                           "checkpoint's data spec does not match its config.yaml")
    r = model.receptive_field
    aud = audit(model, model.hparams.n_features, length=2 * r + 1, batch=audit_batch)
    log.info("%s: teacher-forced MAE %.3f, honest %.3f; audit past %d future %d (R=%d)",
             run.path, station_scores(tf, reference)["all"]["mae"],
             station_scores(hon, reference)["all"]["mae"], aud.past, aud.future, r)
    return ModelResult(run, model, tf, hon, station_scores(tf, reference),
                       station_scores(hon, reference), aud,
                       tfq if levels else None, honq if levels else None)


def seed_ensemble(results: list[ModelResult], reference: Forecasts) -> ModelResult:
    """The mean of several seeds' point forecasts (runs of one config), scored as one model;
    the first run's model and audit stand for the group (same net, same receptive field)."""
    if any(r.model.hparams.get("quantiles") for r in results):
        raise ValueError("seed ensembles average point forecasts; quantile models have none")
    tf = mean_forecasts([r.teacher_forced for r in results])
    hon = mean_forecasts([r.honest for r in results])
    first = results[0]
    return ModelResult(first.run, first.model, tf, hon, station_scores(tf, reference),
                       station_scores(hon, reference), first.audit,
                       runs=[r.run for r in results])


def median(fc: Forecasts, levels: list[float]) -> Forecasts:
    """Quantile forecasts [N, H, Q] -> their median [N, H] (the point forecast)."""
    return Forecasts(fc.series, fc.origin, fc.pred[..., list(levels).index(0.5)], fc.target,
                     fc.last)


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
        "seeds": [run.seed for r in results for run in r.runs or [r.run]],
        "runs": [str(run.path) for r in results for run in r.runs or [r.run]],
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
            for r in results if r.runs is None  # an ensemble's runs are scored as their own
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


