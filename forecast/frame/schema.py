"""The frame schema, its spec, the repair report and the one error type."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MISSING_SUFFIX = "_missing"
# pandas holds timestamps as int64 nanoseconds: 1677-09-21 .. 2262-04-11
FIRST_TIME, LAST_TIME = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


class DataError(ValueError):
    """Bad input: one line naming file, column and row, and how to fix it."""


# control characters (a newline in a quoted field, a tab, ...) shown as escapes
_ESCAPES = {i: repr(chr(i))[1:-1] for i in (*range(32), 127)}


def printable(text: object) -> str:
    """``text`` on one line: its control characters written as escapes (``\\n``, ``\\x00``),
    anything else (accents, other scripts) as it is."""
    return str(text).translate(_ESCAPES)


def where(path: str | Path, column: str | None = None, row: int | None = None,
          line: int | None = None) -> str:
    """Location prefix for messages: ``file: column 'c', row r (line l)``.

    ``row`` counts data rows from 1; ``line`` is the physical line the row starts on
    (1 is the header); it defaults to ``row + 1`` (one line per row, no blank lines)."""
    parts = [str(path)]
    if column is not None:
        parts.append(f"column '{column}'")
    if row is not None:
        parts.append(f"row {row} (line {line if line is not None else row + 1})")
    return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def step_text(step: pd.Timedelta) -> str:
    """A grid step as a frequency string: '1h', '10min', '1D', '90s'."""
    try:
        text = pd.tseries.frequencies.to_offset(step).freqstr
    except ValueError:
        return str(step)
    return text if text[:1].isdigit() else f"1{text}"


@dataclass(frozen=True)
class ReadLimits:
    """Per-file limits, so that no file can exhaust memory: decompressed bytes and rows."""

    max_bytes: int | None = None
    max_rows: int | None = None


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
    ids_trimmed: dict[str, list[str]] = field(default_factory=dict)  # id -> forms written

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
        for name, forms in self.ids_trimmed.items():
            written = ", ".join(f"'{printable(f)}'" for f in forms)
            shown = f"'{printable(name)}'"
            out.append(f"series id {written} read as {shown} (surrounding spaces trimmed; "
                       f"rows written so join series {shown})")
        return out

    def to_dict(self) -> dict:
        return {
            "rows_reordered": self.rows_reordered,
            "timestamps_inserted": self.timestamps_inserted,
            "out_of_bounds": dict(self.out_of_bounds),
            "filled": dict(self.filled),
            "long_gaps": list(self.long_gaps),
            "missing_targets": self.missing_targets,
            "ids_trimmed": {k: list(v) for k, v in self.ids_trimmed.items()},
        }


class Frame:
    """A validated, repaired frame and what was done to it.

    Built from ``data`` (the schema as one DataFrame) or from ``parts`` (each series' columns
    as arrays, ``timestamp`` as int64 ns, as :func:`~forecast.frame.read_frame` makes it);
    the other form is made when first asked for. ``dropped`` names the series of the file
    that kept no row (a column with no value at all, or every row inside a long gap), with
    the reason: they are in neither.
    """

    def __init__(self, data: pd.DataFrame | None, spec: FrameSpec, freq: pd.Timedelta,
                 path: str, repairs: RepairReport, dropped: dict[str, str] | None = None,
                 parts: list[dict] | None = None) -> None:
        if data is None and parts is None:
            raise ValueError("a Frame needs data or parts")
        self._data, self._parts = data, parts
        self.spec, self.freq, self.path, self.repairs = spec, freq, path, repairs
        self.dropped = dict(dropped or {})

    @property
    def data(self) -> pd.DataFrame:
        """The frame schema as one DataFrame, one row per series and grid step."""
        if self._data is None:
            self._data = self._frame(self._parts)
        return self._data

    @property
    def parts(self) -> list[dict]:
        """Each series' columns as arrays (``timestamp`` int64 ns), in the file's order."""
        if self._parts is None:
            self._parts = []
            for name, g in self.data.groupby("series", sort=False):
                part = {c: g[c].to_numpy() for c in g.columns if c not in ("series", "timestamp")}
                part["timestamp"] = pd.DatetimeIndex(g["timestamp"]).as_unit("ns").asi8
                self._parts.append({"series": str(name), **part})
        return self._parts

    def _frame(self, parts: list[dict]) -> pd.DataFrame:
        cols = self.spec.value_columns
        columns = ["series", "timestamp", "segment", *cols, *(c + MISSING_SUFFIX for c in cols)]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=object if c == "series" else float)
                                 for c in columns})
        sizes = [len(p["timestamp"]) for p in parts]
        data = {"series": np.repeat(np.array([p["series"] for p in parts], dtype=object), sizes)}
        for c in columns[1:]:
            data[c] = np.concatenate([p[c] for p in parts])
        data["timestamp"] = pd.DatetimeIndex(data["timestamp"].view("M8[ns]"), tz="UTC")
        return pd.DataFrame(data, columns=columns)

    @property
    def series_names(self) -> list[str]:
        return [p["series"] for p in self.parts]

    def series_parts(self) -> Iterator[tuple[str, dict]]:
        """(name, columns as arrays) of each series, in the file's order."""
        for p in self.parts:
            yield p["series"], p
