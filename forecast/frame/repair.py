"""Repairs of one series on its grid: inserted timestamps, bounds, causal fill, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecast.frame.schema import MISSING_SUFFIX, DataError, FrameSpec, RepairReport, step_text
from forecast.frame.schema import where as _where

# a series may be padded to at most this many grid steps per row (plus the slack): a guard
# against a wrong step (1 ns between two rows a year apart) exhausting memory
MAX_GRID_FACTOR = 100
MAX_GRID_SLACK = 100_000


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, stop) index runs where mask is True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def ffill(v: np.ndarray, missing: np.ndarray, seg_start: np.ndarray) -> np.ndarray:
    """Carry the last observed value forward, never across a segment start."""
    last = np.where(missing, -1, np.arange(len(v)))
    np.maximum.accumulate(last, out=last)
    return np.where(last >= seg_start, v[np.maximum(last, 0)], np.nan)


def _stamp(ns: int) -> str:
    return str(pd.Timestamp(int(ns), tz="UTC"))


def repair_series(
    name: str, times: np.ndarray, values: dict[str, np.ndarray], step: pd.Timedelta,
    spec: FrameSpec, report: RepairReport, path: str | Path = "",
) -> dict[str, np.ndarray | str]:
    """One series (sorted int64 ns ``times``) on its full grid, repaired, as columns of the
    frame schema; the rows inside long gaps are left out."""
    n_grid = int((times[-1] - times[0]) // step.value + 1)
    if n_grid > MAX_GRID_FACTOR * len(times) + MAX_GRID_SLACK:
        raise DataError(
            f"{_where(path, spec.time_column)}: series '{name}' spans {n_grid} steps of "
            f"{step_text(step)} from {_stamp(times[0])} to {_stamp(times[-1])} but has only "
            f"{len(times)} rows; the timestamps or the frequency are wrong (set data.freq, "
            "or fix the timestamps)"
        )
    grid = times[0] + np.arange(n_grid, dtype=np.int64) * step.value
    pos = (times - times[0]) // step.value
    report.timestamps_inserted += n_grid - len(times)
    cols = spec.value_columns
    full = {}
    for col in cols:
        v = values[col]
        if n_grid != len(times):
            v = np.full(n_grid, np.nan)
            v[pos] = values[col]
        lo, hi = spec.bounds.get(col, (-np.inf, np.inf))
        oob = (v < lo) | (v > hi)
        n_oob = int(oob.sum())
        report.out_of_bounds[col] = report.out_of_bounds.get(col, 0) + n_oob
        if n_oob:
            v = np.where(oob, np.nan, v)
        full[col] = v
    broken = np.zeros(n_grid, bool)
    nan = {col: np.isnan(full[col]) for col in cols}
    for col in cols:
        if not nan[col].any():
            continue
        for a, b in runs(nan[col]):
            if b - a > spec.max_gap:
                broken[a:b] = True
                report.long_gaps.append({
                    "series": name, "column": col, "steps": int(b - a),
                    "start": _stamp(grid[a]), "end": _stamp(grid[b - 1]),
                })
    segment = np.cumsum(np.concatenate([[0], (broken[1:] != broken[:-1]) & ~broken[1:]]))
    seg_start = np.searchsorted(segment, segment, side="left")  # segment is non-decreasing
    keep = ~broken
    data: dict[str, np.ndarray | str] = {"series": name, "timestamp": grid, "segment": segment}
    for col in cols:
        missing = nan[col]
        filled = ffill(full[col], missing, seg_start) if missing.any() else full[col]
        report.filled[col] = report.filled.get(col, 0) + int(
            (missing & keep & ~np.isnan(filled)).sum())
        data[col] = filled
        data[col + MISSING_SUFFIX] = missing.astype(np.float64)
    report.missing_targets += int((nan[spec.target] & keep).sum())
    if not keep.all():
        data = {k: v if isinstance(v, str) else v[keep] for k, v in data.items()}
    return data


def why_empty(name: str, values: dict[str, np.ndarray], spec: FrameSpec) -> str | None:
    """Why a series has nothing to read (a value column without any value), or None."""
    for col in spec.value_columns:
        v = values[col]
        lo, hi = spec.bounds.get(col, (-np.inf, np.inf))
        if not ((v >= lo) & (v <= hi)).any():
            return (f"column '{col}', series '{name}': no value in any of its {len(v)} rows "
                    "(all empty or outside the bounds); nothing to forecast from")
    return None
