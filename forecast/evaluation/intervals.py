"""Quantile forecasts scored: pinball loss per level, CRPS, coverage of the central
intervals per horizon step, width and Winkler score; the conformal calibration window
(the end of validation, reading no training row) and the persistence-error baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecast.evaluation.protocols import Forecasts, forecast_origins
from forecast.features import DataSpec, SeriesArrays

if TYPE_CHECKING:
    import torch

    from forecast.data import ForecastDataModule
from forecast.quantiles import (
    apply_offsets,
    central_pairs,
    conformal_offsets,
    coverage,
    crps,
    level_key,
    level_name,
    pinball,
    winkler,
)


def interval_scores(target: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> dict:
    """Scores of quantile forecasts q [N, H, Q] against targets [N, H] (NaN: missing).

    Pinball loss per level, CRPS, MAE of the median, the share of targets at or below
    each quantile, and per central interval (``80`` for 0.1 / 0.9): its coverage overall
    and per horizon step, its nominal level, mean width and Winkler score.
    """
    levels = [float(v) for v in levels]
    keep = np.isfinite(target)
    med = q[..., levels.index(0.5)]
    out = {
        "pinball": {level_key(v): float(p) for v, p in zip(levels, pinball(target, q, levels),
                                                           strict=True)},
        "crps": crps(target, q, levels),
        "median_mae": float(np.abs(target - med)[keep].mean()),
        "below": {level_key(v): float(((target <= q[..., i]) & keep).sum() / keep.sum())
                  for i, v in enumerate(levels)},
        "intervals": {},
    }
    for i, j, nominal in central_pairs(levels):
        lo, hi = q[..., i], q[..., j]
        out["intervals"][level_name(nominal)] = {
            "nominal": nominal,
            "coverage": float(coverage(target, lo, hi)),
            "coverage_by_horizon": coverage(target, lo, hi, axis=0).tolist(),
            "width": float((hi - lo)[keep].mean()),
            "winkler": winkler(target, lo, hi, nominal),
        }
    return out


def coverage_keys(scores: dict, suffix: str = "") -> dict[str, float]:
    """``{'coverage_80<suffix>': ..., 'coverage_90<suffix>': ...}`` from :func:`interval_scores`."""
    return {f"coverage_{name}{suffix}": v["coverage"] for name, v in scores["intervals"].items()}


def calibration_origins(arrays: list[SeriesArrays], origins: list[np.ndarray],
                        val_start: pd.Timestamp, window_start: pd.Timestamp,
                        history: int) -> list[np.ndarray]:
    """Validation origins of the calibration window: those issued at or after
    ``window_start`` whose whole input window (``history`` rows back) lies at or after
    ``val_start``, so calibration reads no training row, input or target."""
    out = []
    for a, o in zip(arrays, origins, strict=True):
        o = o[o - history >= 0]
        out.append(o[(a.times[o - history] >= val_start.value)
                     & (a.times[o] >= window_start.value)])
    return out


def unseen_quantiles(model: torch.nn.Module, arrays: list[SeriesArrays], spec: DataSpec,
                     dm: ForecastDataModule, splits: Sequence[str], batch_size: int = 256
                     ) -> Forecasts:
    """Honest quantile forecasts ``pred`` [N, H, Q] at every origin of ``splits`` (in
    order, e.g. ``("val",)``) whose whole input window lies at or after the first split's
    start: no training row, input or target, is read."""
    history = model.receptive_field - 1
    per_split = [dm.split_origins(s, history) for s in splits]
    origins = [np.concatenate(o) for o in zip(*per_split, strict=True)]
    start = dm.splits[splits[0]][0]
    return forecast_origins(model, arrays, calibration_origins(arrays, origins, start, start,
                                                               history),
                            spec, "honest", dm.span, batch_size, quantiles=True)


@dataclass
class Calibration:
    """Conformal offsets [P, H] of the central intervals, from ``n_origins`` honest
    forecasts of the calibration window."""

    offsets: np.ndarray
    n_origins: int
    first_origin: str
    last_origin: str
    scaled: bool = False  # offsets are shares of each interval's width

    def to_dict(self, levels: Sequence[float]) -> dict:
        return {"offsets": {level_name(c): off.tolist()
                            for (_, _, c), off in zip(central_pairs(levels), self.offsets,
                                                      strict=True)},
                "scaled": self.scaled, "n_origins": self.n_origins,
                "first_origin": self.first_origin, "last_origin": self.last_origin}


def calibrate(fc: Forecasts, levels: Sequence[float], scaled: bool = False) -> Calibration:
    """Split-conformal offsets per horizon step from honest quantile forecasts ``fc``
    (``pred`` [N, H, Q]) of the calibration window (``scaled``: shares of the width)."""
    if len(fc.origin) == 0:
        raise ValueError("conformal calibration: the calibration window holds no origin; "
                         "lengthen the validation split or calibration_days")
    days = np.datetime_as_string(np.sort(fc.origin)[[0, -1]].astype("datetime64[ns]"), "m")
    return Calibration(conformal_offsets(fc.target, fc.pred, levels, scaled), len(fc.origin),
                       str(days[0]), str(days[1]), scaled)


def calibrated(fc: Forecasts, levels: Sequence[float], cal: Calibration) -> Forecasts:
    """``fc`` with its central intervals widened (or narrowed) by the offsets."""
    return Forecasts(fc.series, fc.origin,
                     apply_offsets(fc.pred, levels, cal.offsets, cal.scaled), fc.target, fc.last)


def persistence_quantiles(train: Forecasts, test: Forecasts, levels: Sequence[float]
                          ) -> Forecasts:
    """The baseline interval: the last observed value plus the empirical quantiles, per
    horizon step, of persistence's errors on training origins (``train``: persistence
    forecasts there). -> forecasts of the ``test`` origins with ``pred`` [N, H, Q]."""
    err = train.target - train.pred  # [N_train, H]
    eq = np.stack([np.nanquantile(err, v, axis=0) for v in levels], axis=-1)  # [H, Q]
    return Forecasts(test.series, test.origin, test.last[:, None, None] + eq[None],
                     test.target, test.last)


def rolling_calibrated(fc: Forecasts, target: np.ndarray, levels: Sequence[float],
                       days: float, step_ns: int, scaled: bool = False,
                       rate: float = 0.0) -> Forecasts:
    """Online split-conformal: the forecasts of ``fc`` selected by ``target`` (a mask),
    each day's with offsets from the honest forecasts of the ``days`` before that day
    whose targets were all observed by its start (nothing after the origin is read).

    ``fc``: honest quantile forecasts (``pred`` [N, H, Q]) of the calibration origins and
    the scored ones, in any order; the window moves with the origin, so it follows a
    change of season that a window fixed at the end of validation cannot.

    ``rate`` > 0 also tracks coverage (adaptive conformal inference): each pair and step
    asks the window for a coverage level that starts at its nominal one and, at the end
    of every day, moves by ``rate`` times (the share of that day's observed forecasts its
    interval missed - the nominal miss rate), kept within [0, 1]. From the first day with
    a window, every forecast of ``fc`` gets its interval, so that the level has moved
    through the calibration days before the first scored one. Scale-free: the window's
    scores give the size, the level only their rank.
    """
    horizon = fc.target.shape[1]
    day_ns = 86_400 * 10**9
    span = int(days * day_ns)
    pairs = central_pairs(levels)
    nominal = np.array([c for *_, c in pairs])[:, None].repeat(horizon, axis=1)  # [P, H]
    cover = nominal.copy()
    known = fc.origin + horizon * step_ns  # when each forecast's last target is observed
    issued = fc.origin // day_ns
    seen_on = (known - 1) // day_ns  # the day during which that happens
    out = fc.pred.copy()
    done = np.zeros(len(out), bool)  # forecasts that got their online interval
    active = np.unique(issued[target]) if rate == 0 else np.unique(
        np.concatenate([issued, seen_on]))
    for d in active:  # in time order
        rows = (issued == d) & (target | (rate > 0))
        window = (known <= d * day_ns) & (fc.origin >= d * day_ns - span)
        if rows.any() and window.any():
            off = conformal_offsets(fc.target[window], fc.pred[window], levels, scaled,
                                    cover if rate > 0 else None)
            out[rows] = apply_offsets(fc.pred[rows], levels, off, scaled)
            done |= rows
        elif (rows & target).any():
            raise ValueError(f"rolling calibration: no forecast observed in the {days} days "
                             f"before {np.datetime64(int(d * day_ns), 'ns')}")
        seen = (seen_on == d) & done
        if rate > 0 and seen.any():  # the day's observed forecasts, with their intervals
            y, issued_q = fc.target[seen], out[seen]
            ok = np.isfinite(y)
            n = np.maximum(ok.sum(axis=0), 1)
            for p, (i, j, c) in enumerate(pairs):
                miss = ((y < issued_q[..., i]) | (y > issued_q[..., j])) & ok
                step = np.where(ok.any(axis=0), miss.sum(axis=0) / n - (1 - c), 0.0)
                cover[p] = np.clip(cover[p] + rate * step, 0.0, 1.0)
    return Forecasts(fc.series[target], fc.origin[target], out[target], fc.target[target],
                     fc.last[target])


@dataclass
class DesignScore:
    """One online calibration design scored on several validation runs: per run, the
    coverage [P] and Winkler score [P] of each central interval."""

    name: str
    coverage: np.ndarray  # [runs, P]
    winkler: np.ndarray  # [runs, P]

    def gaps(self, nominal: np.ndarray) -> np.ndarray:
        """[runs, P] absolute coverage gaps to the nominal levels [P]."""
        return np.abs(self.coverage - nominal[None])


def choose_design(designs: Sequence[DesignScore], nominal: Sequence[float],
                  tolerance: float) -> DesignScore:
    """The sharpest design (lowest mean Winkler score) among those whose every interval
    covers within ``tolerance`` of its nominal level in every run; when none does, the
    one with the smallest worst gap (then the smallest mean gap)."""
    nom = np.asarray(nominal, float)
    within = [d for d in designs if d.gaps(nom).max() <= tolerance]
    if within:
        return min(within, key=lambda d: float(d.winkler.mean()))
    return min(designs, key=lambda d: (float(d.gaps(nom).max()), float(d.gaps(nom).mean())))
