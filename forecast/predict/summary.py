"""What happened to every file and series: results, backtest scores, ``summary.csv``."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecast.files import atomic_open
from forecast.frame.schema import printable
from forecast.metrics import skill

log = logging.getLogger("forecast.predict")

EXIT_OK, EXIT_SOME_FAILED, EXIT_NOTHING_RAN = 0, 1, 2
ALL_SERIES = "*"  # the series of a result about the whole file
SUMMARY_COLUMNS = ["file", "series", "status", "reason", "forecasts", "output"]
METRIC_COLUMNS = ["origins", "mae", "rmse", "persistence_mae", "skill", "targets"]


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


def failed(file: str | Path, reason: str, series: str = ALL_SERIES) -> Result:
    return Result(str(file), series, "failed", reason)


@dataclass
class Scores:
    """Backtest errors summed chunk by chunk, so no forecast needs to stay in memory."""

    origins: int = 0
    targets: int = 0
    abs_err: float = 0.0
    sq_err: float = 0.0
    pers_abs_err: float = 0.0

    def add(self, actual: np.ndarray, pred: np.ndarray, last: np.ndarray) -> None:
        """(N, H) actuals (NaN: not scored) and forecasts, (N,) last observed targets."""
        ok = np.isfinite(actual)
        err = (pred - actual)[ok]
        self.origins += len(actual)
        self.targets += int(ok.sum())
        self.abs_err += float(np.abs(err).sum())
        self.sq_err += float((err ** 2).sum())
        self.pers_abs_err += float(np.abs(last[:, None] - actual)[ok].sum())

    def merge(self, other: Scores) -> None:
        for k in ("origins", "targets", "abs_err", "sq_err", "pers_abs_err"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def metrics(self) -> dict:
        n = max(self.targets, 1)
        m, p = self.abs_err / n, self.pers_abs_err / n
        return {"origins": self.origins, "mae": m, "rmse": (self.sq_err / n) ** 0.5,
                "persistence_mae": p, "skill": skill(m, p) if p > 0 else float("nan"),
                "targets": self.targets}


def log_summary(results: Sequence[Result]) -> None:
    """The summary table, one line per result, in the log."""
    n_ok = sum(r.ok for r in results)
    log.info("summary: %d ok, %d failed", n_ok, len(results) - n_ok)
    log.info("%-40s %-12s %-7s %s", "file", "series", "status", "reason")
    for r in results:
        level = logging.INFO if r.ok else logging.ERROR
        log.log(level, "%-40s %-12s %-7s %s", printable(r.file), printable(r.series), r.status,
                printable(r.reason))  # one line each, whatever a name holds


def exit_code(results: Sequence[Result]) -> int:
    """0 when everything succeeded, 1 when anything failed (or nothing came back)."""
    return EXIT_OK if results and all(r.ok for r in results) else EXIT_SOME_FAILED


def _write_rows(path: Path, columns: list[str], rows: list[dict]) -> None:
    with atomic_open(path) as f:
        w = csv.DictWriter(f, columns, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write_summary(results: Sequence[Result], output_dir: str | Path, mode: str) -> None:
    """``summary.csv`` (and ``metrics.csv`` with an 'all' row for a backtest), atomically."""
    output_dir = Path(output_dir)
    metric_cols = METRIC_COLUMNS if mode == "backtest" else []
    rows = [{"file": r.file, "series": r.series, "status": r.status, "reason": r.reason,
             "forecasts": r.forecasts, "output": r.output, **r.metrics} for r in results]
    _write_rows(output_dir / "summary.csv", SUMMARY_COLUMNS + metric_cols, rows)
    if mode != "backtest":
        return
    ok = [r for r in results if r.ok and r.metrics]
    rows = [{"file": r.file, "series": r.series, **r.metrics} for r in ok]
    if ok:
        total = Scores()
        for r in ok:
            m, n = r.metrics, r.metrics["targets"]
            total.merge(Scores(m["origins"], n, m["mae"] * n, m["rmse"] ** 2 * n,
                               m["persistence_mae"] * n))
        rows.append({"file": "all", "series": ALL_SERIES, **total.metrics()})
    _write_rows(output_dir / "metrics.csv", ["file", "series", *METRIC_COLUMNS], rows)
