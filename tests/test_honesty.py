"""Honesty end to end: perturb every raw value after origin t in the CSV, rerun the whole
pipeline (read, repair, features, windows, model), and see what moves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_series

from forecast.data import ForecastDataModule
from forecast.evaluation import forecast_origins
from forecast.module import ForecastModule

H = 6


def forecasts_at(path, t_time: pd.Timestamp, causal: bool) -> dict[str, np.ndarray]:
    """Honest and teacher-forced forecasts (target units) made at ``t_time`` per series."""
    dm = ForecastDataModule(str(path), "time", "temp", ["hum"], "station", horizon=H,
                            max_gap=3, bounds={"hum": [0, 100]}, span=48)
    spec = dm.load()
    torch.manual_seed(0)
    model = ForecastModule(n_features=spec.n_features, horizon=H, causal=causal, channels=8,
                           skip_channels=8, dilations=[1, 2, 4], data_spec=spec.to_dict()).eval()
    at = [np.flatnonzero(a.times == t_time.value) for a in dm.arrays]
    assert all(len(o) == 1 for o in at)
    honest = forecast_origins(model, dm.arrays, at, spec, "honest")
    # teacher-forced over the origins t .. t + 10, as over a test period: one dense window
    run = [o[0] + np.arange(11) for o in at]
    dense = forecast_origins(model, dm.arrays, run, spec, "teacher_forced", span=dm.span)
    return {"honest": honest.pred, "teacher_forced": dense.pred[dense.origin == t_time.value]}


@pytest.mark.parametrize("causal", [True, False])
def test_nothing_after_the_origin_moves_an_honest_forecast(tmp_path, causal):
    df = make_series()
    times = pd.to_datetime(df["time"])
    t_time = times.min() + pd.Timedelta(days=36)  # in the test part of the default fractions
    clean, dirty = tmp_path / "clean.csv", tmp_path / "dirty.csv"
    df.to_csv(clean, index=False)
    after = (times > t_time).to_numpy()
    rng = np.random.default_rng(0)
    df.loc[after, "temp"] += rng.normal(0, 10, after.sum()).round(3)
    df.loc[after, "hum"] = rng.uniform(0, 100, after.sum()).round(3)
    # repairs after t as well: a short gap (carried forward), a long one (splits the
    # series), and an impossible value (made missing)
    rows = np.flatnonzero(after)
    df.loc[rows[[3, 4]], "temp"] = np.nan
    df.loc[rows[30:40], "hum"] = np.nan
    df.loc[rows[50], "hum"] = 500.0
    df.to_csv(dirty, index=False)

    before, moved = forecasts_at(clean, t_time, causal), forecasts_at(dirty, t_time, causal)
    np.testing.assert_array_equal(moved["honest"], before["honest"])
    if causal:  # teacher-forced equals honest for the causal model: nothing moves either
        np.testing.assert_array_equal(moved["teacher_forced"], before["teacher_forced"])
    else:  # teeth: the standard model's teacher-forced forecast at t reads the future
        assert np.abs(moved["teacher_forced"] - before["teacher_forced"]).max() > 1e-3
