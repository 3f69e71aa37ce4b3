"""Follow a growing CSV: validate and repair each new row, stream the forecasts out.

Rows are checked and repaired one by one by the checkpoint's data spec, with the same
causal rules as the file reader: a missing value (or an impossible one, outside the
bounds) is carried forward with its indicator set; once a value has been missing more
than ``max_gap`` steps the series resets (zero state), and forecasts resume after R
fresh steps. A bad row (unreadable value or timestamp, wrong field count, a timestamp
not after the series' last one or off the grid, a value absurd for the scalers) is
reported and skipped; the next good row sees it as missing.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from forecast.features import DataSpec, series_arrays
from forecast.frame import (
    MISSING_SUFFIX,
    DataError,
    Frame,
    RepairReport,
    parse_numbers,
    parse_times,
    require_columns,
    where,
)
from forecast.module import ForecastModule
from forecast.quantiles import level_key
from forecast.stream import State, advance, zero_state

log = logging.getLogger(__name__)
MAX_ABS_Z = 100.0  # a value this many training standard deviations from the mean is absurd


@dataclass
class Series:
    """Where one series stands: its repair state and its stream state."""

    last_time: int | None = None  # ns of the last grid step seen
    last: list[float] = field(default_factory=list)  # last observed values (NaN: none yet)
    runs: list[int] = field(default_factory=list)  # steps each value has been missing
    count: int = 0  # steps in the current segment (forecasts once >= R)
    broken: bool = False  # inside a gap longer than max_gap
    state: State = ()
    pending: list[tuple[int, list[float], list[float]]] = field(default_factory=list)


def _at_row(err: DataError, path: str, column: str, row: int) -> str:
    """A one-value parser's message, located at the file's real row."""
    return str(err).replace(where(path, column, 1), where(path, column, row), 1) + "; row skipped"


class Follower:
    """Turns new rows of one CSV into long-format forecast lines (see the module doc)."""

    def __init__(self, model: ForecastModule, spec: DataSpec, path: str | Path) -> None:
        self.model, self.spec, self.path = model, spec, str(path)
        self.columns = spec.value_columns
        self.frame_spec = spec.frame_spec()
        self.step = spec.step.value
        self.series: dict[str, Series] = {}
        self.header: list[str] = []
        self.bad_rows = 0

    # -------------------------------------------------------------- rows in

    def set_header(self, header: list[str]) -> None:
        needed = [self.spec.time_column, *self.columns]
        if self.spec.series_id is not None:
            needed.append(self.spec.series_id)
        require_columns(self.path, header, needed,
                        "the checkpoint was trained on those columns: rename the file's columns")
        self.header = header

    def _parse(self, row: int, fields: list[str]) -> tuple[str, int, np.ndarray]:
        """(series, time ns, values) of one row, or a one-line ``DataError``."""
        if len(fields) != len(self.header):
            raise DataError(f"{where(self.path, row=row)}: {len(fields)} fields where the header "
                            f"has {len(self.header)}; row skipped")
        get = dict(zip(self.header, fields, strict=True))
        tc = self.spec.time_column
        try:
            t = int(parse_times(self.path, tc, [get[tc]], self.spec.time_format).asi8[0])
        except DataError as err:
            raise DataError(_at_row(err, self.path, tc, row)) from None
        values = np.empty(len(self.columns))
        for j, c in enumerate(self.columns):
            try:
                values[j] = parse_numbers(self.path, c, [get[c]])[0]
            except DataError as err:
                raise DataError(_at_row(err, self.path, c, row)) from None
        if self.spec.series_id is None:
            name = Path(self.path).name.split(".")[0]
        else:
            name = get[self.spec.series_id].strip()
            if not name:
                raise DataError(f"{where(self.path, self.spec.series_id, row)}: empty series "
                                "id; row skipped")
        return name, t, values

    def _check(self, row: int, s: Series, t: int, values: np.ndarray) -> np.ndarray:
        """Grid and scaler checks; values outside the bounds become NaN (missing)."""
        tc = self.spec.time_column
        if s.last_time is not None and t <= s.last_time:
            raise DataError(f"{where(self.path, tc, row)}: timestamp {pd.Timestamp(t, tz='UTC')} "
                            "is not after the series' last one; row skipped")
        if s.last_time is not None and (t - s.last_time) % self.step:
            raise DataError(f"{where(self.path, tc, row)}: timestamp {pd.Timestamp(t, tz='UTC')} "
                            f"is off the {self.spec.freq} grid; row skipped")
        values = values.copy()
        for j, c in enumerate(self.columns):
            lo, hi = self.spec.bounds.get(c, (-math.inf, math.inf))
            if not lo <= values[j] <= hi:
                values[j] = math.nan
            elif c not in self.spec.angular:
                z = abs(values[j] - self.spec.mean[j]) / self.spec.std[j]
                if z > MAX_ABS_Z:
                    raise DataError(f"{where(self.path, c, row)}: impossible value "
                                    f"{values[j]:.6g} (more than {MAX_ABS_Z:g} training "
                                    "standard deviations from the training mean); row skipped")
        return values

    def feed(self, rows: list[tuple[int, list[str]]]) -> list[str]:
        """New rows (row number, fields) -> forecast lines, the series' states advanced."""
        out: list[str] = []
        for row, fields in rows:
            try:
                name, t, values = self._parse(row, fields)
                s = self.series.get(name) or self._new_series()
                values = self._check(row, s, t, values)
            except DataError as err:
                self.bad_rows += 1
                log.warning("%s", err)
                continue
            self.series[name] = s
            if s.last_time is not None:
                start, gap = s.last_time, (t - s.last_time) // self.step - 1
                for k in range(1, gap + 1):  # missing grid steps: every value missing
                    self._grid_step(name, s, start + k * self.step,
                                    np.full(len(self.columns), math.nan), out)
                    if s.broken:  # the rest of the gap only lengthens the runs
                        s.runs = [r + gap - k for r in s.runs]
                        s.last_time = start + gap * self.step
                        break
            self._grid_step(name, s, t, values, out)
        self._flush(list(self.series), out)
        return out

    def _new_series(self) -> Series:
        n = len(self.columns)
        return Series(last=[math.nan] * n, runs=[0] * n, state=zero_state(self.model, 1))

    def _grid_step(self, name: str, s: Series, t: int, values: np.ndarray,
                   out: list[str]) -> None:
        """One grid step of one series: the gap rules, then queue it for the model."""
        s.last_time = t
        missing = np.isnan(values)
        s.runs = [r + 1 if m else 0 for r, m in zip(s.runs, missing, strict=True)]
        if max(s.runs) > self.spec.max_gap:
            if not s.broken:  # the gap just became too long: reset the series
                self._flush([name], out)
                s.broken, s.count = True, 0
                s.last = [math.nan] * len(s.last)
                s.state = zero_state(self.model, 1)
            return
        s.broken = False
        s.last = [s.last[j] if m else float(values[j]) for j, m in enumerate(missing)]
        s.pending.append((t, list(s.last), missing.astype(float).tolist()))

    # -------------------------------------------------------------- model

    def _flush(self, names: list[str], out: list[str]) -> None:
        """Run the queued steps of these series through the stream, batched by length."""
        names = [n for n in names if self.series[n].pending]
        if not names:
            return
        data = {"series": [], "timestamp": [], "segment": 0}
        for c in self.columns:
            data[c], data[c + MISSING_SUFFIX] = [], []
        for n in names:
            for t, vals, miss in self.series[n].pending:
                data["series"].append(n)
                data["timestamp"].append(t)
                for c, v, m in zip(self.columns, vals, miss, strict=True):
                    data[c].append(v)
                    data[c + MISSING_SUFFIX].append(m)
        data["timestamp"] = pd.to_datetime(data["timestamp"], utc=True)
        frame = Frame(pd.DataFrame(data), self.frame_spec, self.spec.step, self.path,
                      RepairReport())
        x = {a.name: a.x for a in series_arrays(frame, self.spec)}
        by_len: dict[int, list[str]] = {}
        for n in names:
            by_len.setdefault(len(self.series[n].pending), []).append(n)
        for group in by_len.values():
            batch = torch.from_numpy(np.stack([x[n] for n in group]))  # [B, n, F]
            state = tuple(torch.cat(p) for p in zip(*(self.series[n].state for n in group),
                                                   strict=True))
            with torch.no_grad():  # [B, n, H], or [B, n, H, Q] for a quantile model
                pred, state = advance(self.model, batch, state, quantiles=True)
            pred = self.spec.to_units(pred.numpy().astype(np.float64))
            for i, n in enumerate(group):
                s = self.series[n]
                s.state = tuple(p[i : i + 1] for p in state)
                for (t, _, _), p in zip(s.pending, pred[i], strict=True):
                    s.count += 1
                    if s.count >= self.model.receptive_field:
                        out.append(self._lines(n, t, p))
                s.pending = []

    def _lines(self, name: str, cutoff: int, pred: np.ndarray) -> str:
        """H long-format lines: series, cutoff, timestamp, step, forecast (and, from a
        quantile model's pred [H, Q], the median then one column per quantile)."""
        quoted = _quote(name)
        c = _iso(cutoff)
        if pred.ndim == 1:
            return "".join(f"{quoted},{c},{_iso(cutoff + h * self.step)},{h},{v:.7g}\n"
                           for h, v in enumerate(pred.tolist(), start=1))
        median = self.model.net.median
        return "".join(f"{quoted},{c},{_iso(cutoff + h * self.step)},{h},{row[median]:.7g},"
                       + ",".join(f"{v:.7g}" for v in row) + "\n"
                       for h, row in enumerate(pred.tolist(), start=1))

    def header_line(self) -> str:
        levels = [level_key(v) for v in self.model.hparams.get("quantiles") or []]
        return ",".join([_quote(self.spec.series_id or "series"), "cutoff", "timestamp", "step",
                         "forecast", *levels]) + "\n"

    # -------------------------------------------------------------- saved state

    def to_dict(self) -> dict:
        """Plain values and tensors only (loads with ``weights_only=True``)."""
        return {"bad_rows": self.bad_rows, "series": {
            n: {"last_time": s.last_time, "last": s.last, "runs": s.runs, "count": s.count,
                "broken": s.broken, "state": list(s.state)} for n, s in self.series.items()}}

    def load_dict(self, d: dict) -> None:
        self.bad_rows = int(d["bad_rows"])
        self.series = {n: Series(v["last_time"], list(v["last"]), list(v["runs"]), v["count"],
                                 v["broken"], tuple(v["state"]))
                       for n, v in d["series"].items()}


def _iso(ns: int) -> str:
    text = np.datetime_as_string(np.datetime64(ns, "ns"), unit="s" if ns % 10**9 == 0 else "ms")
    return text + "Z"


def _quote(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()
