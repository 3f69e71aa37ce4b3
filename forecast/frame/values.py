"""Values from text: numbers, timestamps (several formats, named when ambiguous), the step."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.frame.schema import (
    FIRST_TIME,
    LAST_TIME,
    DataError,
    printable,
    step_text,
    where,
)

NA_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a", "-"})
TIME_FORMATS = (
    "ISO8601",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
EPOCH_FORMATS = {"epoch": "s", "epoch_ms": "ms"}  # data.time_format values for epoch numbers
_EPOCH_S = re.compile(r"^\d{9,11}(\.\d*)?$")
_EPOCH_MS = re.compile(r"^\d{12,14}(\.\d*)?$")
_COMPACT = re.compile(r"^\d{10}$")
TIME_HELP = ("use ISO 8601 (2013-01-01T06:00:00Z), '2010/01/01 00:00', '01.01.2009 00:10:00', "
             "epoch seconds or epoch milliseconds, or set data.time_format")
_RANGE = f"{FIRST_TIME:%Y-%m-%d %H:%M} to {LAST_TIME:%Y-%m-%d %H:%M} UTC"


def _loc(path: str | Path, column: str, lines: np.ndarray | None, first: int | np.ndarray,
         i: int) -> str:
    """``first``: the data row number of value 0, or each value's row number (a subset)."""
    row = int(first[i]) if isinstance(first, np.ndarray) else first + i
    return where(path, column, row, int(lines[i]) if lines is not None else None)


def parse_numbers(path: str | Path, column: str, values: Sequence[str],
                  first: int | np.ndarray = 1, lines: np.ndarray | None = None) -> np.ndarray:
    """Floats from text; NA tokens become NaN; anything else non-numeric is an error.

    ``first`` is the data row number of ``values[0]`` (or of each value), ``lines`` the
    line of each value."""
    try:
        fast = np.array(values, dtype=np.float64)  # plain numbers; 1_000 would pass float()
    except ValueError:
        pass
    else:
        if np.isfinite(fast).all() and not any("_" in v for v in values):
            return fast
    arr = np.asarray([v.strip() for v in values], dtype=object)
    is_na = np.fromiter((v.lower() in NA_TOKENS for v in arr), bool, len(arr))
    out = pd.to_numeric(pd.Series(np.where(is_na, None, arr)), errors="coerce").to_numpy(
        dtype=float
    )
    bad = np.flatnonzero(np.isnan(out) & ~is_na)
    if bad.size:
        r = int(bad[0])
        raise DataError(f"{_loc(path, column, lines, first, r)}: value "
                        f"'{printable(arr[r])}' is not a number; use digits, or leave the "
                        "cell empty / NA for a missing value")
    inf = np.flatnonzero(np.isinf(out))
    if inf.size:
        r = int(inf[0])
        raise DataError(f"{_loc(path, column, lines, first, r)}: value "
                        f"'{printable(arr[r])}' is infinite; use a finite number or leave the "
                        "cell empty for a missing value")
    return out


def _compact(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y%m%d%H")
    except ValueError:
        return False
    return True


def _detect(path: str | Path, column: str, s: list[str]) -> tuple[str, ...]:
    """Candidate formats for these stamps; compact ``YYYYMMDDHH`` is named, not guessed."""
    sample = s[:1000]
    if all(_EPOCH_MS.match(v) for v in sample):
        return ("epoch_ms",)
    if all(_EPOCH_S.match(v) for v in sample):
        if all(_COMPACT.match(v) and _compact(v) for v in sample):
            raise DataError(
                f"{where(path, column)}: timestamps like '{printable(sample[0])}' read as compact "
                "YYYYMMDDHH dates as well as epoch seconds; write ISO 8601 "
                "(2013-01-01T06:00:00Z), or set data.time_format='%Y%m%d%H' (or 'epoch')")
        return ("epoch",)
    return TIME_FORMATS


def _iso_fast(s: list[str]) -> np.ndarray | None:
    """int64 ns for stamps all shaped ``YYYY-MM-DDTHH:MM:SSZ`` (the common case), else None."""
    if not all(len(v) == 20 and v[10] == "T" and v[19] == "Z" for v in s):
        return None
    try:
        secs = np.array([v[:19] for v in s], dtype="datetime64[s]")
    except ValueError:
        return None
    if np.isnat(secs).any():
        return None
    lo, hi = np.datetime64(FIRST_TIME.value // 10**9 + 1, "s"), np.datetime64(
        LAST_TIME.value // 10**9, "s")
    if ((secs < lo) | (secs > hi)).any():
        return None  # the general path names the out-of-range stamp
    return secs.astype("datetime64[ns]").astype(np.int64)


def _out_of_range(value: str, fmt: str) -> bool:
    """Whether ``value`` is a real time in ``fmt`` that pandas' nanoseconds cannot hold."""
    if fmt in EPOCH_FORMATS:
        try:
            number = float(value)
        except ValueError:
            return False
        ns = number * (1e9 if fmt == "epoch" else 1e6)
        return not FIRST_TIME.value <= ns <= LAST_TIME.value
    try:
        if fmt == "ISO8601":
            t = np.datetime64(value.rstrip("Z").split("+")[0], "s")
        else:
            t = np.datetime64(datetime.strptime(value, fmt), "s")
    except (ValueError, TypeError, OverflowError):
        return False
    return not FIRST_TIME.value // 10**9 < t.astype(np.int64) < LAST_TIME.value // 10**9


def parse_times(path: str | Path, column: str, values: Sequence[str],
                time_format: str | None = None) -> pd.DatetimeIndex:
    """UTC timestamps (see :func:`read_times`) of values from row 1 on."""
    ns, _ = read_times(path, column, values, time_format)
    return pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC")


def read_times(path: str | Path, column: str, values: Sequence[str],
               time_format: str | None = None, first: int | np.ndarray = 1,
               lines: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """int64 ns UTC timestamps, and the format that read them all.

    ISO 8601, ``Y/m/d H:M``, day-first ``d.m.Y H:M:S``, epoch seconds or milliseconds
    (``time_format`` 'epoch' / 'epoch_ms', or any strptime format). Naive times are UTC."""
    s = [v.strip() for v in values]
    if time_format in (None, "ISO8601"):
        fast = _iso_fast(s)
        if fast is not None:
            return fast, "ISO8601"
    empty = [i for i, v in enumerate(s) if not v]
    if empty:
        raise DataError(f"{_loc(path, column, lines, first, empty[0])}: empty timestamp")
    candidates = (time_format,) if time_format is not None else _detect(path, column, s)
    best: tuple[int, int, str] | None = None  # (n parsed, first failure, format)
    series = pd.Series(s, dtype=object)
    for fmt in candidates:
        try:
            if fmt in EPOCH_FORMATS:
                nums = pd.to_numeric(series, errors="coerce")
                in_range = nums.abs() < 9.2e18 / (1e9 if fmt == "epoch" else 1e6)
                parsed = pd.to_datetime(nums.where(in_range), unit=EPOCH_FORMATS[fmt], utc=True,
                                        errors="coerce")
            else:
                parsed = pd.to_datetime(series, format=fmt, utc=True, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            continue
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if not bad.size:
            idx = pd.DatetimeIndex(parsed)  # pandas may hold years past 2262 in seconds
            out = np.flatnonzero((idx < FIRST_TIME) | (idx > LAST_TIME))
            if out.size:
                r = int(out[0])
                raise DataError(f"{_loc(path, column, lines, first, r)}: timestamp "
                                f"'{printable(s[r])}' is outside the range that can be "
                                f"represented ({_RANGE}); fix the date")
            return idx.as_unit("ns").asi8.copy(), fmt
        n_ok = len(s) - bad.size
        if best is None or n_ok > best[0]:
            best = (n_ok, int(bad[0]), fmt)
    r = best[1] if best is not None and best[0] > 0 else 0
    fmts = [best[2]] if best is not None and best[0] > 0 else list(candidates)
    if any(_out_of_range(s[r], f) for f in fmts):
        raise DataError(f"{_loc(path, column, lines, first, r)}: timestamp "
                        f"'{printable(s[r])}' is outside the range that can be represented "
                        f"({_RANGE}); fix the date")
    raise DataError(f"{_loc(path, column, lines, first, r)}: cannot read timestamp "
                    f"'{printable(s[r])}'; {TIME_HELP}")


@lru_cache(maxsize=64)
def _step(freq: str) -> pd.Timedelta | None:
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except (ValueError, TypeError):
        return None


def parse_freq(path: str | Path, freq: str) -> pd.Timedelta:
    """A frequency string ('1h', '10min', '3600s') as a positive step."""
    step = _step(freq)
    if step is None:
        raise DataError(f"{path}: freq '{freq}' is not a frequency (try '1h', '10min', '1D')")
    if step <= pd.Timedelta(0):
        raise DataError(f"{path}: freq '{freq}' must be positive")
    return step


def infer_freq(path: str | Path, column: str, times: np.ndarray, series: np.ndarray,
               freq: str | None, rows: np.ndarray, lines: np.ndarray,
               off_grid: dict[int, str] | None = None) -> pd.Timedelta:
    """The grid step: given, or the most common step, which every step must be a multiple of.

    ``times`` (int64 ns) and ``series`` (codes) are sorted; ``rows`` and ``lines`` give each
    sorted row's data row number and line. ``off_grid``: instead of refusing the file, each
    series with a step off the grid is recorded there (code -> message), its first one."""
    same = series[1:] == series[:-1]
    steps = (times[1:] - times[:-1])[same]
    if freq is not None:
        step = parse_freq(path, freq)
    else:
        if steps.size == 0:
            raise DataError(f"{where(path, column)}: one row per series; cannot infer frequency")
        vals, counts = np.unique(steps, return_counts=True)
        step = pd.Timedelta(int(vals[np.argmax(counts)]), unit="ns")
        if counts.max() * 2 < steps.size:
            raise DataError(
                f"{where(path, column)}: ambiguous frequency: the most common step "
                f"{step_text(step)} covers only {counts.max()} of {steps.size} steps; "
                "set data.freq"
            )
    for k in np.flatnonzero(steps % step.value != 0):
        idx = int(np.flatnonzero(same)[k] + 1)
        message = (
            f"{where(path, column, int(rows[idx]), int(lines[idx]))}: irregular timestamp "
            f"{pd.Timestamp(int(times[idx]), tz='UTC')}: "
            f"{step_text(pd.Timedelta(int(steps[k]), unit='ns'))} after the previous row, "
            f"not a multiple of the step {step_text(step)}; resample the file to a regular grid"
        )
        if off_grid is None:
            raise DataError(message)
        off_grid.setdefault(int(series[idx]), message)
    return step
