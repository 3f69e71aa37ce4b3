"""The batch: files read and checked one by one, forecast together, written as they finish.

Whatever one file does (unreadable, too big, out of memory, a bug) becomes its own failed
row; :func:`forecast.predict.command.run` writes ``summary.csv`` even when the run itself is
stopped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecast.features import DataSpec
from forecast.files import sync_dir
from forecast.frame import ReadLimits
from forecast.module import ForecastModule
from forecast.predict.batching import Unit, forecast_units, units
from forecast.predict.checkpoint import NON_CAUSAL_WARNING, model_spec
from forecast.predict.checks import Prepared, prepare_one, prepare_together
from forecast.predict.outputs import ForecastWriter, output_name
from forecast.predict.summary import (
    Result,
    Scores,
    failed,
)

log = logging.getLogger("forecast.predict")

READ_TOGETHER = 64  # files read, checked and turned into features in one pass


@dataclass
class _Job:
    """A file being forecast: its writer, opened at its first rows, and its scores."""

    prep: Prepared
    writer: ForecastWriter | None = None
    error: str = ""
    bad_series: dict[int, str] = field(default_factory=dict)
    scores: dict[int, Scores] = field(default_factory=dict)


class _Batch:
    """Queued units of several files, forecast and written when enough are queued."""

    def __init__(self, model: ForecastModule, spec: DataSpec, mode: str, folder: Path,
                 batch_size: int, batch_windows: int, fsync_each: bool,
                 finish: Callable[[_Job], None]) -> None:
        self.model, self.spec, self.mode, self.folder = model, spec, mode, folder
        self.batch_size, self.batch_windows = batch_size, batch_windows
        self.fsync_each, self.finish = fsync_each, finish
        self.dense = mode == "backtest" and bool(model.hparams.causal)
        self.horizon = int(model.hparams.horizon)
        self.step_ns = spec.step.value
        self.jobs: dict[int, _Job] = {}
        self.queue: deque[Unit] = deque()
        self.queued = 0

    def add(self, prep: Prepared) -> None:
        """Queue a file's origins; forecast and write while a batch's worth is queued."""
        self.jobs[prep.index] = _Job(prep)
        work = units(prep.index, prep.origins, self.batch_windows)
        if not work:
            self.finish(self.jobs.pop(prep.index))
        self.queue += work
        self.queued += sum(len(u.origins) for u in work)
        self.flush(everything=False)

    def flush(self, everything: bool = True) -> None:
        """Forecast and write queued units, at most ``batch_windows`` origins at a time."""
        while self.queue and (everything or self.queued >= self.batch_windows):
            work, n = [], 0
            while self.queue and (not work or n + len(self.queue[0].origins)
                                  <= self.batch_windows):
                work.append(self.queue.popleft())
                n += len(work[-1].origins)
            self.queued -= n
            self._run(work)

    def _forecast(self, work: list[Unit]) -> list[np.ndarray | None]:
        """Forecasts of the units; when the pass fails, file by file, so that only the file
        that fails (out of memory, say) is lost."""
        arrays = [self.jobs[u.job].prep.arrays[u.series] for u in work]
        try:
            return forecast_units(self.model, work, arrays, self.horizon, self.dense,
                                  self.batch_size)
        except Exception as err:  # isolate the file that fails, keep the others
            jobs = list(dict.fromkeys(u.job for u in work))
            if len(jobs) == 1:
                job = self.jobs[jobs[0]]
                if isinstance(err, MemoryError):
                    log.error("%s: out of memory in the model pass", job.prep.path)
                else:
                    log.exception("%s: the model pass failed", job.prep.path)
                job.error = (f"{job.prep.path}: the model pass failed ({type(err).__name__}: "
                             f"{err}); lower batch_size, or report it with the file")
                return [None] * len(work)
        return [out for job in jobs for out in self._forecast([u for u in work if u.job == job])]

    def _run(self, work: list[Unit]) -> None:
        wrote = False
        for u, out in zip(work, self._forecast(work), strict=True):
            job = self.jobs[u.job]
            if out is not None and not job.error:
                try:
                    self._write(job, u, out)
                except Exception as err:  # a bug or no memory: this file fails, not the run
                    log.exception("%s: writing the forecast failed", job.prep.path)
                    job.error = (f"{job.prep.output}: writing the forecast failed "
                                 f"({type(err).__name__}: {err})")
            if u.last:
                wrote |= self._close(job)
                self.finish(self.jobs.pop(u.job))
        if wrote and not self.fsync_each:
            sync_dir(self.folder)  # once per batch: the renames of its files

    def _write(self, job: _Job, u: Unit, out: np.ndarray) -> None:
        a, spec = job.prep.arrays[u.series], self.spec
        if u.series in job.bad_series:
            return
        pred = spec.to_units(out.astype(np.float64))  # [N, H], or [N, H, Q] quantiles
        quantiles = None
        if pred.ndim == 3:  # a quantile model: the median is the forecast
            quantiles, pred = pred, pred[..., self.model.net.median]
        if not np.isfinite(quantiles if quantiles is not None else pred).all():
            job.bad_series[u.series] = (f"{job.prep.path}: series '{a.name}': the model produced "
                                        "non-finite forecasts; check the input values")
            return
        actual = None
        if self.mode == "backtest":
            steps = np.arange(1, self.horizon + 1)
            actual = spec.to_units(a.y[u.origins[:, None] + steps].astype(np.float64))
            last = spec.to_units(a.x[u.origins, 0].astype(np.float64))
            job.scores.setdefault(u.series, Scores()).add(actual, pred, last)
        try:
            if job.writer is None:
                job.writer = ForecastWriter(job.prep.output, spec.series_id or "series",
                                            self.mode == "backtest", self.fsync_each,
                                            self.model.hparams.get("quantiles"))
            job.writer.write(a.name, a.times[u.origins], self.step_ns, pred, actual,
                             self.step_ns % 1_000_000_000 != 0, quantiles)
        except OSError as err:
            job.error = f"{job.prep.output}: cannot write the forecast ({err})"

    def _close(self, job: _Job) -> bool:
        if job.writer is None:
            return False
        try:
            if job.error or len(job.bad_series) == len(job.prep.arrays):
                job.writer.abort(RuntimeError(job.error))
                return False
            job.writer.commit()
            return True
        except OSError as err:
            job.error = f"{job.prep.output}: cannot write the forecast ({err})"
            return False

    def abort(self, err: BaseException) -> None:
        for job in self.jobs.values():
            if job.writer is not None:
                job.writer.abort(err)


def _results(job: _Job, mode: str) -> list[Result]:
    p = job.prep
    out = list(p.failures)
    for s, a in enumerate(p.arrays):
        if job.error or s in job.bad_series:
            out.append(failed(p.path, job.error or job.bad_series[s], a.name))
            continue
        res = Result(str(p.path), a.name, "ok", forecasts=len(p.origins[s]), output=str(p.output))
        if mode == "backtest":
            res.metrics = job.scores[s].metrics()
        out.append(res)
    return out or [failed(p.path, f"{p.path}: no series in the file")]


def forecast_files(
    model: ForecastModule, paths: Sequence[str | Path], output_dir: str | Path,
    mode: str = "forecast", batch_size: int = 64, batch_windows: int = 8192,
    limits: ReadLimits | None = None, fsync_each: bool = False,
    done: dict[int, list[Result]] | None = None,
) -> list[Result]:
    """Forecast every series of every file; :class:`Result` s per file in input order (one per
    series, or one for a bad file). Up to ``batch_windows`` origins, across files, are forecast
    together; ``done`` (if given) receives each file's results as it finishes."""
    spec = model_spec(model)
    model.eval()
    if not model.hparams.causal:
        log.warning("%s", NON_CAUSAL_WARNING)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    done = {} if done is None else done

    def finish(job: _Job) -> None:
        done[job.prep.index] = _results(job, mode)

    batch = _Batch(model, spec, mode, output_dir, batch_size, batch_windows, fsync_each, finish)
    taken: dict[str, Path] = {}
    r, h = model.receptive_field, int(model.hparams.horizon)
    try:
        for g in range(0, len(paths), READ_TOGETHER):
            jobs = []
            for i in range(g, min(g + READ_TOGETHER, len(paths))):
                path = Path(paths[i])
                name = output_name(path)
                if name in taken:
                    done[i] = [failed(path, f"{path}: its output {name} would overwrite that "
                                            f"of {taken[name]}; rename one of the two files")]
                    continue
                taken[name] = path
                jobs.append((i, path, output_dir / name))
            read = prepare_together(jobs, spec, r, h, mode, limits)
            for i, path, output in jobs:
                prep = read.get(i) or prepare_one(i, path, output, spec, r, h, mode, limits)
                if isinstance(prep, Result):
                    done[i] = [prep]
                    continue
                batch.add(prep)
        batch.flush()
    except BaseException as err:
        batch.abort(err)
        raise
    return [r for i in sorted(done) for r in done[i]]
