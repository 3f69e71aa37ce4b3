"""Batch forecasts over CSV files, file by file and series by series, never one bad file
stopping the others.

Library: :func:`forecast_files` (plain arguments, no Hydra) and :func:`run` (load the
checkpoint, forecast, write ``summary.csv``, return the exit code). Entry point:
``python -m forecast.predict checkpoint=PATH inputs=GLOB_OR_DIR_OR_LIST output_dir=DIR
[mode=forecast|backtest]`` (Hydra, ``configs/predict.yaml``; Hydra is imported inside
:func:`main` only, so the library imports without it).

For every file, each series is validated against the checkpoint's data spec
(``read_frame`` with the spec's columns, frequency, bounds and ``max_gap``), then:

- ``mode=forecast``: one origin per series, its last timestamp (the cutoff); the
  H steps after it are forecast from the R steps (receptive field) up to it.
- ``mode=backtest``: every origin of the file with R steps of history and H observed
  targets in one segment; forecasts with the actuals beside them, and ``metrics.csv``
  (MAE, RMSE, persistence MAE, skill per file and series).

A file that cannot be read is one failed row of the summary (series ``*``). A series is
refused, and its file keeps the other series' forecasts, when: a gap longer than
``max_gap`` lies within the R steps up to its cutoff; fewer than R steps follow its last
such gap; a value is more than ``MAX_ABS_Z`` training standard deviations from the
training mean (values outside the checkpoint's bounds become missing first, a repair).
A file whose rows mostly come at another step than the checkpoint's is refused whole.

Windows from many files and series go through the model together in batches. A causal
model scores a backtest with dense windows (one pass over each file), which gives the
same numbers as one window per origin because nothing after an origin reaches it; a
non-causal model always gets one window ending at each origin (honest).

Outputs, each written to a temporary name then renamed into place:
``<stem>.forecast.csv`` (long format: series id, ``cutoff``, ``timestamp``, ``step``,
``forecast`` [, ``actual``]) and ``summary.csv`` (file, series, status, reason, ...).
"""

from __future__ import annotations

import glob
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from forecast.evaluation import collect, dense_windows, honest_windows, predict_windows
from forecast.features import DataSpec, SeriesArrays, series_arrays
from forecast.files import atomic_write_text
from forecast.frame import MISSING_SUFFIX, DataError, Frame, read_frame, step_text
from forecast.metrics import mae, rmse, skill
from forecast.module import CheckpointError, ForecastModule, load_checkpoint
from forecast.windows import Window
from forecast.windows import origins as find_origins

log = logging.getLogger("forecast.predict")  # also when run as __main__

MODES = ("forecast", "backtest")
EXIT_OK, EXIT_SOME_FAILED, EXIT_NOTHING_RAN = 0, 1, 2
ALL_SERIES = "*"  # the series of a result about the whole file
# a value this many training standard deviations from the training mean is impossible
MAX_ABS_Z = 100.0
CHECKPOINT_COLUMNS_FIX = ("the checkpoint was trained on those columns: rename the file's "
                          "columns to match, or train a model on these")
SUMMARY_COLUMNS = ["file", "series", "status", "reason", "forecasts", "output"]
_INT64_MIN, _INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


@dataclass
class Result:
    """What happened to one series of one file (``series == '*'``: the whole file)."""

    file: str
    series: str
    status: str  # "ok" or "failed"
    reason: str = ""
    forecasts: int = 0  # origins forecast (each gives H values)
    output: str = ""
    metrics: dict = field(default_factory=dict)  # backtest only: mae, rmse, ...

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class _Prepared:
    """One validated file: the arrays and origins of its good series."""

    index: int
    path: Path
    output: Path
    arrays: list[SeriesArrays]
    origins: list[np.ndarray]
    failures: list[Result]

    @property
    def n_windows(self) -> int:
        return sum(len(o) for o in self.origins)


# ---------------------------------------------------------------- inputs


def resolve_inputs(inputs: str | Path | Sequence[str | Path]) -> tuple[list[Path], list[Result]]:
    """Files named by paths, globs and folders (a folder: its ``*.csv`` and ``*.csv.gz``,
    without ``*.forecast.csv``); an item that names nothing is a failed result."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    files: list[Path] = []
    missing: list[Result] = []
    for item in items:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            found = sorted(f for pat in ("*.csv", "*.csv.gz") for f in p.glob(pat)
                           if f.is_file() and not f.name.endswith(".forecast.csv"))
        elif glob.has_magic(text):
            found = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
        else:
            found = [p]  # a missing file is reported by read_frame, by name
        if not found:
            missing.append(Result(text, ALL_SERIES, "failed",
                                  f"{text}: no CSV file matches; check the path or glob"))
        files += found
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return [Path(f) for f in unique], missing


def output_name(path: Path) -> str:
    """``<stem>.forecast.csv`` for ``<stem>.csv``, ``<stem>.csv.gz`` or ``<stem>``."""
    name = path.name
    for suffix in (".gz", ".csv", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return f"{name or path.name}.forecast.csv"


def load_model(path: str | Path, device: str = "cpu") -> tuple[ForecastModule, DataSpec]:
    """The checkpoint's model in eval mode and its data spec, or a :class:`CheckpointError`."""
    try:
        model = load_checkpoint(path, map_location=device)
    except CheckpointError:
        raise
    except Exception as err:  # torch's safe unpickler fails on junk with assorted errors
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: "
                              f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})"
                              "; pass a .ckpt written by train.py") from None
    return model, model_spec(model, path)


def model_spec(model: ForecastModule, path: str | Path = "model") -> DataSpec:
    """The data spec stored in the checkpoint, or a :class:`CheckpointError`."""
    raw = model.hparams.get("data_spec")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: the checkpoint carries no data spec (hparams.data_spec); "
                              "it was not written by train.py")
    try:
        spec = DataSpec.from_dict(raw)
        spec.frame_spec()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: the checkpoint's data spec is not valid ({err})") from None
    if len(spec.mean) != len(spec.value_columns) or spec.n_features != model.hparams.n_features:
        raise CheckpointError(f"{path}: the checkpoint's data spec does not match its model "
                              f"({spec.n_features} features vs {model.hparams.n_features})")
    return spec


# ---------------------------------------------------------------- validation


def _ts(ns: int | np.integer) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def _check_step(path: str, arrays: list[SeriesArrays], spec: DataSpec) -> None:
    """Refuse a file whose rows mostly come at another step than the checkpoint's."""
    names = spec.feature_names
    miss = [names.index(c + MISSING_SUFFIX) for c in spec.value_columns]
    steps = []
    for a in arrays:
        observed = (a.x[:, miss] == 0).any(axis=1)  # rows the file had: not all missing
        steps.append(np.diff(a.times[observed]))
    steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
    if steps.size < 2:
        return
    n_step = int((steps == spec.step.value).sum())
    if n_step * 2 >= steps.size:
        return
    vals, counts = np.unique(steps, return_counts=True)
    common = pd.Timedelta(int(vals[np.argmax(counts)]), "ns")
    raise DataError(
        f"{path}: column '{spec.time_column}': only {n_step} of {steps.size} steps between "
        f"rows are {step_text(spec.step)}, the checkpoint's step; the most common is "
        f"{step_text(common)} ({counts.max()} of {steps.size}): irregular or ambiguous "
        f"frequency; resample the file to {step_text(spec.step)}"
    )


def _check_values(path: str, a: SeriesArrays, spec: DataSpec, lo: int) -> None:
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


def _series_origins(
    frame: Frame, a: SeriesArrays, spec: DataSpec, receptive_field: int, horizon: int, mode: str
) -> np.ndarray:
    """Origins to forecast for one series, or a :class:`DataError` saying why there are none."""
    history = receptive_field - 1
    step = spec.step.value
    if mode == "forecast":
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
                f"{step_text(spec.step)} up to the cutoff {_ts(a.times[t])}, the model needs "
                f"{receptive_field} (its receptive field); supply more history"
            )
        _check_values(frame.path, a, spec, t - history)
        return np.array([t], dtype=np.int64)
    o = find_origins(a.times, a.segment, _INT64_MIN, _INT64_MAX, history, horizon)
    if o.size == 0:
        longest = int(np.bincount(a.segment - a.segment.min()).max())
        raise DataError(
            f"{frame.path}: series '{a.name}': no backtest origin: its longest stretch without "
            f"a gap over max_gap has {longest} steps, a backtest needs receptive field + horizon "
            f"= {receptive_field} + {horizon} = {receptive_field + horizon}; supply more history"
        )
    _check_values(frame.path, a, spec, 0)
    return o


def prepare_file(index: int, path: Path, output: Path, spec: DataSpec, receptive_field: int,
                 horizon: int, mode: str) -> _Prepared:
    """Read and validate one file against the checkpoint's spec (a ``DataError`` if the whole
    file is bad; bad series are listed in ``failures``)."""
    frame = read_frame(path, spec.frame_spec(), columns_fix=CHECKPOINT_COLUMNS_FIX)
    arrays = series_arrays(frame, spec)
    _check_step(frame.path, arrays, spec)
    prep = _Prepared(index, path, output, [], [], [])
    for a in arrays:
        try:
            o = _series_origins(frame, a, spec, receptive_field, horizon, mode)
        except DataError as err:
            prep.failures.append(Result(str(path), a.name, "failed", str(err)))
            continue
        prep.arrays.append(a)
        prep.origins.append(o)
    return prep


# ---------------------------------------------------------------- forecasting


def _windows(origins: list[np.ndarray], history: int, mode: str, causal: bool) -> list[Window]:
    if mode == "backtest" and causal:
        return dense_windows(origins, history, span=256)
    return honest_windows(origins, history)


def _long_columns(prep: _Prepared, outputs: list[np.ndarray], spec: DataSpec,
                  mode: str) -> tuple[dict[str, list[str]], list[Result]]:
    """Long-format forecasts of one file as text columns: one row per series, cutoff, step."""
    horizon = outputs[0].shape[1]
    steps = np.arange(1, horizon + 1)
    step_fields = [str(h) for h in steps]
    names = [spec.series_id or "series", "cutoff", "timestamp", "step", "forecast"]
    if mode == "backtest":
        names.append("actual")
    columns: dict[str, list[str]] = {name: [] for name in names}
    results = []
    for i, (a, o) in enumerate(zip(prep.arrays, prep.origins, strict=True)):
        if mode == "backtest":
            fc = collect([a], [o], [outputs[i]], spec)
            pred, actual, last = fc.pred, fc.target, fc.last
        else:
            pred = spec.to_units(outputs[i][o].astype(np.float64))  # [N, H]
            actual = last = None
        if not np.isfinite(pred).all():
            results.append(Result(str(prep.path), a.name, "failed",
                                  f"{prep.path}: series '{a.name}': the model produced non-finite "
                                  "forecasts; check the input values"))
            continue
        cutoff = np.repeat(a.times[o], horizon)  # [N * H]
        fields = [
            [_quote(a.name)] * cutoff.size,
            _iso(cutoff, spec.step),
            _iso(cutoff + np.tile(steps, len(o)) * spec.step.value, spec.step),
            step_fields * len(o),
            _text(pred),
        ]
        res = Result(str(prep.path), a.name, "ok", forecasts=len(o), output=str(prep.output))
        if actual is not None:
            fields.append(_text(actual))
            pers = np.repeat(last[:, None], horizon, axis=1)
            m, p = mae(actual, pred), mae(actual, pers)
            res.metrics = {"origins": len(o), "mae": m, "rmse": rmse(actual, pred),
                           "persistence_mae": p, "skill": skill(m, p),
                           "targets": int(np.isfinite(actual).sum())}
        for name, field_ in zip(names, fields, strict=True):
            columns[name] += field_
        results.append(res)
    return columns, results


def _quote(text: str) -> str:
    """A CSV field, quoted where it must be."""
    if any(c in text for c in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _text(values: np.ndarray) -> list[str]:
    """(N, H) floats -> N * H fields with 7 significant digits (float32's); NaN -> ''."""
    return ["" if v != v else f"{v:.7g}" for v in values.ravel().tolist()]


def _iso(ns: np.ndarray, step: pd.Timedelta) -> list[str]:
    """int64 ns UTC -> ISO 8601 text with a Z (seconds, or milliseconds for sub-second grids)."""
    unit = "s" if step.value % 1_000_000_000 == 0 else "ms"
    uniq, inverse = np.unique(ns, return_inverse=True)  # a few cutoffs, many rows each
    text = np.char.add(np.datetime_as_string(uniq.astype("datetime64[ns]"), unit=unit), "Z")
    return text[inverse].tolist()


def _csv_text(columns: dict[str, list[str]]) -> str:
    """CSV text from equal-length columns of ready-made fields (a header line first)."""
    lines = [",".join(_quote(c) for c in columns)]
    lines += map(",".join, zip(*columns.values(), strict=True))
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def _run_batch(model: ForecastModule, batch: list[_Prepared], spec: DataSpec, mode: str,
               batch_size: int) -> list[tuple[int, Result]]:
    """Forecast the windows of several files in one pass, then write each file atomically."""
    arrays = [a for p in batch for a in p.arrays]
    origins = [o for p in batch for o in p.origins]
    history = model.receptive_field - 1
    windows = _windows(origins, history, mode, bool(model.hparams.causal))
    outputs = predict_windows(model, arrays, windows, model.hparams.horizon, batch_size)
    out: list[tuple[int, Result]] = []
    k = 0
    for p in batch:
        n = len(p.arrays)
        results = list(p.failures)
        if n:
            columns, series_results = _long_columns(p, outputs[k:k + n], spec, mode)
            if any(r.ok for r in series_results):
                try:
                    atomic_write_text(p.output, _csv_text(columns))
                except OSError as err:
                    series_results = [Result(str(p.path), r.series, "failed",
                                             f"{p.output}: cannot write the forecast ({err})")
                                      for r in series_results]
            results += series_results
        k += n
        out += [(p.index, r) for r in results]
    return out


def forecast_files(
    model: ForecastModule, paths: Sequence[str | Path], output_dir: str | Path,
    mode: str = "forecast", batch_size: int = 64, batch_windows: int = 8192,
) -> list[Result]:
    """Forecast every series of every file; one :class:`Result` per series (or per bad file),
    in input order. Windows of up to ``batch_windows`` origins, across files, run together."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {list(MODES)}")
    spec = model_spec(model)
    model.eval()
    receptive_field, horizon = model.receptive_field, int(model.hparams.horizon)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    done: list[tuple[int, Result]] = []
    pending: list[_Prepared] = []
    taken: dict[str, Path] = {}
    n_pending = 0
    for i, raw in enumerate(paths):
        path = Path(raw)
        name = output_name(path)
        if name in taken:
            done.append((i, Result(str(path), ALL_SERIES, "failed",
                                   f"{path}: its output {name} would overwrite that of "
                                   f"{taken[name]}; rename one of the two files")))
            continue
        taken[name] = path
        try:
            prep = prepare_file(i, path, output_dir / name, spec, receptive_field, horizon, mode)
        except DataError as err:
            done.append((i, Result(str(path), ALL_SERIES, "failed", str(err))))
            continue
        except Exception as err:  # a bug must not stop the other files either
            log.exception("%s: unexpected error", path)
            done.append((i, Result(str(path), ALL_SERIES, "failed",
                                   f"{path}: unexpected error ({type(err).__name__}: {err}); "
                                   "please report it with the file")))
            continue
        pending.append(prep)
        n_pending += prep.n_windows
        if n_pending >= batch_windows:
            done += _run_batch(model, pending, spec, mode, batch_size)
            pending, n_pending = [], 0
    if pending:
        done += _run_batch(model, pending, spec, mode, batch_size)
    return [r for _, r in sorted(done, key=lambda ir: ir[0])]


# ---------------------------------------------------------------- summary and entry


def summary_frame(results: Sequence[Result]) -> pd.DataFrame:
    """One row per result: file, series, status, reason, forecasts, output (+ metrics)."""
    rows = [{**{k: v for k, v in asdict(r).items() if k != "metrics"}, **r.metrics}
            for r in results]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(
        SUMMARY_COLUMNS + [k for r in results for k in r.metrics])))


def log_summary(results: Sequence[Result]) -> None:
    """The summary table, one line per result, in the log."""
    n_ok = sum(r.ok for r in results)
    log.info("summary: %d ok, %d failed", n_ok, len(results) - n_ok)
    log.info("%-40s %-12s %-7s %s", "file", "series", "status", "reason")
    for r in results:
        level = logging.INFO if r.ok else logging.ERROR
        log.log(level, "%-40s %-12s %-7s %s", r.file, r.series, r.status, r.reason)


def exit_code(results: Sequence[Result]) -> int:
    """0 when everything succeeded, 1 when anything failed."""
    return EXIT_OK if results and all(r.ok for r in results) else EXIT_SOME_FAILED


def write_summary(results: Sequence[Result], output_dir: str | Path, mode: str) -> None:
    """``summary.csv`` (and ``metrics.csv`` with an 'all' row for a backtest), atomically."""
    output_dir = Path(output_dir)
    _write_csv(output_dir / "summary.csv", summary_frame(results))
    if mode == "backtest":
        ok = [r for r in results if r.ok and r.metrics]
        rows = [{"file": r.file, "series": r.series, **r.metrics} for r in ok]
        if ok:
            n = sum(r.metrics["targets"] for r in ok)
            m = sum(r.metrics["mae"] * r.metrics["targets"] for r in ok) / n
            p = sum(r.metrics["persistence_mae"] * r.metrics["targets"] for r in ok) / n
            r2 = sum(r.metrics["rmse"] ** 2 * r.metrics["targets"] for r in ok) / n
            rows.append({"file": "all", "series": ALL_SERIES,
                         "origins": sum(r.metrics["origins"] for r in ok), "mae": m,
                         "rmse": r2 ** 0.5, "persistence_mae": p, "skill": skill(m, p),
                         "targets": n})
        _write_csv(output_dir / "metrics.csv", pd.DataFrame(rows))


def run(checkpoint: str | Path, inputs: str | Path | Sequence[str | Path],
        output_dir: str | Path, mode: str = "forecast", batch_size: int = 64,
        device: str = "cpu") -> int:
    """Load, forecast, summarise; the exit code (0 all ok, 1 some failed, 2 nothing ran)."""
    if mode not in MODES:
        log.error("mode=%s is not a mode; use mode=forecast or mode=backtest", mode)
        return EXIT_NOTHING_RAN
    from forecast.field_module import is_field_checkpoint_file, load_field_checkpoint

    if is_field_checkpoint_file(checkpoint):  # NetCDF maps in, CF NetCDF forecasts out
        from forecast.field_predict import run_fields

        return run_fields(load_field_checkpoint(checkpoint, device), inputs, output_dir)
    try:
        model, _ = load_model(checkpoint, device)
    except CheckpointError as err:
        log.error("%s", err)
        return EXIT_NOTHING_RAN
    paths, unmatched = resolve_inputs(inputs)
    if not paths:
        for r in unmatched:
            log.error("%s", r.reason)
        log.error("no input file to forecast; set inputs=FILE, a folder, a glob or a list")
        return EXIT_NOTHING_RAN
    log.info("forecasting %d files with %s (receptive field %d, horizon %d), mode=%s",
             len(paths), checkpoint, model.receptive_field, model.hparams.horizon, mode)
    with torch.inference_mode():
        results = unmatched + forecast_files(model, paths, output_dir, mode, batch_size)
    log_summary(results)
    write_summary(results, output_dir, mode)
    log.info("outputs in %s", Path(output_dir).resolve())
    return exit_code(results)


def main() -> int:
    """``python -m forecast.predict ...``: the Hydra shell around :func:`run`."""
    import hydra  # the entry point alone needs Hydra; the library above does not
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    state = {"code": EXIT_NOTHING_RAN, "started": False}

    @hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
    def _main(cfg: DictConfig) -> None:
        for key in ("checkpoint", "inputs"):
            if OmegaConf.is_missing(cfg, key) or cfg[key] in (None, ""):
                log.error("%s is required: python -m forecast.predict checkpoint=PATH "
                          "inputs=GLOB_OR_DIR_OR_LIST output_dir=DIR", key)
                return
        inputs = cfg.inputs
        if not isinstance(inputs, str):
            inputs = [str(v) for v in OmegaConf.to_container(inputs, resolve=True)]
        state["started"] = True
        state["code"] = run(cfg.checkpoint, inputs,
                            cfg.output_dir or HydraConfig.get().runtime.output_dir,
                            cfg.mode, int(cfg.batch_size), cfg.device)

    try:
        _main()
    except SystemExit as exc:  # Hydra exits 1 on a bad override, and on a crash in _main
        if exc.code not in (0, None):
            return EXIT_SOME_FAILED if state["started"] else EXIT_NOTHING_RAN
    return state["code"]


if __name__ == "__main__":
    sys.exit(main())
