"""The linear path in the last-position path, the streaming state and the exported step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx_steps import export, run_steps

from forecast.models import WaveNet
from forecast.module import ForecastModule
from forecast.stream import advance, init_state, step, zero_state


def module(linear_lags: int = 11, feature_lags: int = 5, dilations=(1, 2, 4)) -> ForecastModule:
    """R = max(15, P, Q); feature 2 reaches the linear path only."""
    torch.manual_seed(0)
    m = ForecastModule(n_features=3, horizon=4, channels=4, skip_channels=4,
                       dilations=list(dilations), members=2, linear_lags=linear_lags,
                       feature_lags=feature_lags)
    # the net a data spec naming feature 2 in linear_only builds
    m.net = WaveNet(3, 4, channels=4, skip_channels=4, dilations=list(dilations), members=2,
                    linear_lags=linear_lags, linear_only=[2], feature_lags=feature_lags)
    m = m.double().eval()
    for p in m.net.head[-1].parameters():  # a trained-looking net: convolutions matter too
        torch.nn.init.normal_(p, std=0.1)
    return m


@pytest.mark.parametrize(("p", "q"), [(11, 5), (21, 3), (3, 25)])
def test_forward_last_equals_forward_with_a_linear_path(p, q):
    model = module(p, q)
    r = model.receptive_field
    for t in (1, q, p - 1, r, r + 7):
        x = torch.randn(3, t, 3, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(model.net.forward_last(x), model.net(x)[:, -1],
                                       rtol=0, atol=1e-12)


@pytest.mark.parametrize(("p", "q"), [(11, 5), (21, 3), (3, 25)])
def test_streaming_with_a_linear_path_equals_the_full_recompute(p, q):
    model = module(p, q)
    x = torch.randn(2, 90, 3, dtype=torch.float64)
    with torch.no_grad():
        full = model(x)
        state = zero_state(model, 2, torch.float64)
        outs = []
        for t in range(40):
            out, state = step(model, x[:, t], state)
            outs.append(out)
        torch.testing.assert_close(torch.stack(outs, dim=1), full[:, :40], rtol=0, atol=1e-12)
        assert state[-1].shape == (2, 3, max(p, q) - 1)
        for warm in (0, 2, 30):  # a history shorter or longer than the linear path's
            got, _ = advance(model, x[:, warm:], init_state(model, x[:, :warm]))
            torch.testing.assert_close(got, full[:, warm:], rtol=0, atol=1e-12)


def test_exported_step_carries_the_linear_state(tmp_path):
    model = module().float()
    info, ort = export(model, tmp_path)
    assert info["state_shapes"][-1] == ["batch", 3, 10]
    session = ort.InferenceSession(str(tmp_path / "step.onnx"))
    x = torch.randn(2, 30, 3)
    with torch.no_grad():
        full = model(x)[:, 15:]
        feeds = [s.numpy() for s in init_state(model, x[:, :15])]
    got = run_steps(session, x[:, 15:].numpy(), feeds)
    np.testing.assert_allclose(got, full.numpy(), rtol=0, atol=1e-5)
