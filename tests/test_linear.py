"""The linear path: causal like the stack, ridge-initialised, routed features, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY, compose_train, csv_overrides
from sklearn.linear_model import Ridge

import train
from forecast import load_checkpoint
from forecast.features import SeriesArrays
from forecast.linear import HORIZON_WEIGHTS, fit_linear_path
from forecast.models import WaveNet, receptive_field
from forecast.module import ForecastModule
from forecast.settings.training import ModelSettings

DILATIONS = [1, 2]  # stack R = 7; the linear path (P = 21) sets R


def net(causal: bool, **kw) -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(3, 4, channels=4, skip_channels=4, dilations=DILATIONS, causal=causal,
                   linear_lags=21, **kw).eval()


@pytest.mark.parametrize("causal", [True, False])
def test_linear_path_reads_exactly_the_receptive_field(causal):
    model = net(causal)
    assert model.receptive_field == receptive_field(3, DILATIONS, 21) == 21
    x = torch.randn(1, 81, 3, requires_grad=True)
    model(x)[0, 40].sum().backward()
    touched = (x.grad[0].abs().sum(dim=1) > 0).nonzero().flatten()
    lo, hi = int(touched.min()), int(touched.max())
    assert (lo, hi) == ((20, 40) if causal else (30, 50))


def test_linear_only_features_skip_the_convolutions():
    model = net(True, linear_only=[2])
    x = torch.randn(1, 30, 3)
    x2 = x.clone()
    x2[..., 2] += 3.0
    with torch.no_grad():
        moved = (model(x2) - model(x)).abs().amax()
        model.linear.point.conv.weight[:, 2] = 0  # cut feature 2 from the linear path
        assert torch.equal(model(x2), model(x))  # ... and nothing else reads it
    assert moved > 0
    with pytest.raises(ValueError, match="needs a linear path"):
        WaveNet(3, 4, linear_only=[2])


def arrays(n: int = 400, seed: int = 0) -> list[SeriesArrays]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n)
    x = np.stack([y, rng.normal(size=n), np.cos(2 * np.pi * t / 24)], axis=1)
    yy = y.astype(np.float32).copy()
    yy[100] = np.nan  # a missing target: origins that need it are left out
    return [SeriesArrays("A", t * 3_600_000_000_000, x.astype(np.float32), yy,
                         np.zeros(n, np.int64))]


@pytest.mark.parametrize("q", [1, 3])
def test_ridge_initialisation_is_the_closed_form_ridge_fit(q):
    a = arrays()
    origins = [np.arange(30, 370)]
    m = ForecastModule(n_features=3, horizon=4, channels=4, skip_channels=4, dilations=DILATIONS,
                       linear_lags=21, feature_lags=q, linear_alpha=2.0).double()
    m.fit_linear(a, origins)
    # the same regression written out: 21 lags of the target, q lags of every feature
    o = origins[0]
    o = o[~np.isnan(a[0].y[o[:, None] + np.arange(1, 5)]).any(axis=1)]
    x64 = a[0].x.astype(np.float64)
    feats = [x64[o - j] for j in range(q)]
    design = np.concatenate([x64[o[:, None] - np.arange(20, -1, -1), 0], *feats], axis=1)
    change = a[0].y[o[:, None] + np.arange(1, 5)] - x64[o, :1]
    ridge = Ridge(alpha=2.0).fit(design, change)
    with torch.no_grad():
        out = m(torch.from_numpy(x64)[None])[0].numpy()  # [T, H]: convolutions start at 0
    np.testing.assert_allclose(out[o], ridge.predict(design) + x64[o, :1], atol=1e-5)


def test_ridge_fit_refuses_when_nothing_is_observed():
    a = arrays()
    a[0].y[:] = np.nan
    with pytest.raises(ValueError, match="lower model.linear_lags"):
        fit_linear_path(net(True).linear, a, [np.arange(30, 370)])


def test_cosine_schedule_needs_a_step_budget(series_csv, tmp_path):
    cfg = compose_train([*TINY, *csv_overrides(series_csv), "model.cosine=true",
                         "trainer.max_epochs=-1", "trainer.max_steps=-1",
                         "trainer.limit_train_batches=null"])
    with pytest.raises(ValueError, match="trainer.max_steps"):
        train.train(cfg, tmp_path / "run")


@pytest.mark.parametrize("model,weights", [("causal", "uniform"), ("standard", "uniform"),
                                           ("causal", "inverse_error")])
def test_linear_run_checkpoint_reloads_the_same_net(series_csv, tmp_path, model, weights):
    over = [f"model={model}", *TINY, *csv_overrides(series_csv), "model.linear_lags=25",
            "model.linear_only=[week_sin,week_cos]", "model.warmup_steps=2",
            "model.cosine=true", "trainer.max_steps=4", f"model.horizon_weights={weights}"]
    metrics = train.train(compose_train(over), tmp_path / "run")
    assert metrics["receptive_field"] == 25
    best = load_checkpoint(metrics["best_checkpoint"])
    hp = best.hparams
    assert hp.linear_lags == 25 and hp.linear_only == ["week_sin", "week_cos"]
    assert hp.horizon_weights == weights
    if weights == "inverse_error":  # the weights the run trained with, from the state dict
        w = best.horizon_weight
        assert w.mean().item() == pytest.approx(1.0) and w.std().item() > 0
    else:
        assert not hasattr(best, "horizon_weight")
    names = best.hparams.data_spec
    n_cal = 2 * len(names["calendar"])
    assert best.net.input.in_channels == hp.n_features - 2 and n_cal == 4
    if model == "causal":
        assert metrics["test_max_abs_diff_teacher_forced_vs_honest"] < 1e-4


def walk(n: int = 600, seed: int = 3) -> list[SeriesArrays]:
    """A random walk: the error of any forecast grows with the step (about sqrt(h))."""
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=n)) / 10
    x = np.stack([y, rng.normal(size=n), np.zeros(n)], axis=1).astype(np.float32)
    return [SeriesArrays("W", np.arange(n) * 3_600_000_000_000, x, y.astype(np.float32),
                         np.zeros(n, np.int64))]


def test_inverse_error_weights_follow_the_ridge_fits_error_and_weigh_the_training_loss():
    a, origins = walk(), [np.arange(30, 560)]
    kw = dict(n_features=3, horizon=4, channels=4, skip_channels=4, dilations=DILATIONS,
              linear_lags=21, feature_lags=1)
    m = ForecastModule(**kw, horizon_weights="inverse_error").double()
    m.fit_linear(a, origins)
    # the same ridge fit written out (as in the closed-form test), its residuals by step
    o = origins[0]
    x64 = a[0].x.astype(np.float64)
    design = np.concatenate([x64[o[:, None] - np.arange(20, -1, -1), 0], x64[o]], axis=1)
    change = a[0].y[o[:, None] + np.arange(1, 5)] - x64[o, :1]
    res = change - Ridge(alpha=1.0).fit(design, change).predict(design)
    expected = 1 / np.abs(res).mean(axis=0)
    w = m.horizon_weight.double().numpy()
    np.testing.assert_allclose(w, expected / expected.mean(), rtol=1e-4)
    assert w.mean() == pytest.approx(1.0) and w[0] > 1.5 * w[-1]  # step 1 errs least
    # the training loss weighs each step's error; validation and the MAE stay uniform
    x = torch.from_numpy(x64)[None, :60]
    y = torch.randn(1, 60, 4, dtype=torch.float64)
    mask = torch.ones(1, 60, 4, dtype=torch.bool)
    mask[0, :5, 2] = False
    with torch.no_grad():
        err = (m(x) - y).abs()
        weighted, mae, n = m._loss((x, y, mask), weighted=True)
        plain, mae2, _ = m._loss((x, y, mask))
    assert weighted.item() == pytest.approx((err * m.horizon_weight)[mask].mean().item())
    assert weighted.item() != pytest.approx(plain.item())
    assert plain.item() == pytest.approx(err[mask].mean().item()) == mae.item() == mae2.item()
    assert int(n) == 60 * 4 - 5
    # stored with the weights: a checkpoint reloads them (the state dict holds the buffer)
    assert "horizon_weight" in m.state_dict()
    assert "horizon_weight" not in ForecastModule(**kw).state_dict()


def test_members_weigh_each_members_error_as_one_net_does():
    a, origins = walk(), [np.arange(30, 560)]
    m = ForecastModule(n_features=3, horizon=4, channels=4, skip_channels=4, members=2,
                       dilations=DILATIONS, linear_lags=21, horizon_weights="inverse_error")
    m.fit_linear(a, origins)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in m.net.head[-1].parameters():  # members that differ from the ridge fit
            p.normal_(0, 0.1)
    x = torch.from_numpy(a[0].x)[None, :60]
    y = torch.randn(1, 60, 4)
    mask = torch.rand(1, 60, 4) > 0.2
    with torch.no_grad():
        loss, n = m._members_loss((x, y, mask))
        each = m.net.members_forward(x) + x[..., :1].unsqueeze(1)  # [B, K, T, H]
        own = [((each[:, k] - y).abs() * m.horizon_weight)[mask].mean() for k in range(2)]
    assert loss.item() == pytest.approx(float(sum(own)) / 2, rel=1e-5)
    assert int(n) == int(mask.sum())


def test_horizon_weights_refuse_an_unknown_kind_and_stay_off_without_a_point_ridge_fit():
    with pytest.raises(ValueError, match="horizon_weights='steps'"):
        ForecastModule(n_features=3, horizon=4, horizon_weights="steps")
    # no ridge fit to weigh by, or no point loss: the uniform loss, and the stored settings
    # say so
    for kw in ({}, {"linear_lags": 21, "quantiles": [0.1, 0.5, 0.9]}):
        m = ForecastModule(n_features=3, horizon=4, horizon_weights="inverse_error", **kw)
        assert not hasattr(m, "horizon_weight") and m.hparams.horizon_weights == "uniform"
    # the config check knows the same kinds
    rule = ModelSettings.__dataclass_fields__["horizon_weights"].metadata["rule"]
    assert rule.text == "one of " + ", ".join(HORIZON_WEIGHTS)
