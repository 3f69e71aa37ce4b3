"""Quantile head, pinball loss, CRPS, interval scores and conformal calibration (units)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from forecast.models import WaveNet
from forecast.module import ForecastModule
from forecast.quantiles import (
    apply_offsets,
    central_pairs,
    check_levels,
    conformal_offsets,
    coverage,
    crps,
    inverse_softplus,
    monotone,
    pinball,
    pinball_loss,
    winkler,
)
from forecast.stream import advance, zero_state

LEVELS = [0.05, 0.1, 0.5, 0.9, 0.95]


def adversarial(net: torch.nn.Module, scale: float = 50.0) -> None:
    """Large random weights, and biases that push every increment hard negative."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
        net.head[-1].bias.fill_(-1e3)


def quantile_net(**kw) -> WaveNet:
    return WaveNet(4, 6, channels=4, skip_channels=4, dilations=[1, 2], quantiles=LEVELS,
                   linear_lags=5, feature_lags=3, **kw)


@pytest.mark.parametrize("members", [1, 3])
def test_quantiles_never_cross_even_with_adversarial_weights(members):
    net = quantile_net(members=members).eval()
    adversarial(net)
    x = torch.randn(2, 30, 4) * 10
    with torch.no_grad():
        q = net.forward_quantiles(x)  # [B, T, H, Q]
        last = net.forward_last(x, quantiles=True)  # [B, H, Q]
        point = net(x)
    assert q.shape == (2, 30, 6, 5)
    assert (q.diff(dim=-1) >= 0).all()
    # the median is the point forecast; the fast path gives the last position's quantiles
    torch.testing.assert_close(point, q[..., 2])
    torch.testing.assert_close(last, q[:, -1], rtol=1e-4, atol=1e-3)
    raw = torch.randn(7, 5, 3) * 100
    assert (monotone(raw, 2, dim=1).diff(dim=1) >= 0).all()


def test_stream_gives_the_full_recompute_quantiles():
    module = ForecastModule(4, horizon=6, channels=4, skip_channels=4, dilations=[1, 2],
                            linear_lags=5, feature_lags=3, quantiles=LEVELS).double().eval()
    x = torch.randn(2, 20, 4, dtype=torch.float64)
    with torch.no_grad():
        full = module.forward_quantiles(x)
        state = zero_state(module, 2, torch.float64)
        first, state = advance(module, x[:, :12], state, quantiles=True)
        rest = [advance(module, x[:, t : t + 1], state, quantiles=True) for t in range(12, 13)]
        median, _ = advance(module, x[:, 12:13], state)
    torch.testing.assert_close(first, full[:, :12])
    torch.testing.assert_close(rest[0][0], full[:, 12:13])
    torch.testing.assert_close(median, full[:, 12:13, :, 2])


def test_point_model_keeps_its_head_and_l1_loss():
    torch.manual_seed(0)
    point = ForecastModule(4, horizon=6, channels=4, skip_channels=4, dilations=[1, 2])
    assert point.hparams.quantiles is None
    assert point.net.head[-1].out_channels == 6
    x, y = torch.randn(3, 10, 4), torch.randn(3, 10, 6)
    mask = torch.ones_like(y, dtype=torch.bool)
    loss, mae, _ = point._loss((x, y, mask))
    with torch.no_grad():
        assert loss.item() == pytest.approx((point(x) - y).abs().mean().item())
    assert loss.item() == mae.item()
    with pytest.raises(ValueError, match="needs a quantile net"):
        point.net.forward_quantiles(x)


def test_levels_are_checked():
    assert check_levels([0.1, 0.5, 0.9]) == [0.1, 0.5, 0.9]
    with pytest.raises(ValueError, match="the median 0.5 must be one of them"):
        check_levels([0.1, 0.9])
    with pytest.raises(ValueError, match="increasing levels inside"):
        check_levels([0.5, 0.1])
    assert central_pairs(LEVELS) == [(0, 4, 0.9), (1, 3, 0.8)]


def test_pinball_loss_values():
    levels = [0.1, 0.5, 0.9]
    y = np.array([1.0, np.nan])
    q = np.array([[0.0, 1.0, 3.0], [9.0, 9.0, 9.0]])
    # errors y - q = 1, 0, -2: 0.1 * 1, 0, (0.9 - 1) * -2; the missing target is skipped
    np.testing.assert_allclose(pinball(y, q, levels), [0.1, 0.0, 0.2])
    loss = pinball_loss(torch.tensor(q[:1]), torch.tensor(y[:1]), torch.tensor(levels))
    assert loss.item() == pytest.approx(0.1)


def test_crps_from_many_quantiles_matches_the_normal_closed_form():
    mu, sigma = 2.0, 3.0
    n = 999
    levels = (np.arange(n) + 0.5) / n
    dist = NormalDist(mu, sigma)
    q = np.array([dist.inv_cdf(t) for t in levels])
    for y in (2.0, -1.0, 9.5):
        z = (y - mu) / sigma
        exact = sigma * (z * (2 * NormalDist().cdf(z) - 1) + 2 * NormalDist().pdf(z)
                         - 1 / math.sqrt(math.pi))
        got = crps(np.array([y]), q[None], levels)
        assert got == pytest.approx(exact, rel=2e-3), (y, got, exact)  # stated tolerance 0.2 %
    # a point forecast (all quantiles equal) has CRPS = absolute error
    assert crps(np.array([1.0]), np.full((1, 3), 4.0), [0.1, 0.5, 0.9]) == pytest.approx(3.0)


def test_coverage_and_winkler_values():
    y = np.array([0.0, 5.0, 12.0, np.nan])
    lo, hi = np.full(4, 2.0), np.full(4, 10.0)
    assert coverage(y, lo, hi) == pytest.approx(1 / 3)
    # width 8 each; 2 / 0.2 * (2 below) and 2 / 0.2 * (2 above)
    assert winkler(y, lo, hi, 0.8) == pytest.approx((28 + 8 + 28) / 3)


def test_conformal_offsets_reach_nominal_coverage_on_exchangeable_data():
    rng = np.random.default_rng(0)
    n, h = 4000, 3
    scale = np.array([1.0, 2.0, 4.0])  # spread grows with the step

    def draw() -> tuple[np.ndarray, np.ndarray]:
        y = rng.normal(size=(n, h)) * scale
        q = np.zeros((n, h, 5))  # over-confident: every quantile a third of the truth
        for k, t in enumerate(LEVELS):
            q[..., k] = NormalDist().inv_cdf(t) * scale / 3
        return y, q

    y, q = draw()
    off = conformal_offsets(y, q, LEVELS)
    assert off.shape == (2, h) and (off > 0).all()
    y2, q2 = draw()
    adj = apply_offsets(q2, LEVELS, off)
    assert (np.diff(adj, axis=-1) >= 0).all()
    raw90 = coverage(y2, q2[..., 0], q2[..., 4], axis=0)
    cov90 = coverage(y2, adj[..., 0], adj[..., 4], axis=0)
    cov80 = coverage(y2, adj[..., 1], adj[..., 3], axis=0)
    assert (raw90 < 0.5).all()
    np.testing.assert_allclose(cov90, 0.9, atol=0.02)
    np.testing.assert_allclose(cov80, 0.8, atol=0.02)


def test_conformal_offset_is_the_order_statistic():
    y = np.arange(1.0, 10.0)[:, None]  # 9 targets, one step
    q = np.zeros((9, 1, 5))  # every interval [0, 0]: conformity score = y
    off = conformal_offsets(y, q, LEVELS)
    # ceil((9 + 1) * 0.9) = 9th smallest score; ceil(10 * 0.8) = 8th
    assert off[:, 0].tolist() == [9.0, 8.0]


def test_inverse_softplus():
    g = np.array([0.01, 0.5, 3.0])
    np.testing.assert_allclose(torch.nn.functional.softplus(
        torch.tensor(inverse_softplus(g))).numpy(), g, rtol=1e-9)


def test_scaled_offsets_are_shares_of_each_width():
    y = np.arange(1.0, 10.0)[:, None]
    q = np.zeros((9, 1, 5))
    q[..., 0], q[..., 1], q[..., 3], q[..., 4] = -2.0, -1.0, 1.0, 2.0  # widths 4 and 2
    off = conformal_offsets(y, q, LEVELS, scaled=True)
    # scores (y - 2) / 4 and (y - 1) / 2: the 9th and 8th smallest
    np.testing.assert_allclose(off[:, 0], [7 / 4, 7 / 2])
    adj = apply_offsets(q[:1], LEVELS, off, scaled=True)
    np.testing.assert_allclose(adj[0, 0], [-9.0, -8.0, 0.0, 8.0, 9.0])


def _calibrate(kind: str, y: np.ndarray, q: np.ndarray, origin: np.ndarray,
               scored: np.ndarray, rate: float = 0.05, days: float = 5.0) -> object:
    """``rolling`` (a window of ``days`` moving daily) or ``tracked`` (the same with
    coverage tracking at ``rate``)."""
    from forecast.evaluation.intervals import rolling_calibrated
    from forecast.evaluation.protocols import Forecasts

    hour = 3600 * 10**9
    fc = Forecasts(np.full(len(origin), "A", dtype=object), origin, q, y, np.zeros(len(origin)))
    return rolling_calibrated(fc, scored, LEVELS, days, hour,
                              rate=rate if kind == "tracked" else 0.0)


@pytest.mark.parametrize("kind", ["rolling", "tracked"])
def test_online_calibration_reads_only_targets_observed_before_each_day(kind):
    hour = 3600 * 10**9
    n, h = 24 * 12, 3
    rng = np.random.default_rng(1)
    origin = np.arange(n, dtype=np.int64) * hour
    target = rng.normal(size=(n, h))
    q = np.zeros((n, h, 5))
    q[..., 0], q[..., 1], q[..., 3], q[..., 4] = -1.0, -0.5, 0.5, 1.0
    scored = origin >= 10 * 24 * hour  # the last two days
    base = _calibrate(kind, target, q, origin, scored).pred
    later = target.copy()
    later[scored & (origin < 11 * 24 * hour)] = 100.0  # day 10's, observed during day 10
    moved = _calibrate(kind, later, q, origin, scored).pred
    np.testing.assert_array_equal(moved[:24], base[:24])  # day 10 reads none of them
    assert not np.array_equal(moved[24:], base[24:])  # day 11 does: they were observed


def test_tracking_follows_a_growing_spread_that_a_moving_window_lags():
    """Errors whose spread grows fourfold over four months: offsets fitted once under-cover
    badly, a 14-day moving window lags the growth and still under-covers; tracking its
    coverage level brings both intervals within a point of nominal."""
    hour = 3600 * 10**9
    days, h = 120, 2
    n = 24 * days
    rng = np.random.default_rng(3)
    origin = np.arange(n, dtype=np.int64) * hour
    spread = np.exp(np.log(4.0) * origin / origin[-1])[:, None]
    target = rng.normal(size=(n, h)) * spread
    z = NormalDist()
    q = np.zeros((n, h, 5))
    for k, level in enumerate(LEVELS):
        q[..., k] = z.inv_cdf(level)  # calibrated for the first days' spread
    scored = origin >= 30 * 24 * hour
    fixed = conformal_offsets(target[:24 * 14], q[:24 * 14], LEVELS)
    adjusted = apply_offsets(q[scored], LEVELS, fixed)
    moving = _calibrate("rolling", target, q, origin, scored, days=14.0).pred
    tracked = _calibrate("tracked", target, q, origin, scored, 0.05, days=14.0).pred
    for (i, j, nominal) in central_pairs(LEVELS):
        stale = coverage(target[scored], adjusted[..., i], adjusted[..., j])
        assert stale < nominal - 0.15  # the stale offsets miss far more often
        lag = coverage(target[scored], moving[..., i], moving[..., j])
        assert lag < nominal - 0.03, (nominal, lag)
        got = coverage(target[scored], tracked[..., i], tracked[..., j])
        assert abs(got - nominal) < 0.01, (nominal, got)


def test_tracking_keeps_a_stationary_window_calibrated():
    """No drift: the tracked level stays near nominal, and so does coverage."""
    hour = 3600 * 10**9
    n, h = 24 * 60, 2
    rng = np.random.default_rng(4)
    origin = np.arange(n, dtype=np.int64) * hour
    target = rng.standard_t(5, size=(n, h))
    q = np.zeros((n, h, 5))
    q[..., 0], q[..., 1], q[..., 3], q[..., 4] = -1.0, -0.5, 0.5, 1.0  # far too narrow
    scored = origin >= 20 * 24 * hour
    tracked = _calibrate("tracked", target, q, origin, scored, 0.05, days=14.0).pred
    for (i, j, nominal) in central_pairs(LEVELS):
        got = coverage(target[scored], tracked[..., i], tracked[..., j])
        assert abs(got - nominal) < 0.02, (nominal, got)


def test_design_choice_is_the_sharpest_within_tolerance_in_every_run():
    """A design that covers well on average but misses by 4 points in one run is out,
    however sharp; among those within tolerance everywhere, the lowest Winkler wins;
    when none is within, the smallest worst gap."""
    from forecast.evaluation.intervals import DesignScore, choose_design

    nominal = [0.9, 0.8]
    sharp_but_misses = DesignScore("a", np.array([[0.94, 0.84], [0.86, 0.76]]),
                                   np.full((2, 2), 10.0))
    wide = DesignScore("b", np.array([[0.90, 0.80], [0.89, 0.79]]), np.full((2, 2), 14.0))
    sharper = DesignScore("c", np.array([[0.92, 0.78], [0.88, 0.82]]), np.full((2, 2), 12.0))
    assert choose_design([sharp_but_misses, wide, sharper], nominal, 0.03).name == "c"
    assert choose_design([sharp_but_misses, wide], nominal, 0.03).name == "b"
    assert choose_design([sharp_but_misses, wide, sharper], nominal, 0.005).name == "b"
