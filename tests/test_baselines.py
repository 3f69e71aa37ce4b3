"""Baselines against values computed by hand on tiny series."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.baselines import GradientBoosting, LagFeatures, Persistence, RidgeLags, SeasonalNaive
from forecast.baselines.tabular import fit_steps
from forecast.features import SeriesArrays
from forecast.metrics import mae

# the covariates at t only and no calendar: the design row is lags + covariate, by hand
AT_T = {"covariate_lags": 1, "calendar": ()}


def tiny(values: list[float], segment: list[int] | None = None, cov: list[float] | None = None,
         name: str = "s") -> SeriesArrays:
    """A series whose scaled target is ``values`` (feature 0) plus one covariate."""
    y = np.asarray(values, dtype=np.float32)
    c = np.zeros_like(y) if cov is None else np.asarray(cov, dtype=np.float32)
    n = len(y)
    return SeriesArrays(
        name=name, times=np.arange(n, dtype=np.int64) * 3_600_000_000_000,
        x=np.stack([y, c], axis=1), y=y.copy(),
        segment=np.zeros(n, np.int64) if segment is None else np.asarray(segment, np.int64),
    )


def test_persistence_repeats_the_last_value():
    a = tiny([1, 2, 3, 4, 5, 6])
    out = Persistence(horizon=2).predict([a], [np.array([2, 3])])[0]
    np.testing.assert_array_equal(out[2], [3, 3])
    np.testing.assert_array_equal(out[3], [4, 4])
    assert np.isnan(out[[0, 1, 4, 5]]).all()  # only the origins are filled


def test_persistence_mae_by_hand():
    # origin 2 (value 3): targets 4, 5 -> errors 1, 2; origin 3 (value 4): 5, 6 -> 1, 2
    a = tiny([1, 2, 3, 4, 5, 6])
    o = np.array([2, 3])
    pred = Persistence(horizon=2).predict([a], [o])[0][o]
    target = np.stack([a.y[o + 1], a.y[o + 2]], axis=1)
    assert mae(target, pred) == pytest.approx(1.5)


def test_seasonal_naive_reads_one_season_back():
    # season 3, horizon 4: h = 1, 2, 3 read t - 2, t - 1, t; h = 4 reads t + 4 - 6 = t - 2
    a = tiny([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    out = SeasonalNaive(horizon=4, season=3).predict([a], [np.array([4, 5])])[0]
    np.testing.assert_array_equal(out[4], [12, 13, 14, 12])
    np.testing.assert_array_equal(out[5], [13, 14, 15, 13])


def test_seasonal_naive_refuses_short_history():
    a = tiny([10, 11, 12, 13, 14, 15])
    with pytest.raises(ValueError, match="fewer than 2 earlier steps"):
        SeasonalNaive(horizon=1, season=3).predict([a], [np.array([1])])
    # and across a segment break (a long gap split the series at index 3)
    b = tiny([10, 11, 12, 13, 14, 15], segment=[0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="in its segment"):
        SeasonalNaive(horizon=1, season=3).predict([b], [np.array([4])])


def test_ridge_recovers_a_linear_trend_exactly():
    # y = 0.5 t: the change y[t+h] - y[t] is 0.5 h whatever the lags; the intercept alone
    # fits it exactly, so the penalty sets every weight to zero and Ridge predicts
    # y[t] + 0.5 h: at t = 30, 15.5 and 16.0
    a = tiny([0.5 * t for t in range(40)])
    train = [np.arange(3, 25)]
    model = RidgeLags(horizon=2, lags=4, alpha=1.0, **AT_T).fit([a], train)
    np.testing.assert_allclose(model.model_.coef_, 0.0, atol=1e-6)
    assert model.model_.coef_.shape == (2, 4 + 1)  # 4 lags + 1 covariate
    out = model.predict([a], [np.array([30])])[0]
    np.testing.assert_allclose(out[30], [15.5, 16.0], atol=1e-3)


def test_ridge_strong_penalty_predicts_the_mean_change():
    # with alpha huge the coefficients vanish: the forecast is y[t] + mean training change
    rng = np.random.default_rng(0)
    a = tiny(np.cumsum(rng.normal(size=60)).tolist(), cov=rng.normal(size=60).tolist())
    o = np.arange(3, 40)
    model = RidgeLags(horizon=3, lags=4, alpha=1e12, **AT_T).fit([a], [o])
    steps = np.arange(1, 4)
    mean_change = (a.y[o[:, None] + steps] - a.y[o, None]).mean(axis=0)
    out = model.predict([a], [np.array([50])])[0]
    np.testing.assert_allclose(out[50], a.y[50] + mean_change, atol=1e-6)


def test_ridge_uses_only_fit_origins_and_skips_gaps_and_missing_targets():
    values = [0.5 * t for t in range(40)]
    a = tiny(values, segment=[0] * 10 + [1] * 30)
    a.y[20] = np.nan  # a missing target: origins 18, 19 (h = 2, 1) are left out
    # origins 10..12 lack 4 lags inside segment 1 and are dropped, not read across the gap;
    # teeth: a wrong target that only origin 10 would train on
    a.y[11] = 50.0
    model = RidgeLags(horizon=2, lags=4, alpha=1.0, **AT_T).fit([a], [np.arange(10, 25)])
    np.testing.assert_allclose(model.predict([a], [np.array([30])])[0][30], [15.5, 16.0],
                               atol=1e-3)
    # changing test targets after fitting changes nothing: only fit origins were read
    b = tiny(values, segment=[0] * 10 + [1] * 30)
    b.y[27:] += 100.0  # targets after the last fit origin (24) + H
    refit = RidgeLags(horizon=2, lags=4, alpha=1.0, **AT_T).fit([b], [np.arange(10, 25)])
    np.testing.assert_allclose(refit.model_.coef_, model.model_.coef_, atol=1e-6)
    np.testing.assert_allclose(refit.model_.intercept_, [0.5, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="fewer than 3 earlier steps"):
        model.predict([a], [np.array([11])])


def test_ridge_refuses_when_nothing_to_fit():
    a = tiny([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="no training origins with 7 steps of history"):
        RidgeLags(horizon=1, lags=8, **AT_T).fit([a], [np.arange(0, 3)])


def test_fair_design_reads_covariate_lags_calendar_and_series():
    rng = np.random.default_rng(1)
    b = tiny(rng.normal(size=50).tolist(), cov=rng.normal(size=50).tolist(), name="b")
    feats = LagFeatures(lags=3, covariate_lags=[0, 2], calendar=["day", "year"])
    feats.series = ["a", "b"]
    row = feats.transform(b, np.array([30]))[0]
    # 3 target lags, the covariate at t and t - 2, sin/cos of day and year, one-hot series
    assert row.shape == (3 + 2 + 4 + 2,)
    np.testing.assert_allclose(row[:3], b.x[[30, 29, 28], 0])
    np.testing.assert_allclose(row[3:5], b.x[[30, 28], 1])
    hour = 30 % 24  # times are whole hours since 1970-01-01 00:00 UTC
    np.testing.assert_allclose(row[5:7], [np.sin(2 * np.pi * hour / 24),
                                          np.cos(2 * np.pi * hour / 24)], atol=1e-9)
    np.testing.assert_array_equal(row[-2:], [0, 1])
    assert feats.history == 2


@pytest.mark.parametrize("model", [
    RidgeLags(horizon=3, lags=5, covariate_lags=3),
    GradientBoosting(horizon=3, lags=[0, 1, 4], covariate_lags=[0, 2], max_iter=20,
                     min_samples_leaf=5),
])
def test_tabular_baselines_read_nothing_after_the_origin(model):
    rng = np.random.default_rng(2)
    a = tiny(np.cumsum(rng.normal(size=120)).tolist(), cov=rng.normal(size=120).tolist())
    model.fit([a], [np.arange(10, 80)])
    t = 95
    before = model.predict([a], [np.array([t])])[0][t]
    later = tiny(a.y.tolist(), cov=a.x[:, 1].tolist())
    later.x[t + 1:] += 50.0  # every input after t, target and covariate
    later.y[t + 1:] += 50.0
    np.testing.assert_array_equal(model.predict([later], [np.array([t])])[0][t], before)
    at_t = tiny(a.y.tolist(), cov=a.x[:, 1].tolist())
    at_t.x[t - 2 : t + 1, 1] += 5.0  # teeth: the covariate at t and t - 2 is read
    assert not np.allclose(model.predict([at_t], [np.array([t])])[0][t], before)


def test_gradient_boosting_fits_some_steps_and_interpolates_the_rest():
    assert fit_steps(24, 30).tolist() == list(range(1, 25))
    steps = fit_steps(8, 3)
    assert steps.tolist() == [1, 3, 8]
    # y = 0.5 t: the change is 0.5 h exactly; trees fit a constant per step, the steps
    # between fitted ones (2, 4..7) are interpolated linearly, hence exact as well
    a = tiny([0.5 * t for t in range(80)])
    model = GradientBoosting(horizon=8, lags=2, covariate_lags=1, calendar=(), max_models=3,
                             max_iter=5).fit([a], [np.arange(5, 60)])
    assert len(model.models_) == 3
    np.testing.assert_allclose(model.predict([a], [np.array([65])])[0][65],
                               a.y[65] + 0.5 * np.arange(1, 9), atol=1e-4)
