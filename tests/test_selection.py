"""Selection on rolling-origin folds: geometry, and the test split never read or scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, TINY, csv_overrides, make_series
from hydra import compose, initialize_config_dir

import selection
from forecast.data import ForecastDataModule
from forecast.evaluation.protocols import Forecasts, mean_forecasts
from forecast.evaluation.selection import SelectionError, check_before, rolling_folds
from forecast.features import SeriesArrays

DAY = pd.Timedelta(days=1)
# gradient boosting cut to two fitted steps of five trees: seconds, not minutes
SMALL_GBR = ["baselines.gradient_boosting.max_models=2", "baselines.gradient_boosting.max_iter=5",
             "baselines.gradient_boosting.lags=[0,1,23]"]


def test_folds_move_forward_and_end_with_the_selection_period():
    start, end = pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2020-03-31 23:00", tz="UTC")
    folds = rolling_folds(start, end, 3, 10 * DAY, 5 * DAY)
    assert folds[-1].score[1] == end
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.score[0] > a.score[1] and b.train[1] > a.train[1]
    for f in folds:  # train, early stopping, scored: in order, touching, never overlapping
        assert f.train[0] == start and f.train[1] < f.stop[0] < f.stop[1] < f.score[0]
        assert f.score[1] - f.score[0] == 10 * DAY - pd.Timedelta(1, "ns")
    with pytest.raises(SelectionError, match="fold 0: .* shorter than the early-stopping"):
        rolling_folds(start, end, 9, 10 * DAY, 5 * DAY)


def test_check_before_refuses_a_target_after_the_guard():
    times = pd.date_range("2020-01-01", periods=10, freq="h", tz="UTC").asi8
    a = SeriesArrays("s", times, np.zeros((10, 1), np.float32), np.zeros(10, np.float32),
                     np.zeros(10, np.int64))
    guard = pd.Timestamp(times[7])
    check_before([a], [np.array([2, 5])], 2, guard)  # last target at index 7: allowed
    with pytest.raises(SelectionError, match="after the selection period's end"):
        check_before([a], [np.array([2, 6])], 2, guard)


def run(tmp_path, name: str, csv) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="select", overrides=[
            "folds=2", "fold_length=3D", "stop_length=3D", "baselines.ridge.lags=24",
            "baselines.ridge.covariate_lags=3", "seeds=[0,1]", *SMALL_GBR])
        cfg.train_overrides = [*TINY, *csv_overrides(csv)]
        return selection.run_selection(cfg, tmp_path / name)


def test_selection_never_reads_the_test_split(tmp_path):
    frame = make_series()
    csv = tmp_path / "series.csv"
    frame.to_csv(csv, index=False)
    first = run(tmp_path, "first", csv)
    out = tmp_path / "first"
    for file in ("selection.md", "selection.csv", "selection.json"):
        assert (out / file).is_file()
    assert json.loads((out / "selection.json").read_text())["summary"] == first["summary"]
    summary = first["summary"]
    assert set(summary) == {"default", "default (mean of 2 seeds)", "persistence",
                            "seasonal_naive", "ridge", "gradient_boosting"}
    ens, single = summary["default (mean of 2 seeds)"], summary["default"]
    assert ens["kind"] == "ensemble" and single["seeds"] == [0, 1]
    # per fold, the MAE of the mean forecast is at most the mean of the seeds' MAEs
    assert all(e <= s + 1e-9 for e, s in zip(ens["fold_mae"], single["fold_mae"], strict=True))
    assert first["strongest_baseline"] in summary
    assert all(len(e["fold_mae"]) == 2 and min(e["n_targets"]) > 0 for e in summary.values())
    # every candidate counted the same targets on each fold
    assert len({tuple(e["n_targets"]) for e in summary.values()}) == 1

    # perturb every value of the test period (target and covariate): nothing may move
    t = pd.to_datetime(frame["time"])
    dm = ForecastDataModule(str(csv), "time", "temp", ["hum"], "station", horizon=6)
    dm.load()
    val_end = dm.splits["val"][1]
    assert pd.Timestamp(first["folds"][-1]["test"][1]) == val_end
    assert t.max() > val_end + 2 * DAY
    after = t > val_end
    frame.loc[after, "temp"] += 40.0
    frame.loc[after, "hum"] = 99.0
    frame.to_csv(csv, index=False)
    second = run(tmp_path, "second", csv)
    for name, e in first["summary"].items():
        np.testing.assert_allclose(second["summary"][name]["fold_mae"], e["fold_mae"],
                                   rtol=1e-6, err_msg=name)


def test_mean_forecasts_averages_the_same_origins_only():
    series, origin = np.array(["a", "a", "b"]), np.array([0, 1, 0], dtype=np.int64)
    target = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    last = np.zeros(3)
    one = Forecasts(series, origin, np.array([[0.0, 2.0], [4.0, 4.0], [5.0, 9.0]]), target, last)
    two = Forecasts(series, origin, np.array([[2.0, 2.0], [2.0, 0.0], [5.0, 3.0]]), target, last)
    mean = mean_forecasts([one, two])
    np.testing.assert_array_equal(mean.pred, [[1.0, 2.0], [3.0, 2.0], [5.0, 6.0]])
    np.testing.assert_array_equal(mean.target, target)
    shifted = Forecasts(series, origin + 1, two.pred, target, last)
    with pytest.raises(ValueError, match="same origins and series"):
        mean_forecasts([one, shifted])
