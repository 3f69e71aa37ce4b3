"""Read a CSV into the one frame schema, with documented repairs.

Everything that is wrong with a file raises :class:`DataError` (a ``ValueError``)
with one line naming the file, the column and the row; everything that is
repaired is counted in a :class:`RepairReport`. Downstream code trusts the frame.

The schema (:attr:`Frame.data`), one row per series and grid step, sorted:

- ``series`` (str), ``timestamp`` (UTC), ``segment`` (int: no window may span two)
- one float column per value column (target first, then covariates), carried
  forward over short gaps, NaN only where a segment starts with a gap
- ``<column>_missing`` (0.0 / 1.0): the value was missing or impossible

Repairs (counted, logged; :mod:`forecast.frame.repair`): rows out of time order are
sorted; missing timestamps are inserted; gaps up to ``max_gap`` steps are carried forward
(indicator set); longer gaps split the series; values outside ``bounds`` become missing; a
UTF-8 BOM, blank lines and extra columns are ignored; UTF-16 with a byte-order mark is
decoded. Errors (:mod:`forecast.frame.text`, :mod:`forecast.frame.values`): a file that is
not a regular file, or too big for the limits; empty file, header only, missing columns, a
duplicate header, rows with the wrong number of fields, a file that is not text (binary,
other encodings, damaged gzip), another delimiter, non-numeric or infinite values,
unreadable, empty or unrepresentable timestamps, duplicate timestamps, an irregular or
ambiguous step, timestamps that span far more steps than there are rows. A series that
keeps no row (a column with no value at all) is named in :attr:`Frame.dropped`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.frame.fastpath import read_plain
from forecast.frame.repair import repair_series, why_empty
from forecast.frame.schema import (
    MISSING_SUFFIX,
    DataError,
    Frame,
    FrameSpec,
    ReadLimits,
    RepairReport,
    step_text,
    where,
)
from forecast.frame.text import COLUMNS_FIX, decode, read_bytes, read_rows, require_columns
from forecast.frame.values import infer_freq, parse_numbers, parse_times, read_times

__all__ = ["COLUMNS_FIX", "MISSING_SUFFIX", "DataError", "Frame", "FrameSpec", "ReadLimits",
           "RepairReport", "parse_numbers", "parse_times", "read_frame", "require_columns",
           "step_text", "where"]

log = logging.getLogger(__name__)


def _kept(codes: np.ndarray, bad: dict[int, str]) -> np.ndarray:
    """Rows of the series not in ``bad`` (code -> why); when none is left, the file is
    refused, naming the first series' reason."""
    keep = ~np.isin(codes, list(bad))
    if not keep.any():
        raise DataError(bad[min(bad)])
    return keep


def _take(keep: np.ndarray, times: np.ndarray, codes: np.ndarray, lines: np.ndarray,
          values: dict[str, np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The rows ``keep`` selects, of every column."""
    return times[keep], codes[keep], lines[keep], {c: v[keep] for c, v in values.items()}


def _parse_chunk(path: str | Path, spec: FrameSpec, columns: list, at: dict[str, int],
                 fmt: str | None, first: int | np.ndarray, lines: np.ndarray
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Times, values and the time format of one chunk's rows (all, or a subset whose row
    numbers ``first`` gives)."""
    t, fmt = read_times(path, spec.time_column, columns[at[spec.time_column]], fmt, first,
                        lines)
    return t, {c: parse_numbers(path, c, columns[at[c]], first, lines)
               for c in spec.value_columns}, fmt


def _parse_by_series(path: str | Path, spec: FrameSpec, columns: list, at: dict[str, int],
                     fmt: str | None, first: int, lines: np.ndarray, codes: np.ndarray,
                     names: list[str], bad: dict[str, str]
                     ) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """A chunk whose cells do not all read, parsed again by groups of series, halved until
    each group reads or holds one series: a series with a cell that does not read goes into
    ``bad`` (its first reason) and its rows stay empty. ``codes``: each row's series, an
    index into ``names``. A few bad series among many cost a few dozen parses, not one per
    series."""
    n = len(lines)
    t = np.zeros(n, np.int64)
    vals = {c: np.full(n, np.nan) for c in spec.value_columns}
    needed = set(at.values())
    order = np.argsort(codes, kind="stable")  # rows series by series, in file order within
    present, starts = np.unique(codes[order], return_index=True)
    bounds = np.r_[starts, n]
    series = [k for k in present[np.argsort(order[starts])] if names[k] not in bad]
    pending = [series]
    while pending:
        group = pending.pop()
        where_in = np.searchsorted(present, group)
        idx = np.sort(np.concatenate([order[bounds[w]:bounds[w + 1]] for w in where_in]))
        sub = [[col[i] for i in idx] if k in needed else [] for k, col in enumerate(columns)]
        try:
            ts, vs, fmt = _parse_chunk(path, spec, sub, at, fmt, first + idx, lines[idx])
        except DataError as err:
            if len(group) == 1:
                bad[names[group[0]]] = str(err)
            else:  # the first half last, so that it is parsed first: file order
                pending += [group[len(group) // 2:], group[:len(group) // 2]]
            continue
        t[idx] = ts
        for c in spec.value_columns:
            vals[c][idx] = vs[c]
    return t, vals, fmt


def _read_columns(path: str | Path, spec: FrameSpec, columns_fix: str, limits: ReadLimits,
                  padded: dict[str, set[str]] | None = None, bad: dict[str, str] | None = None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, list[str], np.ndarray,
                             np.ndarray | None]:
    """Times (int64 ns), values, series codes and names, and each row's line, chunk by chunk.
    Series ids are read without surrounding spaces; ``padded`` gets each id so read, with the
    forms the file wrote it in. ``bad`` (a file of several series): a series with a cell
    that does not read is left out and named there, instead of the file being refused; the
    last item is then each kept row's data row number (None: rows 1 .. n, all kept)."""
    raw = read_bytes(path, limits.max_bytes)
    text = decode(path, raw)  # also when the fast path reads the bytes: it checks the encoding
    if raw[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        fast = read_plain(path, raw, spec, columns_fix, limits.max_rows)
        if fast is not None:
            return (*fast, None)
    del raw
    header, chunks = read_rows(path, text)
    del text  # the chunks hold what they still need
    needed = [spec.time_column, *spec.value_columns]
    if spec.series_id is not None:
        needed.append(spec.series_id)
    require_columns(path, header, needed, columns_fix)
    at = {name: header.index(name) for name in needed}
    times, lines, codes = [], [], []
    values: dict[str, list[np.ndarray]] = {c: [] for c in spec.value_columns}
    ids: dict[str, int] = {}
    fmt, n = spec.time_format, 0
    for rows in chunks:
        n += len(rows)
        if limits.max_rows is not None and n > limits.max_rows:
            raise DataError(f"{path}: more than {limits.max_rows:,} data rows, the per-file "
                            "limit; split the file, or raise the limit (max_rows)")
        if spec.series_id is not None:
            raw_ids = rows.columns[at[spec.series_id]]
            names = [v.strip() for v in raw_ids]
            if padded is not None:
                for v, name in zip(raw_ids, names, strict=True):
                    if v != name:
                        padded.setdefault(name, set()).add(v)
            if "" in names:
                i = names.index("")
                raise DataError(f"{where(path, spec.series_id, rows.first + i, int(rows.lines[i]))}"
                                ": empty series id")
            codes.append(np.fromiter((ids.setdefault(v, len(ids)) for v in names), np.int64,
                                     len(names)))
        try:
            t, vals, fmt = _parse_chunk(path, spec, rows.columns, at, fmt, rows.first,
                                        rows.lines)
        except DataError:
            if bad is None or spec.series_id is None:
                raise
            t, vals, fmt = _parse_by_series(path, spec, rows.columns, at, fmt, rows.first,
                                            rows.lines, codes[-1], list(ids), bad)
        times.append(t)
        lines.append(rows.lines)
        for c in spec.value_columns:
            values[c].append(vals[c])
        rows.columns = []  # free the text of this chunk
    if spec.series_id is None:
        ids = {Path(path).name.split(".")[0]: 0}
        codes = [np.zeros(n, np.int64)]
    out_times, out_codes, out_lines = (np.concatenate(times), np.concatenate(codes),
                                       np.concatenate(lines))
    out_values = {c: np.concatenate(v) for c, v in values.items()}
    row_numbers = None
    if bad:  # the left-out series' rows go, in every chunk
        keep = _kept(out_codes, {ids[name]: why for name, why in bad.items()})
        out_times, out_codes, out_lines, out_values = _take(keep, out_times, out_codes,
                                                            out_lines, out_values)
        row_numbers = np.flatnonzero(keep) + 1
    return out_times, out_values, out_codes, list(ids), out_lines, row_numbers


def read_frame(path: str | Path, spec: FrameSpec, columns_fix: str = COLUMNS_FIX,
               limits: ReadLimits | None = None, series_alone: bool = False) -> Frame:
    """Read, validate and repair one CSV file (see the module docstring for the schema);
    ``columns_fix`` ends the message for missing columns; ``limits`` bound what one file may
    cost (decompressed bytes, rows). ``series_alone``: in a file of several series, a series
    with a cell that does not read, a duplicate or an off-grid timestamp is left out and
    named in ``dropped`` (its rows read nothing into the others), instead of the file being
    refused."""
    padded: dict[str, set[str]] = {}
    unread: dict[str, str] | None = {} if series_alone else None  # series with a bad cell
    times, values, codes, names, lines, numbers = _read_columns(
        path, spec, columns_fix, limits or ReadLimits(), padded, unread)
    order = np.lexsort((times, codes))
    moved = order != np.arange(len(order))
    report = RepairReport(rows_reordered=int(moved.sum()),
                          ids_trimmed={k: sorted(v) for k, v in padded.items()})
    rows = order + 1 if numbers is None else numbers[order]  # data row numbers, as sorted
    if report.rows_reordered:
        times, codes, lines = times[order], codes[order], lines[order]
        values = {c: v[order] for c, v in values.items()}
    alone = series_alone and spec.series_id is not None and len(names) > 1
    bad: dict[int, str] = {}  # series left out, alone: code -> why
    for i in np.flatnonzero((codes[1:] == codes[:-1]) & (times[1:] == times[:-1])).tolist():
        name = f" in series '{names[codes[i]]}'" if spec.series_id else ""
        message = (
            f"{where(path, spec.time_column, int(rows[i + 1]), int(lines[i + 1]))}: duplicate "
            f"timestamp {pd.Timestamp(int(times[i]), tz='UTC')}{name} (also row {rows[i]}); "
            "keep one row per timestamp"
            + ("" if spec.series_id else
               ", or if the file holds several series name their id column in data.series_id")
        )
        if not alone:
            raise DataError(message)
        bad.setdefault(int(codes[i]), message)
    keep = _kept(codes, bad)
    step = infer_freq(path, spec.time_column, times[keep], codes[keep], spec.freq, rows[keep],
                      lines[keep], bad if alone else None)
    if bad:  # every row of a series left out goes, whatever its other columns hold
        times, codes, lines, values = _take(_kept(codes, bad), times, codes, lines, values)
    bounds = np.flatnonzero(np.diff(codes)) + 1
    parts, dropped = [], {**(unread or {}), **{names[c]: why for c, why in sorted(bad.items())}}
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(codes)], strict=True):
        name = names[codes[a]]
        cols = {c: v[a:b] for c, v in values.items()}
        empty = why_empty(name, cols, spec)
        if empty is not None:  # nothing to learn or forecast from: named, not kept
            dropped[name] = f"{path}: {empty}"
            continue
        part = repair_series(name, times[a:b], cols, step, spec, report, path)
        if len(part["timestamp"]):
            parts.append(part)
        else:
            dropped[name] = (f"{path}: series '{name}': every row lies in a gap longer than "
                             f"max_gap={spec.max_gap} in some column; fill the gaps")
    frame = Frame(None, spec=spec, parts=parts, freq=step, path=str(path),
                  repairs=report, dropped=dropped)
    for line in report.lines():
        log.info("%s: %s", path, line)
    return frame
