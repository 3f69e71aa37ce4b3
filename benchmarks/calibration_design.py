"""Choose the conformal calibration design on validation only (never the test split).

``python benchmarks/calibration_design.py RUN_DIR [--holdout-days 7]``

Honest quantile forecasts of a quantile run at every validation origin whose input window
reads no training row; the last ``--holdout-days`` of them are held out, and each candidate
(calibration window of 7, 14 or 21 days just before the held-out block; offsets per
horizon step or pooled over steps) is calibrated on its window and scored on the held-out
block: mean absolute gap between observed and nominal coverage of the central intervals,
overall and per step.

Online designs (a window of 7, 14 or 21 days moving with each day, reading only targets
observed by that day's start; with coverage tracking at rates 0.01 .. 0.2, rate 0: none)
run from the first validation day and are scored on every validation forecast issued
``--warmup-days`` or more after it: a month of forecasts rather than one week. The design
with the smallest coverage gap there (then the smallest per-step gap) is the choice;
``configs/evaluate.yaml`` holds it. Prints both tables.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.evaluation.intervals import calibration_origins, rolling_calibrated
from forecast.evaluation.protocols import forecast_origins
from forecast.evaluation.runs import load_run
from forecast.features import DataSpec, series_arrays
from forecast.module import load_checkpoint
from forecast.quantiles import apply_offsets, central_pairs, conformal_offsets, coverage
from forecast.report.comparison import data_module
from forecast.report.tables import markdown_table

log = logging.getLogger("calibration_design")


def gap_cells(y: np.ndarray, q: np.ndarray, pairs: list[tuple[int, int, float]]
              ) -> list[str]:
    """Table cells of targets ``y`` [N, H] and quantiles ``q`` [N, H, Q]: coverage of each
    central interval (%), mean gap to nominal overall and per step (points)."""
    covs = [coverage(y, q[..., i], q[..., j]) for i, j, _ in pairs]
    gaps = [abs(v - c) for v, (*_, c) in zip(covs, pairs, strict=True)]
    step_gaps = [np.abs(coverage(y, q[..., i], q[..., j], axis=0) - c).mean()
                 for i, j, c in pairs]
    return [" / ".join(f"{100 * v:.1f}" for v in covs), f"{100 * np.mean(gaps):.2f}",
            f"{100 * np.mean(step_gaps):.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--holdout-days", type=float, default=7.0)
    parser.add_argument("--warmup-days", type=float, default=7.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run = load_run(args.run)
    model = load_checkpoint(run.checkpoint)
    levels = model.hparams.quantiles
    dm = data_module(run)
    dm.load()
    spec = DataSpec.from_dict(model.hparams.data_spec)
    arrays = series_arrays(dm.frame, spec)
    history = model.receptive_field - 1
    val_start, val_end = dm.splits["val"]
    origins = calibration_origins(arrays, dm.split_origins("val", history), val_start,
                                  val_start, history)
    fc = forecast_origins(model, arrays, origins, spec, "honest", dm.span, quantiles=True)
    cut = (val_end - pd.Timedelta(days=args.holdout_days)).value
    held = fc.origin + dm.horizon * spec.step.value > cut  # targets in the held-out block
    last_cal = fc.origin[~held].max()
    pairs = central_pairs(levels)
    rows = []
    raw = [coverage(fc.target[held], fc.pred[held][..., i], fc.pred[held][..., j])
           for i, j, _ in pairs]
    raw_gap = np.mean([abs(v - c) for v, (*_, c) in zip(raw, pairs, strict=True)])
    rows.append(["raw (no calibration)", "—", "—", " / ".join(f"{100 * v:.1f}" for v in raw),
                 f"{100 * raw_gap:.2f}", "—"])
    for days in (7, 14, 21):
        window = (~held) & (fc.origin > last_cal - pd.Timedelta(days=days).value)
        if not window.any():
            continue
        y, q = fc.target[window], fc.pred[window]
        for pooled, scaled in ((False, False), (True, False), (False, True), (True, True)):
            if pooled:
                n, h, nq = q.shape
                off = conformal_offsets(y.reshape(-1, 1), q.reshape(-1, 1, nq), levels, scaled)
                off = np.repeat(off, h, axis=1)
            else:
                off = conformal_offsets(y, q, levels, scaled)
            adj = apply_offsets(fc.pred[held], levels, off, scaled)
            rows.append([f"{days} days", ("pooled" if pooled else "per step")
                         + (", scaled" if scaled else ", added"), f"{int(window.sum())}",
                         *gap_cells(fc.target[held], adj, pairs)])
    print(f"held out: {int(held.sum())} validation origins with targets after "
          f"{pd.Timestamp(cut)}; intervals {[f'{100 * c:g} %' for *_, c in pairs]}")
    print(markdown_table(["calibration window", "offsets", "origins", "coverage (%)",
                          "coverage gap (points)", "per-step gap (points)"], rows))
    day_ns = pd.Timedelta(days=1).value
    first_day = fc.origin.min() // day_ns * day_ns
    scored = fc.origin >= first_day + pd.Timedelta(days=args.warmup_days).value
    online, best = [], None
    for days, scaled, rate in itertools.product((7, 14, 21), (False, True),
                                            (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)):
        on = rolling_calibrated(fc, scored, levels, days, spec.step.value, scaled, rate)
        cells = gap_cells(on.target, on.pred, pairs)
        week = (on.origin - on.origin.min()) // (7 * day_ns)
        weekly = np.mean([float(gap_cells(on.target[week == w], on.pred[week == w],
                                          pairs)[1]) for w in np.unique(week)])
        online.append([f"{days} days", "scaled" if scaled else "added", f"{rate:g}",
                       *cells, f"{weekly:.2f}"])
        key = (float(cells[1]), float(cells[2]))
        if best is None or key < best[0]:
            best = (key, days, scaled, rate)
    print(f"\nonline, from the first validation day; scored: {int(scored.sum())} validation "
          f"origins issued {args.warmup_days:g} days or more after it")
    print(markdown_table(["moving window", "offsets", "tracking rate", "coverage (%)",
                          "coverage gap (points)", "per-step gap (points)",
                          "weekly gap (points)"], online))
    print(f"\nchoice: calibration_days={best[1]} calibration_scaled={str(best[2]).lower()} "
          f"calibration_rate={best[3]:g}")


if __name__ == "__main__":
    main()
