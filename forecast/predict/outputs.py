"""Output files: their names, the folder a run may write into, and streamed CSV writing.

A run writes only files it owns. ``output_dir/.forecast-outputs`` lists every name a run
of this program has written there; before any work, each planned output (``<stem>.forecast.csv``
per input, ``summary.csv``, ``metrics.csv``) is checked: one that is an input file, or an
existing file the list does not name (the user's own ``summary.csv``), makes the whole run
write into a new run-owned subfolder instead, and the log says which file and where.
Folders and globs given as inputs skip the files that list names, so a second run never
reads the first one's summary as data.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import IO

import numpy as np

from forecast.files import atomic_open, atomic_write_text, replace_with
from forecast.quantiles import level_key

log = logging.getLogger("forecast.predict")

MANIFEST = ".forecast-outputs"
SUMMARY_FILES = ("summary.csv",)
BACKTEST_FILES = ("summary.csv", "metrics.csv")
BUFFER_CHARS = 1 << 20  # text of one output held in memory before it goes to disk


def output_name(path: Path) -> str:
    """``<stem>.forecast.csv`` for ``<stem>.csv``, ``<stem>.csv.gz`` or ``<stem>``."""
    name = path.name
    for suffix in (".gz", ".csv", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return f"{name or path.name}.forecast.csv"


def previous_outputs(folder: str | Path) -> set[str]:
    """Names of the files runs of this program wrote in ``folder`` (empty if none)."""
    try:
        names = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def plan_output_dir(output_dir: Path, inputs: list[Path], mode: str) -> Path:
    """The folder this run writes into: ``output_dir``, or a new run-owned subfolder of it
    when an output would replace an input or a file no run of this program wrote."""
    names = [output_name(p) for p in inputs]
    names += list(BACKTEST_FILES if mode == "backtest" else SUMMARY_FILES)
    owned = previous_outputs(output_dir)
    clashes = []
    for name in dict.fromkeys(names):
        target = output_dir / name
        if not os.path.lexists(target):
            continue
        if any(_same_file(target, p) for p in inputs):
            clashes.append(f"{target} is an input")
        elif name not in owned:
            clashes.append(f"{target} was not written by forecast.predict")
    folder = output_dir
    if clashes:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = output_dir / f"run-{stamp}-{os.getpid()}"
        folder.mkdir()
        owned = set()
        log.warning("%s; to replace no file the run did not write, outputs go to %s",
                    "; ".join(clashes[:3]) + (f" (and {len(clashes) - 3} more)"
                                              if len(clashes) > 3 else ""), folder)
    # the names first: a run killed mid-way still owns what it may have written
    atomic_write_text(folder / MANIFEST, json.dumps(sorted(owned | set(names)), indent=0) + "\n")
    return folder


def iso(ns: np.ndarray, sub_second: bool) -> np.ndarray:
    """int64 ns UTC -> ISO 8601 text with a Z (seconds, or milliseconds)."""
    unit = "ms" if sub_second else "s"
    if len(ns) <= 1024:  # a forecast's few rows: sorting out repeats would cost more
        return np.char.add(np.datetime_as_string(ns.astype("datetime64[ns]"), unit=unit), "Z")
    uniq, inverse = np.unique(ns, return_inverse=True)  # few distinct stamps, many rows each
    return np.char.add(np.datetime_as_string(uniq.astype("datetime64[ns]"), unit=unit),
                       "Z")[inverse]


@functools.cache
def step_labels(horizon: int) -> list[str]:
    """'1' .. 'H', the step column of one origin's rows."""
    return [str(h) for h in range(1, horizon + 1)]


def numbers(values: np.ndarray) -> list[str]:
    """Floats as text with 7 significant digits (float32's); NaN -> ''."""
    flat = values.ravel()
    out = list(map("{:.7g}".format, flat.tolist()))
    for i in np.flatnonzero(np.isnan(flat)).tolist():
        out[i] = ""
    return out


class ForecastWriter:
    """One ``<stem>.forecast.csv``: rows gathered in memory and written in one go by
    :meth:`commit` (temporary file, then rename); past ``BUFFER_CHARS`` they go on to a
    temporary file chunk by chunk, so a long backtest stays in bounded memory.
    :meth:`abort` leaves nothing behind. With quantile ``levels``, one column per level
    after ``forecast`` (the median): ``q0.05``, ``q0.1``, ..."""

    def __init__(self, path: Path, id_column: str, backtest: bool, fsync: bool,
                 levels: list[float] | None = None) -> None:
        self.path, self.fsync = path, fsync
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        self._cm = None  # the temporary file, once the rows outgrow the buffer
        self._file: IO | None = None
        header = [id_column, "cutoff", "timestamp", "step", "forecast",
                  *map(level_key, levels or [])]
        self._csv.writerow(header + (["actual"] if backtest else []))

    def write(self, series: str, cutoff: np.ndarray, step_ns: int, pred: np.ndarray,
              actual: np.ndarray | None, sub_second: bool,
              quantiles: np.ndarray | None = None) -> None:
        """Rows of N origins: ``cutoff`` (N,) int64 ns, ``pred`` and ``actual`` (N, H),
        ``quantiles`` (N, H, Q) for a writer opened with levels."""
        n, horizon = pred.shape
        steps = np.arange(1, horizon + 1)
        # the N cutoffs and N * H target times as text, in one call
        stamps = iso(np.concatenate([cutoff, (cutoff[:, None] + steps * step_ns).ravel()]),
                     sub_second)
        columns = [[series] * (n * horizon), np.repeat(stamps[:n], horizon).tolist(),
                   stamps[n:].tolist(), step_labels(horizon) * n, numbers(pred)]
        if quantiles is not None:
            columns += [numbers(quantiles[..., j]) for j in range(quantiles.shape[-1])]
        if actual is not None:
            columns.append(numbers(actual))
        self._csv.writerows(zip(*columns, strict=True))
        if self._buf.tell() > BUFFER_CHARS:
            self._spill()

    def _spill(self) -> None:
        if self._cm is None:
            self._cm = atomic_open(self.path, "w", fsync=self.fsync)
            self._file = self._cm.__enter__()
        self._file.write(self._buf.getvalue())
        self._buf.seek(0)
        self._buf.truncate()

    def commit(self) -> None:
        if self._cm is None:  # the whole file is in memory: one write
            replace_with(self.path, self._buf.getvalue().encode(), self.fsync)
            return
        self._spill()
        self._cm.__exit__(None, None, None)

    def abort(self, err: BaseException) -> None:
        if self._cm is None:
            return  # nothing on disk yet
        try:
            self._cm.__exit__(type(err), err, None)
        except BaseException as raised:
            if raised is not err:
                raise
