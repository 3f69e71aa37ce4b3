"""Model selection by rolling-origin folds inside train + validation; never the test split.

Fold k splits the selection period (the start of the training split to the end of
the validation split) in three: a training part, an early-stopping block, and the
scored block that follows it. The scored blocks are the last ``n_folds`` blocks of
``fold_length`` before the end of validation, moving forward in time. Each fold's
data module gets the fold's training part as its train split (scalers fitted on it
alone), the early-stopping block as its val split and the scored block as its test
split: the real test period is in no slot, and :func:`select` refuses to score a
target after ``guard_end``. With ``data.refit`` the nets and the baselines are then fitted
again on the training part and the early-stopping block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.baselines import Baseline, Persistence
from forecast.data import ForecastDataModule
from forecast.evaluation.protocols import (
    Forecasts,
    collect,
    forecast_origins,
    mean_forecasts,
    station_scores,
)
from forecast.features import DataSpec, SeriesArrays, series_arrays
from forecast.module import load_checkpoint

log = logging.getLogger(__name__)
ONE = pd.Timedelta(1, "ns")


class SelectionError(ValueError):
    """Folds that do not fit the selection period, or a fold that would read the test split."""


@dataclass(frozen=True)
class Fold:
    """Inclusive (start, end) UTC timestamps of one fold's three parts."""

    index: int
    train: tuple[pd.Timestamp, pd.Timestamp]
    stop: tuple[pd.Timestamp, pd.Timestamp]  # early stopping: the data module's val split
    score: tuple[pd.Timestamp, pd.Timestamp]  # scored: the data module's test split

    def splits(self) -> dict[str, list[str]]:
        """The fold as a data module's ``splits`` (exact ISO timestamps)."""
        return {name: [a.isoformat(), b.isoformat()]
                for name, (a, b) in (("train", self.train), ("val", self.stop),
                                     ("test", self.score))}

    def describe(self) -> str:
        day = "%Y-%m-%d %H:%M"
        return (f"fold {self.index}: train {self.train[0]:{day}} .. {self.train[1]:{day}}, "
                f"early stopping .. {self.stop[1]:{day}}, scored {self.score[0]:{day}} .. "
                f"{self.score[1]:{day}}")


def rolling_folds(start: pd.Timestamp, end: pd.Timestamp, n_folds: int,
                  fold_length: pd.Timedelta, stop_length: pd.Timedelta) -> list[Fold]:
    """``n_folds`` folds whose scored blocks of ``fold_length`` tile the time up to
    ``end``; each trains on everything from ``start`` to ``stop_length`` before its block."""
    if n_folds < 1 or fold_length <= pd.Timedelta(0) or stop_length <= pd.Timedelta(0):
        raise SelectionError(f"folds={n_folds}, fold length {fold_length}, early-stopping "
                             f"length {stop_length}: all must be positive")
    folds = []
    for k in range(n_folds):
        score_end = end - (n_folds - 1 - k) * fold_length
        score_start = score_end - fold_length + ONE
        stop_start = score_start - stop_length
        if stop_start - ONE <= start + stop_length:
            raise SelectionError(
                f"fold {k}: scored from {score_start}, early stopping from {stop_start}, leaves "
                f"training {start} .. {stop_start - ONE}, shorter than the early-stopping block; "
                "use fewer or shorter folds"
            )
        folds.append(Fold(k, (start, stop_start - ONE), (stop_start, score_start - ONE),
                          (score_start, score_end)))
    return folds


@dataclass
class Score:
    """One scored (candidate, fold, seed): honest MAE overall and per series."""

    name: str
    kind: str  # 'model', 'ensemble' (the mean of a model's seeds) or 'baseline'
    fold: int
    seed: int | None
    mae: float
    n_targets: int
    stations: dict[str, float]
    seconds: float  # training (models) or fitting (baselines) time

    def row(self) -> dict:
        return {"name": self.name, "kind": self.kind, "fold": self.fold, "seed": self.seed,
                "mae": self.mae, "n_targets": self.n_targets, "seconds": round(self.seconds, 2),
                **{f"mae_{k}": v for k, v in self.stations.items()}}


def _score(name: str, kind: str, fold: int, seed: int | None, fc: Forecasts,
           reference: Forecasts, seconds: float) -> Score:
    s = station_scores(fc, reference)
    return Score(name, kind, fold, seed, s["all"]["mae"], s["all"]["n_targets"],
                 {k: v["mae"] for k, v in s.items() if k != "all"}, seconds)


def ensemble_name(name: str, n: int) -> str:
    """The candidate that averages the forecasts of ``n`` seeds of ``name``."""
    return f"{name} (mean of {n} seeds)"


def check_before(arrays: list[SeriesArrays], origins: list[np.ndarray], horizon: int,
                 guard_end: pd.Timestamp) -> None:
    """Refuse origins whose targets reach past ``guard_end`` (the selection period's end)."""
    for a, o in zip(arrays, origins, strict=True):
        if len(o) and a.times[o.max() + horizon] > guard_end.value:
            raise SelectionError(
                f"series {a.name!r}: a scored target at {pd.Timestamp(a.times[o.max() + horizon])}"
                f" lies after the selection period's end {guard_end}; selection never scores "
                "the test split"
            )


def score_fold(fold: Fold, dm: ForecastDataModule, checkpoints: dict[tuple[str, int], Path],
               seconds: dict[tuple[str, int], float], baselines: dict[str, Baseline],
               guard_end: pd.Timestamp, batch_size: int = 256) -> list[Score]:
    """Honest scores of every trained model and every baseline on the fold's scored block,
    all on the same origins and targets."""
    spec = dm.load()
    if dm.splits["test"][1] > guard_end:
        raise SelectionError(f"fold {fold.index}: its scored block ends {dm.splits['test'][1]}, "
                             f"after the selection period's end {guard_end}")
    models = {key: load_checkpoint(str(path)) for key, path in checkpoints.items()}
    history = max([m.receptive_field - 1 for m in models.values()]
                  + [b.history for b in baselines.values()] + [0])
    origins = dm.split_origins("test", history)
    if sum(len(o) for o in origins) == 0:
        raise SelectionError(f"fold {fold.index}: no scored origin with {history} steps of "
                             "history; use longer folds")
    check_before(dm.arrays, origins, dm.horizon, guard_end)
    reference = collect(dm.arrays, origins, Persistence(dm.horizon).predict(dm.arrays, origins),
                        spec)
    out = []
    for name, b in baselines.items():
        started = time.perf_counter()
        b.fit(dm.arrays, dm.fit_origins(b.history))  # data.refit: train + early stopping
        fitted = time.perf_counter() - started
        fc = collect(dm.arrays, origins, b.predict(dm.arrays, origins), spec)
        out.append(_score(name, "baseline", fold.index, None, fc, reference, fitted))
    by_variant: dict[str, list[Forecasts]] = {}
    for (name, seed), model in models.items():
        own = DataSpec.from_dict(model.hparams.data_spec)  # the fold's scalers, its calendar
        fc = forecast_origins(model, series_arrays(dm.frame, own), origins, own, "honest",
                              dm.span, batch_size)
        if not (np.array_equal(fc.origin, reference.origin)
                and np.allclose(fc.target, reference.target, atol=1e-3, equal_nan=True)):
            raise SelectionError(f"variant {name!r}: its targets differ from the baselines' "
                                 "(it changes data settings that change targets)")
        out.append(_score(name, "model", fold.index, seed, fc, reference, seconds[name, seed]))
        by_variant.setdefault(name, []).append(fc)
    for name, fcs in by_variant.items():  # several seeds: also their forecasts' mean
        if len(fcs) > 1:
            total = sum(t for (n, _), t in seconds.items() if n == name)
            out.append(_score(ensemble_name(name, len(fcs)), "ensemble", fold.index, None,
                              mean_forecasts(fcs), reference, total))
    for s in out:
        log.info("fold %d %s%s: honest MAE %.3f (%d targets)", fold.index, s.name,
                 "" if s.seed is None else f" seed {s.seed}", s.mae, s.n_targets)
    return out


def select(folds: list[Fold], variants: list[str], seeds: list[int],
           fit: Callable[[str, Fold, int, Path], Path],
           load_data: Callable[[Fold], ForecastDataModule], baselines: dict[str, Baseline],
           guard_end: pd.Timestamp, out_dir: Path, batch_size: int = 256) -> list[Score]:
    """Train every (variant, fold, seed) with ``fit(variant, fold, seed, run_dir)`` (which
    returns the best checkpoint) and score it and the baselines honestly on each fold."""
    scores: list[Score] = []
    for fold in folds:
        log.info("%s", fold.describe())
        checkpoints, seconds = {}, {}
        for name in variants:
            for seed in seeds:
                started = time.perf_counter()
                run_dir = out_dir / "runs" / f"fold{fold.index}" / f"{name}_seed{seed}"
                checkpoints[name, seed] = fit(name, fold, seed, run_dir)
                seconds[name, seed] = time.perf_counter() - started
        scores += score_fold(fold, load_data(fold), checkpoints, seconds, baselines, guard_end,
                             batch_size)
    return scores
