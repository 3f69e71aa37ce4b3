"""Many plain files read together: one pass of array operations over all their rows.

A batch of small files costs a few dozen array operations per file when each is read on
its own (:func:`~forecast.frame.read_frame`); read together they cost those operations
once. :func:`read_plain_frames` takes the files that need no repair at all: plain text
(:mod:`forecast.frame.fastpath`), one series, rows in time order exactly one step apart,
every value present and inside its bounds. For those it returns the very frame
``read_frame`` returns; for every other file ``None``, and the caller reads that file on
its own, which names any problem exactly. So this module never decides what is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecast.frame.fastpath import FAST_MAX_BYTES, Texts, plain_header, plain_rows
from forecast.frame.schema import Frame, FrameSpec, ReadLimits, RepairReport
from forecast.frame.text import decode, read_bytes
from forecast.frame.values import parse_freq


def _plain(path: Path, spec: FrameSpec, max_bytes: int) -> tuple[bytes, list[str], int] | None:
    """A file's text, header and first row offset if it may be plain, else None."""
    try:
        raw = read_bytes(path, max_bytes)
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return None
        if not raw.isascii():
            decode(path, raw)  # an encoding error is named by the file's own reading
        head = plain_header(path, raw, spec, "")
    except (ValueError, OSError):  # a bad file: read on its own, it says why
        return None
    if head is None:
        return None
    raw, header, body = head
    return (raw if raw.endswith(b"\n") else raw + b"\n"), header, body


def _frame(path: Path, spec: FrameSpec, step: pd.Timedelta, times: np.ndarray, values: np.ndarray,
           name: str) -> Frame:
    """The frame ``read_frame`` makes of a file that needs no repair."""
    part = {"series": name, "timestamp": times, "segment": np.zeros(len(times), np.int64)}
    zeros = np.zeros(len(times))
    for col, v in zip(spec.value_columns, values, strict=True):
        part[col] = v
        part[col + "_missing"] = zeros
    report = RepairReport(out_of_bounds=dict.fromkeys(spec.value_columns, 0),
                          filled=dict.fromkeys(spec.value_columns, 0))
    return Frame(None, spec=spec, parts=[part], freq=step, path=str(path), repairs=report)


def _read_group(items: list[tuple[int, Path, bytes, int]], header: list[str], spec: FrameSpec,
                step_ns: int, limits: ReadLimits) -> dict[int, tuple[np.ndarray, np.ndarray,
                                                                     str]]:
    """(times, values (k, n), series name) of each file of one header that needs no repair;
    when some file is not plain text, each half of the files is read again (down to one
    file), so that one file does not send the others the slow way."""
    counts = [raw.count(b"\n", body) for _, _, raw, body in items]  # rows per file
    rows = plain_rows(b"".join(memoryview(raw)[body:] for _, _, raw, body in items), 0,
                      header, spec, sum(counts))  # the rows joined in one copy
    if rows is None:
        half = len(items) // 2
        return {} if not half else {
            **_read_group(items[:half], header, spec, step_ns, limits),
            **_read_group(items[half:], header, spec, step_ns, limits)}
    times, table, ids = rows
    ends = np.cumsum(counts)
    starts = ends - counts
    # rows that are not one step after the previous row of their file, values out of bounds
    off = np.flatnonzero(np.diff(times) != step_ns) + 1
    bad = set(np.searchsorted(ends, off[~np.isin(off, starts)], side="right").tolist())
    lo = np.array([spec.bounds.get(c, (-np.inf, np.inf))[0] for c in spec.value_columns])
    hi = np.array([spec.bounds.get(c, (-np.inf, np.inf))[1] for c in spec.value_columns])
    oob = np.flatnonzero(((table < lo[:, None]) | (table > hi[:, None])).any(axis=0))
    bad |= set(np.searchsorted(ends, oob, side="right").tolist())
    if ids is not None:  # ids that differ from their file's first: several series
        bad |= _mixed_ids(ids, starts, ends)
    out = {}
    for j, (i, path, _, _) in enumerate(items):
        a, b = int(starts[j]), int(ends[j])
        if j in bad or a == b or (limits.max_rows is not None and b - a > limits.max_rows):
            continue
        name = path.name.split(".")[0]
        if ids is not None:
            name = ids.text(a)
            if not name or name != name.strip():
                continue  # an id the general way repairs or refuses
        out[i] = (times[a:b], table[:, a:b], name)
    return out


def _mixed_ids(ids: Texts, starts: np.ndarray, ends: np.ndarray) -> set[int]:
    """The files (by position) whose rows do not all carry their first row's id."""
    keys = ids.keys()
    differs = keys != keys[np.repeat(starts, ends - starts)]  # each row's file's first row
    return set(np.searchsorted(ends, np.flatnonzero(differs), side="right").tolist())


def read_plain_frames(paths: list[Path], spec: FrameSpec, limits: ReadLimits | None = None
                      ) -> list[Frame | None]:
    """The frame of each file that needs no repair (as :func:`~forecast.frame.read_frame`
    returns it), None for the others; ``spec.freq`` must be set (else all None)."""
    limits = limits or ReadLimits()
    out: list[Frame | None] = [None] * len(paths)
    if spec.freq is None:
        return out
    try:
        step = parse_freq("", spec.freq)
    except ValueError:
        return out
    max_bytes = min(limits.max_bytes or FAST_MAX_BYTES, FAST_MAX_BYTES)
    groups: dict[tuple[str, ...], list[tuple[int, Path, bytes, int]]] = {}
    size = 0
    for i, path in enumerate(paths):  # at most FAST_MAX_BYTES of text held at once
        path = path if isinstance(path, Path) else Path(path)
        found = _plain(path, spec, min(max_bytes, FAST_MAX_BYTES - size))
        if found is None:
            continue
        raw, header, body = found
        groups.setdefault(tuple(header), []).append((i, path, raw, body))
        size += len(raw)
        if size >= FAST_MAX_BYTES:
            break
    for header, items in groups.items():
        for i, (times, values, name) in _read_group(items, list(header), spec, step.value,
                                                    limits).items():
            out[i] = _frame(paths[i], spec, step, times, values, name)
    return out
