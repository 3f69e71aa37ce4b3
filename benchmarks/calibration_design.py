"""Choose the conformal calibration design without the test split.

``python benchmarks/calibration_design.py RUN_DIR [--folds SELECT_DIR] [--variant quantile_head]
[--holdout-days 7] [--warmup-days 7] [--tolerance 3]``

Validation runs: the quantile run RUN_DIR on its validation split (every origin whose input
window reads no training row) and, with ``--folds``, every run of the selection variant
``--variant`` in SELECT_DIR (``python selection.py``: one per fold and seed), each with its
own model on its early-stopping block and its scored block, origins whose input window reads
none of its training rows; a fold whose scored targets reach past RUN_DIR's validation is
refused, so the test split is never read.

Fixed windows (RUN_DIR only): the last ``--holdout-days`` of validation are held out, and
each candidate (calibration window of 7, 14 or 21 days just before the held-out block;
offsets per horizon step or pooled over steps) is calibrated on its window and scored on the
held-out block: mean absolute gap between observed and nominal coverage of the central
intervals, overall and per step.

Online designs (a window of 7 .. 28 days moving with each day, reading only targets observed
by that day's start; with coverage tracking at rates 0.01 .. 0.5, rate 0: none) run in
every validation run from its first day and are scored on its forecasts issued
``--warmup-days`` or more after it. The choice (:func:`choose_design`) is the sharpest design
(lowest mean Winkler score) whose 80 % and 90 % intervals cover within ``--tolerance`` points
of nominal in every run; ``configs/evaluate.yaml`` holds it. Prints both tables.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.data import ForecastDataModule
from forecast.evaluation.intervals import (
    DesignScore,
    choose_design,
    rolling_calibrated,
    unseen_quantiles,
)
from forecast.evaluation.protocols import Forecasts
from forecast.evaluation.runs import load_run
from forecast.features import DataSpec, series_arrays
from forecast.module import ForecastModule, load_checkpoint
from forecast.quantiles import (
    apply_offsets,
    central_pairs,
    conformal_offsets,
    coverage,
    level_name,
    winkler,
)
from forecast.report.comparison import data_module
from forecast.report.tables import markdown_table

log = logging.getLogger("calibration_design")
WINDOWS = (7, 14, 21, 28)  # days
RATES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


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


@dataclass
class ValidationRun:
    """Honest quantile forecasts of one run over origins it was not trained on, and the
    first of them that is scored (the ones before warm the online window up)."""

    name: str
    fc: Forecasts
    scored: np.ndarray  # [N] bool
    step_ns: int


def load_quantile_run(path: Path) -> tuple[ForecastModule, ForecastDataModule]:
    """A quantile run's best checkpoint and its data module, loaded."""
    run = load_run(path)
    model = load_checkpoint(run.checkpoint)
    if not model.hparams.get("quantiles"):
        raise SystemExit(f"{path}: not a quantile run (model.quantiles is null)")
    dm = data_module(run)
    dm.load()
    return model, dm


def unseen(model: ForecastModule, dm: ForecastDataModule, splits: tuple[str, ...]) -> Forecasts:
    """Honest quantile forecasts at the origins of ``splits`` that read no training row."""
    spec = DataSpec.from_dict(model.hparams.data_spec)
    return unseen_quantiles(model, series_arrays(dm.frame, spec), spec, dm, splits)


def warmed(name: str, fc: Forecasts, step_ns: int, warmup_days: float) -> ValidationRun:
    """``fc`` as a validation run scored from ``warmup_days`` after its first day."""
    day_ns = pd.Timedelta(days=1).value
    first_day = fc.origin.min() // day_ns * day_ns
    return ValidationRun(name, fc, fc.origin >= first_day + pd.Timedelta(days=warmup_days).value,
                         step_ns)


def fold_runs(select_dir: Path, variant: str, levels: list[float], val_end: pd.Timestamp,
              warmup_days: float) -> list[ValidationRun]:
    """The selection variant's runs, each on its early-stopping and scored blocks; a run
    whose scored block ends after ``val_end`` is refused before anything is forecast."""
    paths = sorted((select_dir / "runs").glob(f"fold*/{variant}_seed*"))
    if not paths:
        raise SystemExit(f"{select_dir}/runs: no fold*/{variant}_seed* run folder; run "
                         f"python selection.py with a variant named {variant}")
    out = []
    for path in paths:
        model, dm = load_quantile_run(path)
        if dm.splits["test"][1] > val_end:
            raise SystemExit(f"{path}: its scored block ends {dm.splits['test'][1]}, after the "
                             f"validation end {val_end}: it would read the test split")
        if list(model.hparams.quantiles) != levels:
            raise SystemExit(f"{path}: quantile levels {list(model.hparams.quantiles)} differ "
                             f"from the run's {levels}")
        fc = unseen(model, dm, ("val", "test"))
        step = DataSpec.from_dict(model.hparams.data_spec).step.value
        out.append(warmed(f"{path.parent.name}/{path.name}", fc, step, warmup_days))
    return out


def fixed_windows(fc: Forecasts, levels: list[float], holdout_days: float,
                  val_end: pd.Timestamp, horizon_ns: int) -> None:
    """Windows at the end of validation, scored on its last ``holdout_days``."""
    cut = (val_end - pd.Timedelta(days=holdout_days)).value
    held = fc.origin + horizon_ns > cut  # targets in the held-out block
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
    print(f"fixed windows; held out: {int(held.sum())} validation origins with targets after "
          f"{pd.Timestamp(cut)}; intervals {[f'{100 * c:g} %' for *_, c in pairs]}")
    print(markdown_table(["calibration window", "offsets", "origins", "coverage (%)",
                          "coverage gap (points)", "per-step gap (points)"], rows))


def online_designs(runs: list[ValidationRun], levels: list[float]) -> list[DesignScore]:
    """Every moving-window design scored in every validation run."""
    pairs = central_pairs(levels)
    out = []
    for days, scaled, rate in itertools.product(WINDOWS, (False, True), RATES):
        cov, wink = [], []
        for r in runs:
            on = rolling_calibrated(r.fc, r.scored, levels, days, r.step_ns, scaled, rate)
            cov.append([coverage(on.target, on.pred[..., i], on.pred[..., j])
                        for i, j, _ in pairs])
            wink.append([winkler(on.target, on.pred[..., i], on.pred[..., j], c)
                         for i, j, c in pairs])
        out.append(DesignScore(f"calibration_days={days} calibration_scaled="
                               f"{str(scaled).lower()} calibration_rate="
                               + (f"{rate:g}" if rate > 0 else "null"),
                               np.array(cov), np.array(wink)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--folds", type=Path, help="a selection.py output folder")
    parser.add_argument("--variant", default="quantile_head")
    parser.add_argument("--holdout-days", type=float, default=7.0)
    parser.add_argument("--warmup-days", type=float, default=7.0)
    parser.add_argument("--tolerance", type=float, default=3.0, help="points of coverage")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, dm = load_quantile_run(args.run)
    levels = list(model.hparams.quantiles)
    step_ns = DataSpec.from_dict(model.hparams.data_spec).step.value
    fc = unseen(model, dm, ("val",))
    val_end = dm.splits["val"][1]
    fixed_windows(fc, levels, args.holdout_days, val_end, dm.horizon * step_ns)
    runs = [warmed(f"{args.run.name} (validation)", fc, step_ns, args.warmup_days)]
    if args.folds:
        runs += fold_runs(args.folds, args.variant, levels, val_end, args.warmup_days)
    pairs = central_pairs(levels)
    nominal = np.array([c for *_, c in pairs])
    designs = online_designs(runs, levels)
    names = [level_name(c) for c in nominal]
    rows = [[d.name.replace("calibration_", "").replace(" ", ", "),
             " / ".join(f"{100 * v:.1f}" for v in d.coverage.mean(axis=0)),
             f"{100 * d.gaps(nominal).mean():.2f}", f"{100 * d.gaps(nominal).max():.2f}",
             " / ".join(f"{v:.2f}" for v in d.winkler.mean(axis=0))] for d in designs]
    print(f"\nonline designs in {len(runs)} validation runs ("
          + ", ".join(f"{r.name}: {int(r.scored.sum())} origins scored" for r in runs)
          + f"), each from its first day, scored from {args.warmup_days:g} days after it")
    print(markdown_table(["design", f"coverage {' / '.join(names)} % (mean over runs)",
                          "mean gap (points)", "worst gap (points)",
                          f"Winkler {' / '.join(names)} %"], rows))
    best = choose_design(designs, nominal, args.tolerance / 100)
    within = best.gaps(nominal).max() <= args.tolerance / 100
    print(f"\nchoice ({'the sharpest within' if within else 'none within; the smallest worst'}"
          f" {args.tolerance:g} points): {best.name}")


if __name__ == "__main__":
    main()
