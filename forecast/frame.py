"""Read a CSV into the one frame schema, with documented repairs.

Everything that is wrong with a file raises :class:`DataError` (a ``ValueError``)
with one line naming the file, the column and the row; everything that is
repaired is counted in a :class:`RepairReport`. Downstream code trusts the frame.

The schema (:attr:`Frame.data`), one row per series and grid step, sorted:

- ``series`` (str), ``timestamp`` (UTC), ``segment`` (int: no window may span two)
- one float column per value column (target first, then covariates), carried
  forward over short gaps, NaN only where a segment starts with a gap
- ``<column>_missing`` (0.0 / 1.0): the value was missing or impossible

Repairs (counted, logged): rows out of time order are sorted; missing timestamps are
inserted; gaps up to ``max_gap`` steps are carried forward (indicator set); longer gaps
split the series; values outside ``bounds`` become missing; a UTF-8 BOM, blank lines
and extra columns are ignored. Errors: empty file, header only, missing columns, a
duplicate header, rows with the wrong number of fields, a file that is not UTF-8 text
(binary, other encodings, damaged gzip), another delimiter, non-numeric or infinite
values, unreadable or empty timestamps, duplicate timestamps, an irregular or
ambiguous step, timestamps that span far more steps than there are rows.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

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
_EPOCH = re.compile(r"^\d{9,11}(\.\d*)?$")
MISSING_SUFFIX = "_missing"
# a series may be padded to at most this many grid steps per row (plus the slack): a guard
# against a wrong step (1 ns between two rows a year apart) exhausting memory
MAX_GRID_FACTOR = 100
MAX_GRID_SLACK = 100_000


class DataError(ValueError):
    """Bad input: one line naming file, column and row, and how to fix it."""


def where(path: str | Path, column: str | None = None, row: int | None = None) -> str:
    """Location prefix for messages: ``file: column 'c', row r (line l)``."""
    parts = [str(path)]
    if column is not None:
        parts.append(f"column '{column}'")
    if row is not None:
        parts.append(f"row {row} (line {row + 1})")
    return ": " .join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def step_text(step: pd.Timedelta) -> str:
    """A grid step as a frequency string: '1h', '10min', '1D', '90s'."""
    try:
        text = pd.tseries.frequencies.to_offset(step).freqstr
    except ValueError:
        return str(step)
    return text if text[:1].isdigit() else f"1{text}"


@dataclass(frozen=True)
class FrameSpec:
    """What to read from a file and how to repair it."""

    time_column: str
    target: str
    covariates: tuple[str, ...] = ()
    series_id: str | None = None
    freq: str | None = None
    time_format: str | None = None
    max_gap: int = 12
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def value_columns(self) -> list[str]:
        return [self.target, *self.covariates]


@dataclass
class RepairReport:
    """Counts of every repair made, for the log and the report."""

    rows_reordered: int = 0
    timestamps_inserted: int = 0
    out_of_bounds: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    long_gaps: list[dict] = field(default_factory=list)
    missing_targets: int = 0

    def lines(self) -> list[str]:
        out = []
        if self.rows_reordered:
            out.append(f"{self.rows_reordered} rows were out of time order: sorted")
        if self.timestamps_inserted:
            out.append(f"{self.timestamps_inserted} missing timestamps inserted")
        for col, n in self.out_of_bounds.items():
            if n:
                out.append(f"{n} impossible values in '{col}' made missing")
        for col, n in self.filled.items():
            if n:
                out.append(f"{n} missing values in '{col}' carried forward (indicator set)")
        for gap in self.long_gaps:
            out.append(
                f"gap of {gap['steps']} steps in '{gap['column']}' of series {gap['series']} "
                f"from {gap['start']} to {gap['end']}: series split there"
            )
        if self.missing_targets:
            out.append(f"{self.missing_targets} missing targets masked out of losses and metrics")
        return out

    def to_dict(self) -> dict:
        return {
            "rows_reordered": self.rows_reordered,
            "timestamps_inserted": self.timestamps_inserted,
            "out_of_bounds": dict(self.out_of_bounds),
            "filled": dict(self.filled),
            "long_gaps": list(self.long_gaps),
            "missing_targets": self.missing_targets,
        }


@dataclass
class Frame:
    """A validated, repaired frame and what was done to it."""

    data: pd.DataFrame
    spec: FrameSpec
    freq: pd.Timedelta
    path: str
    repairs: RepairReport

    @property
    def series_names(self) -> list[str]:
        return list(dict.fromkeys(self.data["series"]))


# ---------------------------------------------------------------- reading text


def read_table(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a comma-separated file (``.gz`` allowed), all as text."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CSV file") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: damaged gzip file ({err})") from None
    if b"\x00" in raw[:4096]:
        raise DataError(f"{path}: binary data (NUL bytes): not a CSV text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: byte 0x{raw[err.start]:02x} is not UTF-8; "
            "re-save the file as UTF-8"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: empty file; expected a header line and data rows")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    rows = [r for r in rows if r]  # blank lines carry nothing
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if len(header) == 1:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in header[0]:
                raise DataError(
                    f"{path}: the header has one column holding '{sep}': the file looks "
                    f"{name}-delimited; save it comma-separated"
                )
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen and name:
            raise DataError(
                f"{path}: column '{name}' appears twice in the header "
                f"(positions {seen[name] + 1} and {i + 1}); rename one"
            )
        seen[name] = i
    if not body:
        raise DataError(f"{path}: header only, no data rows")
    for r, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise DataError(
                f"{where(path, row=r)}: {len(row)} fields where the header has {len(header)}; "
                "fix the row's delimiters or quoting"
            )
    return header, body


COLUMNS_FIX = "rename the columns or set data.time_column / data.target / data.covariates"


def require_columns(path: str | Path, header: Sequence[str], columns: Sequence[str],
                    fix: str = COLUMNS_FIX) -> None:
    """Raise naming every required column the header lacks, and what is expected."""
    missing = [c for c in dict.fromkeys(columns) if c not in header]
    if not missing:
        return
    hints = []
    for col in missing:
        near = difflib.get_close_matches(col, [h for h in header if h not in columns], n=1)
        if near:
            hints.append(f"'{col}' -> '{near[0]}'?")
    hint = f"; did you mean {', '.join(hints)}" if hints else ""
    names = ", ".join(f"'{c}'" for c in missing)
    raise DataError(
        f"{path}: column{'s' if len(missing) > 1 else ''} {names} not found; expected columns "
        f"{list(dict.fromkeys(columns))}, the header has {list(header)}{hint}; {fix}"
    )


# ---------------------------------------------------------------- parsing values


def parse_numbers(path: str | Path, column: str, values: Sequence[str]) -> np.ndarray:
    """Floats from text; NA tokens become NaN; anything else non-numeric is an error."""
    stripped = [v.strip() for v in values]
    if "_" not in "".join(stripped):  # fast path: plain numbers (float() would take 1_000)
        try:
            fast = np.array(stripped, dtype=np.float64)
        except ValueError:
            pass
        else:
            if np.isfinite(fast).all():
                return fast
    arr = np.asarray(stripped, dtype=object)
    is_na = np.fromiter((v.lower() in NA_TOKENS for v in arr), bool, len(arr))
    out = pd.to_numeric(pd.Series(np.where(is_na, None, arr)), errors="coerce").to_numpy(
        dtype=float
    )
    bad = np.flatnonzero(np.isnan(out) & ~is_na)
    if bad.size:
        r = int(bad[0])
        raise DataError(
            f"{where(path, column, r + 1)}: value '{arr[r]}' is not a number; "
            "use digits, or leave the cell empty / NA for a missing value"
        )
    inf = np.flatnonzero(np.isinf(out))
    if inf.size:
        r = int(inf[0])
        raise DataError(
            f"{where(path, column, r + 1)}: value '{arr[r]}' is infinite; "
            "use a finite number or leave the cell empty for a missing value"
        )
    return out


def parse_times(
    path: str | Path, column: str, values: Sequence[str], time_format: str | None = None
) -> pd.DatetimeIndex:
    """UTC timestamps from ISO 8601, ``Y/m/d H:M``, day-first ``d.m.Y H:M:S`` or epoch seconds.

    Naive timestamps are taken as UTC. One format must parse every row.
    """
    s = pd.Series([v.strip() for v in values], dtype=object)
    empty = np.flatnonzero(s.eq("").to_numpy())
    if empty.size:
        raise DataError(f"{where(path, column, int(empty[0]) + 1)}: empty timestamp")
    if time_format is not None:
        candidates: tuple[str, ...] = (time_format,)
    elif all(_EPOCH.match(v) for v in s.iloc[:1000]):
        candidates = ("epoch",)
    else:
        candidates = TIME_FORMATS
    best: tuple[int, int, str] | None = None  # (n parsed, first failure, format)
    for fmt in candidates:
        try:
            if fmt == "epoch":
                nums = pd.to_numeric(s, errors="coerce")
                parsed = pd.to_datetime(nums, unit="s", utc=True, errors="coerce")
            else:
                parsed = pd.to_datetime(s, format=fmt, utc=True, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            continue
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if not bad.size:
            return pd.DatetimeIndex(parsed).as_unit("ns")
        n_ok = len(s) - bad.size
        if best is None or n_ok > best[0]:
            best = (n_ok, int(bad[0]), fmt)
    r = best[1] if best is not None and best[0] > 0 else 0
    raise DataError(
        f"{where(path, column, r + 1)}: cannot read timestamp '{s.iloc[r]}'; use ISO 8601 "
        "(2013-01-01T06:00:00Z), '2010/01/01 00:00', '01.01.2009 00:10:00' or epoch "
        "seconds, or set data.time_format"
    )


def infer_freq(path: str | Path, column: str, times: pd.DatetimeIndex, series: np.ndarray,
               freq: str | None) -> pd.Timedelta:
    """The grid step: given, or the most common step, which every step must be a multiple of."""
    t = times.asi8
    same = series[1:] == series[:-1]
    steps = (t[1:] - t[:-1])[same]
    if freq is not None:
        try:
            step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
        except (ValueError, TypeError):
            raise DataError(f"{path}: freq '{freq}' is not a frequency (try '1h', '10min', '1D')") \
                from None
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
    if step <= pd.Timedelta(0):
        raise DataError(f"{path}: freq '{freq}' must be positive")
    off = np.flatnonzero(steps % step.value != 0)
    if off.size:
        idx = np.flatnonzero(same)[off[0]] + 1
        raise DataError(
            f"{where(path, column, int(idx) + 1)}: irregular timestamp {times[idx]}: "
            f"{step_text(pd.Timedelta(int(steps[off[0]]), unit='ns'))} after the previous row, "
            f"not a multiple of the step {step_text(step)}; resample the file to a regular grid"
        )
    return step


# ---------------------------------------------------------------- repairs


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, stop) index runs where mask is True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def _repair_series(
    name: str, times: pd.DatetimeIndex, values: dict[str, np.ndarray], step: pd.Timedelta,
    spec: FrameSpec, report: RepairReport, path: str | Path = "",
) -> pd.DataFrame:
    n_grid = (times.asi8[-1] - times.asi8[0]) // step.value + 1
    if n_grid > MAX_GRID_FACTOR * len(times) + MAX_GRID_SLACK:
        raise DataError(
            f"{where(path, spec.time_column)}: series '{name}' spans {n_grid} steps of "
            f"{step_text(step)} "
            f"from {times[0]} to {times[-1]} but has only {len(times)} rows; the timestamps or "
            "the frequency are wrong (set data.freq, or fix the timestamps)"
        )
    grid = pd.date_range(times[0], times[-1], freq=step)
    pos = ((times.asi8 - grid.asi8[0]) // step.value).astype(np.int64)
    report.timestamps_inserted += len(grid) - len(times)
    cols = spec.value_columns
    full = {}
    for col in cols:
        v = np.full(len(grid), np.nan)
        v[pos] = values[col]
        lo, hi = spec.bounds.get(col, (-np.inf, np.inf))
        oob = (v < lo) | (v > hi)
        report.out_of_bounds[col] = report.out_of_bounds.get(col, 0) + int(oob.sum())
        v[oob] = np.nan
        full[col] = v
    broken = np.zeros(len(grid), bool)
    for col in cols:
        for a, b in _runs(np.isnan(full[col])):
            if b - a > spec.max_gap:
                broken[a:b] = True
                report.long_gaps.append({
                    "series": name, "column": col, "steps": int(b - a),
                    "start": str(grid[a]), "end": str(grid[b - 1]),
                })
    segment = np.cumsum(np.concatenate([[0], (broken[1:] != broken[:-1]) & ~broken[1:]]))
    seg_start = np.searchsorted(segment, segment, side="left")  # segment is non-decreasing
    keep = ~broken
    data: dict[str, object] = {"series": name, "timestamp": grid, "segment": segment}
    for col in cols:
        missing = np.isnan(full[col])
        filled = _ffill(full[col], missing, seg_start)
        n_filled = int((missing & keep & ~np.isnan(filled)).sum())
        report.filled[col] = report.filled.get(col, 0) + n_filled
        data[col] = filled
        data[col + MISSING_SUFFIX] = missing.astype(np.float64)
    report.missing_targets += int((np.isnan(full[spec.target]) & keep).sum())
    frame = pd.DataFrame(data)
    return frame[keep] if not keep.all() else frame


def _ffill(v: np.ndarray, missing: np.ndarray, seg_start: np.ndarray) -> np.ndarray:
    """Carry the last observed value forward, never across a segment start."""
    last = np.where(missing, -1, np.arange(len(v)))
    np.maximum.accumulate(last, out=last)
    return np.where(last >= seg_start, v[np.maximum(last, 0)], np.nan)


def read_frame(path: str | Path, spec: FrameSpec, columns_fix: str = COLUMNS_FIX) -> Frame:
    """Read, validate and repair one CSV file (see the module docstring for the schema);
    ``columns_fix`` ends the message for missing columns."""
    header, body = read_table(path)
    needed = [spec.time_column, *spec.value_columns]
    if spec.series_id is not None:
        needed.append(spec.series_id)
    require_columns(path, header, needed, columns_fix)
    by_position = list(zip(*body, strict=True))  # rows all have the header's length
    col = {name: by_position[header.index(name)] for name in needed}
    times = parse_times(path, spec.time_column, col[spec.time_column], spec.time_format)
    values = {c: parse_numbers(path, c, col[c]) for c in spec.value_columns}
    if spec.series_id is not None:
        series = np.asarray([v.strip() for v in col[spec.series_id]], dtype=object)
        empty = np.flatnonzero(series == "")
        if empty.size:
            raise DataError(f"{where(path, spec.series_id, int(empty[0]) + 1)}: empty series id")
    else:
        series = np.full(len(body), Path(path).name.split(".")[0], dtype=object)
    rows = np.arange(1, len(body) + 1)
    order = np.lexsort((times.asi8, pd.factorize(series)[0]))
    report = RepairReport(rows_reordered=int((order != np.arange(len(order))).sum()))
    times, series, rows = times[order], series[order], rows[order]
    values = {c: v[order] for c, v in values.items()}
    dup = np.flatnonzero((series[1:] == series[:-1]) & (times.asi8[1:] == times.asi8[:-1]))
    if dup.size:
        i = int(dup[0])
        name = f" in series '{series[i]}'" if spec.series_id else ""
        raise DataError(
            f"{where(path, spec.time_column, int(rows[i + 1]))}: duplicate timestamp {times[i]}"
            f"{name} (also row {rows[i]}); keep one row per timestamp"
            + ("" if spec.series_id else
               ", or if the file holds several series name their id column in data.series_id")
        )
    step = infer_freq(path, spec.time_column, times, series, spec.freq)
    parts = []
    for name in dict.fromkeys(series):
        sel = series == name
        parts.append(_repair_series(
            str(name), times[sel], {c: v[sel] for c, v in values.items()}, step, spec, report,
            path,
        ))
    data = pd.concat(parts, ignore_index=True)
    frame = Frame(data=data, spec=spec, freq=step, path=str(path), repairs=report)
    for line in report.lines():
        log.info("%s: %s", path, line)
    return frame
