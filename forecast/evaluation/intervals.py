"""Quantile forecasts scored: pinball loss per level, CRPS, coverage of the central
intervals per horizon step, width and Winkler score; the conformal calibration window
(the end of validation, reading no training row) and the persistence-error baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.evaluation.protocols import Forecasts
from forecast.features import SeriesArrays
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
                       days: float, step_ns: int, scaled: bool = False) -> Forecasts:
    """Online split-conformal: the forecasts of ``fc`` selected by ``target`` (a mask),
    each day's with offsets from the honest forecasts of the ``days`` before that day
    whose targets were all observed by its start (nothing after the origin is read).

    ``fc``: honest quantile forecasts (``pred`` [N, H, Q]) of the calibration origins and
    the scored ones; the window moves with the origin, so it follows a change of season
    that a window fixed at the end of validation cannot.
    """
    horizon = fc.target.shape[1]
    day_ns = 86_400 * 10**9
    span = int(days * day_ns)
    known = fc.origin + horizon * step_ns  # when each forecast's last target is observed
    out = fc.pred[target].copy()
    origin = fc.origin[target]
    day = origin // day_ns * day_ns
    for d in np.unique(day):
        window = (known <= d) & (fc.origin >= d - span)
        if not window.any():
            raise ValueError(f"rolling calibration: no forecast observed in the {days} days "
                             f"before {np.datetime64(int(d), 'ns')}")
        off = conformal_offsets(fc.target[window], fc.pred[window], levels, scaled)
        rows = day == d
        out[rows] = apply_offsets(out[rows], levels, off, scaled)
    return Forecasts(fc.series[target], origin, out, fc.target[target], fc.last[target])


def tracked_calibrated(fc: Forecasts, target: np.ndarray, levels: Sequence[float],
                       step_ns: int, rate: float, scaled: bool = False) -> Forecasts:
    """Online conformal by coverage tracking: the forecasts of ``fc`` selected by
    ``target`` (a mask), each day's widened by the offsets [P, H] in force that day.

    The offsets start at 0 at ``fc``'s first day; at the end of each day every offset
    moves by ``rate`` times (the share of targets it missed - its nominal miss rate),
    over the forecasts whose targets were all observed that day, counted with the
    offsets in force: it grows while the intervals miss too often and shrinks while
    they cover too much, so coverage follows its nominal level through a change of
    season (an online quantile of the conformity score). Nothing after an origin is
    read: a day's offsets come from forecasts whose targets were observed before it.
    """
    horizon = fc.target.shape[1]
    day_ns = 86_400 * 10**9
    pairs = central_pairs(levels)
    off = np.zeros((len(pairs), horizon))
    issued = fc.origin // day_ns
    known = (fc.origin + horizon * step_ns - 1) // day_ns  # the day its last target is seen
    out = fc.pred.copy()
    for d in np.unique(np.concatenate([issued, known])):  # in time order
        rows = issued == d
        if rows.any():
            out[rows] = apply_offsets(fc.pred[rows], levels, off, scaled)
        seen = known == d
        if seen.any():
            widened = apply_offsets(fc.pred[seen], levels, off, scaled)
            y = fc.target[seen]
            ok = np.isfinite(y)
            n = np.maximum(ok.sum(axis=0), 1)
            for p, (i, j, nominal) in enumerate(pairs):
                miss = ((y < widened[..., i]) | (y > widened[..., j])) & ok
                off[p] += rate * np.where(ok.any(axis=0), miss.sum(axis=0) / n
                                          - (1 - nominal), 0.0)
    return Forecasts(fc.series[target], fc.origin[target], out[target], fc.target[target],
                     fc.last[target])
