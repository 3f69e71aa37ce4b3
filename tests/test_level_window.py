"""Level features: the convolutions read them minus their mean over W steps (with
``level_scale``, over their spread too, and their output times the target's spread).

Causal by perturbation, R grown by W - 1, the fast last-position path, streaming and the
exported step equal to the full recompute, with and without the scale; the scaled net's
convolutions forecast in units of the window's own swing; bad settings refused by name
(the config keys' checks are in test_settings' table).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_series
from onnx_steps import export, run_steps

from forecast.features import DataSpec, fit_spec
from forecast.frame import FrameSpec, read_frame
from forecast.models import WaveNet
from forecast.module import ForecastModule
from forecast.stream import advance, init_state, step, zero_state

W = 5  # the level window; features 0 and 1 are level features, feature 3 linear only


SCALES = [0.0, 0.1]  # level_scale: off, and on


def net(causal: bool = True, linear_lags: int = 9, members: int = 2,
        quantiles: list[float] | None = None, scale: float = 0.0) -> WaveNet:
    torch.manual_seed(0)
    n = WaveNet(4, 3, channels=4, skip_channels=4, dilations=[1, 2, 4], causal=causal,
                members=members, linear_lags=linear_lags, feature_lags=3,
                linear_only=[3] if linear_lags else None, quantiles=quantiles,
                level_window=W, level_features=[0, 1], level_scale=scale).double().eval()
    for p in n.parameters():  # a trained-looking net: every path matters
        torch.nn.init.normal_(p, std=0.3)
    return n


def module(**kwargs) -> ForecastModule:
    m = ForecastModule(n_features=4, horizon=3, channels=4, skip_channels=4,
                       dilations=[1, 2, 4], members=2, linear_lags=9, feature_lags=3)
    m.net = net(**kwargs)  # the net a data spec naming features 0 and 1 as levels builds
    return m.double().eval()


@pytest.mark.parametrize("scale", SCALES)
def test_receptive_field_grows_by_w_minus_one_and_is_exact(scale):
    n = net(linear_lags=0, scale=scale)
    assert n.receptive_field == 1 + 2 * 7 + W - 1
    x = torch.randn(1, 60, 4, dtype=torch.float64)
    t, r = 45, n.receptive_field
    with torch.no_grad():
        base = n(x)[0, t]
        for j, moved in ((t - r + 1, True), (t - r, False), (t + 1, False)):
            x2 = x.clone()
            x2[0, j, 0] += 3.0  # a level feature
            change = (n(x2)[0, t] - base).abs().max().item()
            assert (change > 1e-9) is moved, (j, change)


@pytest.mark.parametrize("scale", SCALES)
def test_the_standard_twin_reads_a_centred_window(scale):
    n = net(causal=False, linear_lags=0, scale=scale)
    half = (n.receptive_field - 1) // 2
    x = torch.randn(1, 80, 4, dtype=torch.float64)
    t = 40
    with torch.no_grad():
        base = n(x)[0, t]
        for j, moved in ((t + half, True), (t - half, True), (t + half + 1, False),
                         (t - half - 1, False)):
            x2 = x.clone()
            x2[0, j, 1] += 3.0
            assert ((n(x2)[0, t] - base).abs().max().item() > 1e-9) is moved, j


def test_the_convolutions_do_not_see_a_level_feature_s_level():
    n = net(linear_lags=0)  # no linear path: only the convolutions read the inputs
    x = torch.randn(2, 50, 4, dtype=torch.float64)
    shifted = x.clone()
    shifted[..., :2] += 7.0  # every level feature moved by a constant
    other = x.clone()
    other[..., 2] += 7.0  # a feature read as it is
    r = n.receptive_field
    with torch.no_grad():
        base = n(x)[:, r - 1:]  # positions whose whole receptive field lies in the series
        torch.testing.assert_close(n(shifted)[:, r - 1:], base, rtol=0, atol=1e-9)
        assert (n(other)[:, r - 1:] - base).abs().max() > 1e-3


def test_the_scaled_convolutions_forecast_in_units_of_the_window_s_swing():
    # only level features, no linear path, a spread floor far below the data's: every
    # level feature stretched by 3 and moved by 7 leaves the convolutions' inputs as they
    # were and triples their output, wherever the receptive field lies in the series
    torch.manual_seed(1)
    n = WaveNet(2, 3, channels=4, skip_channels=4, dilations=[1, 2, 4], level_window=W,
                level_features=[0, 1], level_scale=1e-9).double().eval()
    for p in n.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 60, 2, dtype=torch.float64)
    r = n.receptive_field
    with torch.no_grad():
        base = n(x)[:, r - 1:]
        torch.testing.assert_close(n(3 * x + 7)[:, r - 1:], 3 * base, rtol=1e-7, atol=1e-9)
        unscaled = WaveNet(2, 3, channels=4, skip_channels=4, dilations=[1, 2, 4],
                           level_window=W, level_features=[0, 1]).double().eval()
        unscaled.load_state_dict(n.state_dict())
        assert (unscaled(3 * x + 7)[:, r - 1:] - 3 * unscaled(x)[:, r - 1:]).abs().max() > 1e-2


@pytest.mark.parametrize(("quantiles", "scale"),
                         [(None, 0.0), ([0.1, 0.5, 0.9], 0.0), (None, 0.1)])
def test_forward_last_equals_forward(quantiles, scale):
    n = net(quantiles=quantiles, scale=scale)
    r = n.receptive_field
    for t in (1, W - 1, W + 3, r - 1, r, r + 11):
        x = torch.randn(3, t, 4, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(n.forward_last(x), n(x)[:, -1], rtol=0, atol=1e-12)
            if quantiles:
                torch.testing.assert_close(n.forward_last(x, quantiles=True),
                                           n.forward_quantiles(x)[:, -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", SCALES)
def test_streaming_equals_the_full_recompute(scale):
    m = module(scale=scale)
    x = torch.randn(2, 120, 4, dtype=torch.float64)
    with torch.no_grad():
        full = m(x)
        state = zero_state(m, 2, torch.float64)
        assert state[-1].shape == (2, 2, W - 1)  # the level features' last W - 1 values
        outs = []
        for t in range(30):
            out, state = step(m, x[:, t], state)
            outs.append(out)
        torch.testing.assert_close(torch.stack(outs, dim=1), full[:, :30], rtol=0, atol=1e-12)
        for warm in (0, 2, W, 40, 100):  # histories shorter and longer than R and W
            state = init_state(m, x[:, :warm])
            got, t = [], warm
            for size in (1, 7, 1, 200):
                out, state = advance(m, x[:, t:t + size], state)
                got.append(out)
                t += size
            torch.testing.assert_close(torch.cat(got, dim=1), full[:, warm:], rtol=0,
                                       atol=1e-12)


@pytest.mark.parametrize("scale", SCALES)
def test_exported_step_carries_the_level_state(tmp_path, scale):
    m = module(scale=scale).float()
    info, ort = export(m, tmp_path)
    assert info["state_shapes"][-1] == ["batch", 2, W - 1]
    assert info["receptive_field"] == m.receptive_field
    x = torch.randn(2, 60, 4)
    with torch.no_grad():
        full = m(x)
        feeds = [s.numpy() for s in init_state(m, x[:, :20])]
    whole = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(whole, full.numpy(), rtol=0, atol=1e-5)
    got = run_steps(ort.InferenceSession(str(tmp_path / "step.onnx")), x[:, 20:].numpy(),
                    feeds)
    np.testing.assert_allclose(got, full[:, 20:].numpy(), rtol=0, atol=1e-5)


def test_bad_level_settings_are_refused_by_name():
    with pytest.raises(ValueError, match=r"level_features=\[3\] do not reach the convolutions"):
        WaveNet(4, 3, linear_lags=5, linear_only=[3], level_window=3, level_features=[0, 3])
    with pytest.raises(ValueError, match="level_window=4 must be odd when not causal"):
        WaveNet(4, 3, causal=False, level_window=4, level_features=[0])
    with pytest.raises(ValueError, match=r"level_scale=0.1 needs the target among"):
        WaveNet(4, 3, level_window=5, level_features=[1], level_scale=0.1)
    with pytest.raises(ValueError, match="level_scale needs a point net"):
        WaveNet(4, 3, linear_lags=5, level_window=5, level_features=[0], level_scale=0.1,
                quantiles=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"level_scale=-1.0 must be >= 0"):
        WaveNet(4, 3, level_window=5, level_features=[0], level_scale=-1.0)
    off = WaveNet(4, 3, dilations=[1, 2], level_window=1, level_features=[0])
    assert off.inputs.window == 0 and off.receptive_field == 7  # W = 1: no mean, R as before


def test_the_module_applies_the_scale_where_the_target_is_a_level_feature(tmp_path, caplog):
    # as level features apply when present: a file whose target is not one of them, and a
    # quantile net, train unscaled and say so; a point net reading its target gets it
    make_series(24 * 10).to_csv(tmp_path / "s.csv", index=False)
    fs = FrameSpec("time", "temp", ("hum",), "station", "1h", max_gap=3)
    spec = fit_spec(read_frame(tmp_path / "s.csv", fs),
                    pd.Timestamp("2030-01-01", tz="UTC")).to_dict()

    def scale_of(**kwargs) -> float:
        m = ForecastModule(horizon=3, dilations=[1, 2], level_window=5, level_scale=0.1,
                           linear_lags=5, data_spec=spec, **kwargs)
        assert m.hparams.level_scale == m.net.inputs.scale_eps  # rebuilt as trained
        return m.net.inputs.scale_eps

    n = len(DataSpec.from_dict(spec).feature_names)
    with caplog.at_level(logging.INFO, logger="forecast.module"):
        assert scale_of(n_features=n, level_features=["temp", "hum"]) == 0.1
        assert "level_scale" not in caplog.text
        assert scale_of(n_features=n, level_features=["hum"]) == 0.0
        assert "target is not among the level features" in caplog.text
        caplog.clear()
        assert scale_of(n_features=n, level_features=["temp"], quantiles=[0.1, 0.5, 0.9]) == 0
        assert "not applied to a quantile net" in caplog.text
