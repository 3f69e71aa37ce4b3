"""Chronological splits without leakage, train-only scalers, dense targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_series

from forecast.baselines.tabular import LagFeatures
from forecast.data import ForecastDataModule, resolve_splits
from forecast.features import CYCLES, calendar_features, calendar_for
from forecast.frame import DataError
from forecast.windows import Window, origins, slide, tile


def module(path, **kw) -> ForecastDataModule:
    args = dict(path=str(path), time_column="time", target="temp", covariates=["hum"],
                series_id="station", horizon=6, span=32, train_stride=4, batch_size=8)
    args.update(kw)
    dm = ForecastDataModule(**args)
    dm.set_history(14)
    dm.setup()
    return dm


def test_no_training_target_falls_in_validation_or_test(series_csv):
    dm = module(series_csv)
    train_end = dm.splits["train"][1].value
    ds = dm.datasets["train"]
    for i, w in enumerate(ds.windows):
        _, _, mask = ds[i]
        a = dm.arrays[w.series]
        pos, h = np.nonzero(mask.numpy())
        target_idx = w.start + pos + h + 1
        assert a.times[target_idx].max() <= train_end
    # and validation targets stay inside validation
    v0, v1 = (t.value for t in dm.splits["val"])
    for s, o in enumerate(dm.origins["val"]):
        t = dm.arrays[s].times
        assert t[o + 1].min() >= v0 and t[o + 6].max() <= v1
        assert t[o].min() < v0  # the first origin sits one step before: its targets are in


def test_scalers_are_fitted_on_training_rows_only(tmp_path):
    df = make_series(n=24 * 30)
    times = pd.to_datetime(df["time"])
    late = times > times.min() + pd.Timedelta(days=24)
    df.loc[late, "temp"] += 100.0  # a shift only after training ends
    path = tmp_path / "shift.csv"
    df.to_csv(path, index=False)
    dm = module(path)
    assert dm.splits["train"][1] < times[late].min()
    train_mean = df.loc[pd.to_datetime(df["time"]) <= dm.splits["train"][1], "temp"].mean()
    assert dm.spec.mean[0] == pytest.approx(train_mean, rel=1e-9)
    assert dm.spec.mean[0] < 60  # the shifted values did not leak into the scaler


def test_dense_targets_line_up_with_the_series(series_csv):
    dm = module(series_csv)
    x, y, mask = dm.datasets["train"][3]
    w = dm.datasets["train"].windows[3]
    a = dm.arrays[w.series]
    i, h = 20, 5  # position 20 forecasts step start + 20 + h + 1
    assert y[i, h] == pytest.approx(float(a.y[w.start + i + h + 1]))
    assert x.shape == (14 + 32, dm.spec.n_features) and y.shape == (46, 6)
    assert not mask[:14].any() and mask[14:].all()  # only positions with full history


def test_tiling_scores_every_origin_once():
    idx = np.r_[20:95, 120:130]
    windows = tile(0, idx, history=10, length=30)
    scored = np.concatenate([np.arange(w.start + w.first, w.start + w.length) for w in windows])
    assert sorted(scored.tolist()) == idx.tolist()
    assert all(w.start + w.first - 10 >= 0 for w in windows)


def test_sliding_windows_stay_inside_origin_runs():
    idx = np.arange(10, 60)
    ws = slide(0, idx, history=10, length=20, stride=7)
    assert ws[0] == Window(0, 0, 20, 10)
    assert all(w.start + w.length - 1 <= 59 for w in ws)


def test_origins_respect_segments_and_split_end():
    times = np.arange(30, dtype=np.int64)
    seg = np.r_[np.zeros(15, int), np.ones(15, int)]
    o = origins(times, seg, start=0, end=25, history=3, horizon=2)
    assert o.tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 19, 20, 21, 22, 23]


def test_an_origin_belongs_to_a_split_by_its_targets_alone():
    times = np.arange(40, dtype=np.int64)
    seg = np.zeros(40, int)
    # split 10..20, horizon 3: origin 9 (targets 10, 11, 12) is in, origin 18 (19..21) out
    o = origins(times, seg, start=10, end=20, history=2, horizon=3)
    assert o.tolist() == list(range(9, 18))
    # consecutive splits share no target, and every origin sits in exactly one of them
    a = origins(times, seg, start=0, end=9, history=2, horizon=3)
    assert a.max() + 3 == 9 and not set(a) & set(o)


def test_too_short_split_is_refused_with_the_lengths(series_csv):
    with pytest.raises(DataError, match="no full training window"):
        module(series_csv, span=2000)


def test_splits_by_fraction_and_by_timestamp(series_csv):
    dm = ForecastDataModule(str(series_csv), "time", "temp", series_id="station")
    dm.load()
    sp = resolve_splits(dm.frame, {"train": ["2020-01-01", "2020-01-20"],
                                   "val": ["2020-01-21", "2020-01-25"],
                                   "test": ["2020-01-26", "2020-02-09"]}, (0.7, 0.15, 0.15))
    assert sp["train"][1] == pd.Timestamp("2020-01-20 23:59:59.999999999", tz="UTC")
    with pytest.raises(DataError, match="gives train, test but not val; give all three"):
        resolve_splits(dm.frame, {"train": ["2020-01-01", "2020-01-20"], "val": None,
                                  "test": ["2020-01-26", "2020-02-09"]}, (0.7, 0.15, 0.15))
    with pytest.raises(DataError, match="before 'train' ends"):
        resolve_splits(dm.frame, {"train": ["2020-01-01", "2020-01-20"],
                                  "val": ["2020-01-10", "2020-01-25"],
                                  "test": ["2020-01-26", "2020-02-09"]}, (0.7, 0.15, 0.15))


def test_calendar_leaves_out_cycles_training_does_not_repeat():
    hour = pd.Timedelta("1h")
    assert calendar_for(hour, pd.Timedelta(days=242)) == ["day", "week"]  # one year: no doy
    assert calendar_for(hour, pd.Timedelta(days=800)) == ["day", "week", "year"]
    assert calendar_for(pd.Timedelta("1D"), pd.Timedelta(days=800)) == ["week", "year"]


def test_seasonal_day_cycles_span_the_products_of_the_days_and_the_years_phases(tmp_path):
    times = pd.date_range("2013-01-01", periods=24 * 400, freq="1h", tz="UTC")
    sd, cd, sy, cy = calendar_features(times, ["day", "year"]).T
    sp, cp, sm, cm = calendar_features(times, ["day_plus_year", "day_minus_year"]).T
    np.testing.assert_allclose(sp, sd * cy + cd * sy, atol=1e-6)  # sin(d + y)
    np.testing.assert_allclose(cp, cd * cy - sd * sy, atol=1e-6)
    np.testing.assert_allclose(sm, sd * cy - cd * sy, atol=1e-6)  # sin(d - y)
    np.testing.assert_allclose(cm, cd * cy + sd * sy, atol=1e-6)
    # only when named: a grid and span that resolve every period never pick them
    assert calendar_for(pd.Timedelta("1h"), pd.Timedelta(days=5000)) == ["day", "week", "year"]
    # the config check (kept free of heavy imports) knows the same cycles
    from forecast.settings.training import CYCLES as CHECKED
    assert set(CHECKED) == set(CYCLES)
    # named in a data module: four more calendar features, then refused when unknown
    path = tmp_path / "s.csv"
    make_series(n=24 * 30).to_csv(path, index=False)
    dm = module(path, calendar=["day", "day_plus_year", "day_minus_year"])
    names = dm.load().feature_names
    assert names[-6:] == ["day_sin", "day_cos", "day_plus_year_sin", "day_plus_year_cos",
                          "day_minus_year_sin", "day_minus_year_cos"]
    with pytest.raises(DataError, match="calendar cycles \\['fortnight'\\] unknown"):
        module(path, calendar=["fortnight"]).load()
    # the baselines take them too (their calendar of the origin)
    assert LagFeatures(2, 0, ["day_plus_year", "day_minus_year"]).calendar == [
        "day_plus_year", "day_minus_year"]
    with pytest.raises(ValueError, match="fortnight"):
        LagFeatures(2, 0, ["fortnight"])


def test_angular_covariate_enters_as_sin_and_cos(tmp_path):
    df = make_series(n=24 * 30)
    df["wdir"] = np.where(np.arange(len(df)) % 2 == 0, 359.0, 1.0)
    path = tmp_path / "wind.csv"
    df.to_csv(path, index=False)
    dm = module(path, covariates=["hum", "wdir"], angular=["wdir"])
    names = dm.spec.feature_names
    assert names[:4] == ["temp", "hum", "wdir_sin", "wdir_cos"]
    x = dm.arrays[0].x
    s, c = names.index("wdir_sin"), names.index("wdir_cos")
    assert np.allclose(np.abs(x[:, s]), np.sin(np.deg2rad(1.0)), atol=1e-6)  # 359 ~ 1 degree
    assert np.allclose(x[:, c], np.cos(np.deg2rad(1.0)), atol=1e-6)
    with pytest.raises(DataError, match="angular columns \\['temp'\\] must be covariates"):
        module(path, covariates=["hum"], angular=["temp"])
