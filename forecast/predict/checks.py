"""One input file checked against the checkpoint's spec: its series, and their origins.

A series is refused (its file keeps the other series) when: it keeps no row; a gap longer
than ``max_gap`` lies within the R steps up to its cutoff; fewer than R steps follow its
last such gap; a value is more than ``MAX_ABS_Z`` training standard deviations from the
training mean; its forecast would run past the last representable time. A file whose rows
mostly come at another step than the checkpoint's is refused whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.features import DataSpec, SeriesArrays, series_arrays
from forecast.frame import MISSING_SUFFIX, DataError, Frame, ReadLimits, read_frame, step_text
from forecast.frame.batch import read_plain_frames
from forecast.frame.schema import LAST_TIME
from forecast.frame.values import parse_freq
from forecast.predict.summary import Result, failed
from forecast.windows import origins as find_origins

log = logging.getLogger("forecast.predict")

# a value this many training standard deviations from the training mean is impossible
MAX_ABS_Z = 100.0
CHECKPOINT_COLUMNS_FIX = ("the checkpoint was trained on those columns: rename the file's "
                          "columns to match, or train a model on these")
_INT64_MIN, _INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


@dataclass
class Prepared:
    """One validated file: the arrays and origins of its good series, and the refused ones."""

    index: int
    path: Path
    output: Path
    arrays: list[SeriesArrays]
    origins: list[np.ndarray]
    failures: list[Result]


def _step(spec: DataSpec) -> pd.Timedelta:
    return parse_freq("checkpoint", spec.freq)  # checked with the checkpoint; cached


def _ts(ns: int | np.integer) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def check_step(path: str, arrays: list[SeriesArrays], spec: DataSpec, series: str = ""
               ) -> None:
    """Refuse rows that mostly come at another step than the checkpoint's: those of the
    whole file, or of one ``series`` (its name, then ``arrays`` holds it alone)."""
    names = spec.feature_names
    miss = [names.index(c + MISSING_SUFFIX) for c in spec.value_columns]
    steps = []
    for a in arrays:
        observed = (a.x[:, miss] == 0).any(axis=1)  # rows the file had: not all missing
        steps.append(np.diff(a.times[observed]))
    steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
    if steps.size < 2:
        return
    n_step = int((steps == _step(spec).value).sum())
    if n_step * 2 >= steps.size:
        return
    vals, counts = np.unique(steps, return_counts=True)
    common = pd.Timedelta(int(vals[np.argmax(counts)]), "ns")
    raise DataError(
        f"{path}: column '{spec.time_column}': "
        + (f"series '{series}': " if series else "")
        + f"only {n_step} of {steps.size} steps between rows are {step_text(_step(spec))}, "
        f"the checkpoint's step; the most common is {step_text(common)} ({counts.max()} of "
        f"{steps.size}): irregular or ambiguous frequency; resample the "
        f"{'series' if series else 'file'} to {step_text(_step(spec))}"
    )


def step_failures(path: str, arrays: list[SeriesArrays], spec: DataSpec) -> dict[str, str]:
    """Series whose rows come at another step than the checkpoint's: name -> why. When
    every series does, the file's step is wrong: a ``DataError`` for the whole file."""
    bad = {}
    for a in arrays:
        try:
            check_step(path, [a], spec, a.name)
        except DataError as err:
            bad[a.name] = str(err)
    if bad and len(bad) == len(arrays):
        check_step(path, arrays, spec)  # the file's rows as a whole: it fails as a file
    return bad


def check_values(path: str, a: SeriesArrays, spec: DataSpec, lo: int) -> None:
    """Refuse values that are absurd for the trained scalers (from index ``lo`` on)."""
    names = spec.feature_names
    # (value index, column, feature index); sin and cos of angles are bounded: no check
    cols = [(j, col, names.index(col)) for j, col in enumerate(spec.value_columns)
            if col not in spec.angular]
    z = np.abs(a.x[lo:, [k for _, _, k in cols]])
    bad = np.argwhere(z > MAX_ABS_Z)
    if bad.size:
        i, m = (int(v) for v in bad[0])
        c, col, k = cols[m]
        value = a.x[lo + i, k] * spec.std[c] + spec.mean[c]
        raise DataError(
            f"{path}: column '{col}', {_ts(a.times[lo + i])}: impossible value {value:.6g} "
            f"(more than {MAX_ABS_Z:g} training standard deviations from the training mean "
            f"{spec.mean[c]:.4g}); fix the value or leave it empty"
        )


def _forecast_origin(frame: Frame, a: SeriesArrays, spec: DataSpec, receptive_field: int,
                     horizon: int) -> np.ndarray:
    history, step = receptive_field - 1, _step(spec).value
    gaps = [g for g in frame.repairs.long_gaps if g["series"] == a.name]
    cutoff = max([int(a.times[-1])] + [pd.Timestamp(g["end"]).value for g in gaps])
    need_from = cutoff - history * step
    for g in gaps:
        if pd.Timestamp(g["end"]).value >= need_from:
            raise DataError(
                f"{frame.path}: column '{g['column']}', series '{a.name}': {g['steps']} "
                f"missing steps from {g['start']} to {g['end']}, more than max_gap="
                f"{spec.max_gap}, within the {receptive_field} steps of history the model "
                f"needs up to the cutoff {_ts(cutoff)}; fill the gap or supply data after it"
            )
    t = len(a) - 1
    n_last = int((a.segment == a.segment[t]).sum())
    if n_last < receptive_field:
        raise DataError(
            f"{frame.path}: series '{a.name}': history too short: {n_last} steps of "
            f"{step_text(_step(spec))} up to the cutoff {_ts(a.times[t])}, the model needs "
            f"{receptive_field} (its receptive field); supply more history"
        )
    if int(a.times[t]) > LAST_TIME.value - horizon * step:
        raise DataError(
            f"{frame.path}: series '{a.name}': the {horizon} steps after the cutoff "
            f"{_ts(a.times[t])} run past {LAST_TIME:%Y-%m-%d %H:%M} UTC, the last time that "
            "can be represented; check the timestamps"
        )
    check_values(frame.path, a, spec, t - history)
    return np.array([t], dtype=np.int64)


def series_origins(frame: Frame, a: SeriesArrays, spec: DataSpec, receptive_field: int,
                   horizon: int, mode: str) -> np.ndarray:
    """Origins to forecast for one series, or a :class:`DataError` saying why there are none."""
    if mode == "forecast":
        return _forecast_origin(frame, a, spec, receptive_field, horizon)
    o = find_origins(a.times, a.segment, _INT64_MIN, _INT64_MAX, receptive_field - 1, horizon)
    if o.size == 0:
        longest = int(np.bincount(a.segment - a.segment.min()).max())
        raise DataError(
            f"{frame.path}: series '{a.name}': no backtest origin: its longest stretch without "
            f"a gap over max_gap has {longest} steps, a backtest needs receptive field + horizon "
            f"= {receptive_field} + {horizon} = {receptive_field + horizon}; supply more history"
        )
    check_values(frame.path, a, spec, 0)
    return o


def prepare_file(index: int, path: Path, output: Path, spec: DataSpec, receptive_field: int,
                 horizon: int, mode: str, limits: ReadLimits | None = None) -> Prepared:
    """Read and validate one file against the checkpoint's spec (a ``DataError`` if the whole
    file is bad; bad series are listed in ``failures``, in the file's order)."""
    frame = read_frame(path, spec.frame_spec(), columns_fix=CHECKPOINT_COLUMNS_FIX,
                       limits=limits, series_alone=True)
    return check_frame(index, path, output, frame, series_arrays(frame, spec), spec,
                       receptive_field, horizon, mode)


def check_frame(index: int, path: Path, output: Path, frame: Frame, arrays: list[SeriesArrays],
                spec: DataSpec, receptive_field: int, horizon: int, mode: str) -> Prepared:
    """One read file (its frame and feature arrays) checked against the spec."""
    off_step = step_failures(frame.path, arrays, spec)  # a series at another step fails alone
    prep = Prepared(index, path, output, [], [], [])
    prep.failures += [failed(path, reason, name) for name, reason in frame.dropped.items()]
    for a in arrays:
        try:
            if a.name in off_step:
                raise DataError(off_step[a.name])
            o = series_origins(frame, a, spec, receptive_field, horizon, mode)
        except DataError as err:
            prep.failures.append(failed(path, str(err), a.name))
            continue
        prep.arrays.append(a)
        prep.origins.append(o)
    return prep


def prepare_files(jobs: list[tuple[int, Path, Path]], spec: DataSpec, receptive_field: int,
                  horizon: int, mode: str, limits: ReadLimits | None = None
                  ) -> dict[int, Prepared]:
    """:func:`prepare_file` of each (index, input, output) of ``jobs`` that needs no repair,
    read together (:func:`~forecast.frame.batch.read_plain_frames`); the others are left
    out, for :func:`prepare_file` to read one by one.

    The feature arrays of all those files come from one :func:`series_arrays` call over
    their rows laid end to end: every feature of a row depends on that row alone (its
    values, indicators and timestamp), so each file's slice is its own arrays. In forecast
    mode the checks are array operations over all rows too: such a file has every row, one
    step of the checkpoint's apart (:func:`check_step` passes), no gap, so only its length,
    its last time and its values can refuse it; a file that any of them might refuse goes
    through :func:`check_frame`, which says why."""
    frames = read_plain_frames([p for _, p, _ in jobs], spec.frame_spec(), limits)
    read = [(job, f) for job, f in zip(jobs, frames, strict=True) if f is not None]
    if not read:
        return {}
    parts = [f.parts[0] for _, f in read]
    whole = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "series"}
    first = read[0][1]
    rows = series_arrays(Frame(None, first.spec, first.freq, first.path, first.repairs,
                               parts=[{"series": "", **whole}]), spec)[0]
    ends = np.cumsum([len(p["timestamp"]) for p in parts])
    names = spec.feature_names
    cols = [names.index(c) for c in spec.value_columns if c not in spec.angular]
    absurd = np.flatnonzero((np.abs(rows.x[:, cols]) > MAX_ABS_Z).any(axis=1))
    doubtful = set(np.searchsorted(ends, absurd, side="right").tolist())
    last_ok = LAST_TIME.value - horizon * _step(spec).value
    out = {}
    for j, ((index, path, output), frame) in enumerate(read):
        start, end = int(ends[j]) - len(parts[j]["timestamp"]), int(ends[j])
        a = SeriesArrays(parts[j]["series"], rows.times[start:end], rows.x[start:end],
                         rows.y[start:end], rows.segment[start:end])
        if (mode == "forecast" and j not in doubtful and len(a) >= receptive_field
                and int(a.times[-1]) <= last_ok):
            out[index] = Prepared(index, path, output, [a], [np.array([len(a) - 1])], [])
            continue
        try:
            out[index] = check_frame(index, path, output, frame, [a], spec, receptive_field,
                                     horizon, mode)
        except DataError:
            continue  # read on its own, the file fails with the same message
    return out


def prepare_one(i: int, path: Path, output: Path, spec: DataSpec, receptive_field: int,
                horizon: int, mode: str, limits: ReadLimits | None) -> Prepared | Result:
    """:func:`prepare_file`, or the failed result that says why not (whatever happened)."""
    try:
        return prepare_file(i, path, output, spec, receptive_field, horizon, mode, limits)
    except DataError as err:
        return failed(path, str(err))
    except MemoryError:
        return failed(path, f"{path}: not enough memory to read and check the file; split it, "
                            "or lower max_file_mb / max_rows so that it is refused up front")
    except Exception as err:  # a bug must not stop the other files either
        log.exception("%s: unexpected error", path)
        return failed(path, f"{path}: unexpected error ({type(err).__name__}: {err}); please "
                            "report it with the file")


def prepare_together(jobs: list[tuple[int, Path, Path]], spec: DataSpec, receptive_field: int,
                     horizon: int, mode: str, limits: ReadLimits | None) -> dict[int, Prepared]:
    """The files of ``jobs`` that read together (:func:`prepare_files`); any trouble there
    leaves them all to be read one by one, where it is named."""
    try:
        return prepare_files(jobs, spec, receptive_field, horizon, mode, limits)
    except Exception:  # noqa: BLE001 - each file is read again on its own
        log.debug("reading %d files together failed; reading them one by one", len(jobs),
                  exc_info=True)
        return {}
