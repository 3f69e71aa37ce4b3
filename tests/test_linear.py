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
from forecast.linear import fit_linear_path
from forecast.models import WaveNet, receptive_field
from forecast.module import ForecastModule

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


@pytest.mark.parametrize("model", ["causal", "standard"])
def test_linear_run_checkpoint_reloads_the_same_net(series_csv, tmp_path, model):
    over = [f"model={model}", *TINY, *csv_overrides(series_csv), "model.linear_lags=25",
            "model.linear_only=[week_sin,week_cos]", "model.warmup_steps=2",
            "model.cosine=true", "trainer.max_steps=4", "model.horizon_weights=inverse_error"]
    metrics = train.train(compose_train(over), tmp_path / "run")
    assert metrics["receptive_field"] == 25
    best = load_checkpoint(metrics["best_checkpoint"])
    hp = best.hparams
    assert hp.linear_lags == 25 and hp.linear_only == ["week_sin", "week_cos"]
    w = best.horizon_weight  # the weights the run trained with, reloaded from the state dict
    assert hp.horizon_weights == "inverse_error" and w.mean().item() == pytest.approx(1.0)
    assert w.std().item() > 0
    names = best.hparams.data_spec
    n_cal = 2 * len(names["calendar"])
    assert best.net.input.in_channels == hp.n_features - 2 and n_cal == 4
    if model == "causal":
        assert metrics["test_max_abs_diff_teacher_forced_vs_honest"] < 1e-4


def test_inverse_error_weights_follow_the_ridge_fits_error_and_weigh_the_training_loss():
    a = arrays()
    a[0].y[:] = a[0].y + np.linspace(0, 3, 400, dtype=np.float32) * np.random.default_rng(
        1).normal(size=400).astype(np.float32)  # noise that grows: later steps err more
    origins = [np.arange(30, 370)]
    kw = dict(n_features=3, horizon=4, channels=4, skip_channels=4, dilations=DILATIONS,
              linear_lags=21)
    m = ForecastModule(**kw, horizon_weights="inverse_error").double()
    m.fit_linear(a, origins)
    res = np.abs(m._ridge_residuals(a, origins))
    expected = 1 / np.nanmean(res, axis=0)
    w = m.horizon_weight.double().numpy()
    np.testing.assert_allclose(w, expected / expected.mean(), rtol=1e-5)
    assert w.mean() == pytest.approx(1.0) and len(set(np.round(w, 6))) > 1
    # the training loss weighs each step's error; validation and the MAE stay uniform
    x = torch.from_numpy(a[0].x.astype(np.float64))[None, :60]
    y = torch.randn(1, 60, 4, dtype=torch.float64)
    mask = torch.ones(1, 60, 4, dtype=torch.bool)
    mask[0, :5, 2] = False
    with torch.no_grad():
        err = (m(x) - y).abs()
        weighted, mae, n = m._loss((x, y, mask), weighted=True)
        plain, mae2, _ = m._loss((x, y, mask))
    assert weighted.item() == pytest.approx((err * m.horizon_weight)[mask].mean().item())
    assert plain.item() == pytest.approx(err[mask].mean().item()) == mae.item() == mae2.item()
    assert int(n) == 60 * 4 - 5
    # stored with the weights: a checkpoint reloads them (the state dict holds the buffer)
    assert "horizon_weight" in m.state_dict()
    assert "horizon_weight" not in ForecastModule(**kw).state_dict()


def test_horizon_weights_refuse_an_unknown_kind_and_stay_off_without_a_linear_path():
    with pytest.raises(ValueError, match="horizon_weights='steps'"):
        ForecastModule(n_features=3, horizon=4, horizon_weights="steps")
    m = ForecastModule(n_features=3, horizon=4, horizon_weights="inverse_error")
    assert not hasattr(m, "horizon_weight")  # no ridge fit to weigh by: the uniform loss
