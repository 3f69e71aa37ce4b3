"""The last-position fast path: forward_last == forward[:, -1], on the dilated tree only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecast.evaluation import forecast_origins, honest_windows
from forecast.features import DataSpec, SeriesArrays
from forecast.models import WaveNet
from forecast.module import ForecastModule

CASES = [  # dilations, kernel, members
    ([1, 2, 4, 8], 3, 1),
    ([1, 2, 4, 8, 1, 2, 4, 8], 3, 2),  # two stacks, ensemble
    ([3, 6, 2, 9], 2, 3),  # not powers of two, gcd changes along the stack
    ([5], 4, 1),
    ([4, 8, 12], 3, 1),  # gcd 4 everywhere
]


def net(dilations: list[int], kernel: int, members: int, causal: bool = True) -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(3, 4, channels=6, skip_channels=5, kernel_size=kernel, dilations=dilations,
                   causal=causal, members=members).double().eval()


@pytest.mark.parametrize(("dilations", "kernel", "members"), CASES)
def test_forward_last_equals_forward_at_the_last_step(dilations, kernel, members):
    model = net(dilations, kernel, members)
    r = model.receptive_field
    for t in (1, r // 2, r - 1, r, r + 7):  # shorter windows read forward's zero padding
        x = torch.randn(4, t, 3, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(model.forward_last(x), model(x)[:, -1],
                                       rtol=0, atol=1e-12)


@pytest.mark.parametrize(("lags", "feature_lags", "quantiles"),
                         [(20, 5, None), (3, 9, None), (20, 5, [0.1, 0.5, 0.9])])
def test_forward_last_with_a_linear_path(lags, feature_lags, quantiles):
    """The linear path's last output as two matrix products: its convolutions never run."""
    torch.manual_seed(0)
    model = WaveNet(3, 4, channels=6, skip_channels=5, dilations=[1, 2], linear_lags=lags,
                    feature_lags=feature_lags, linear_only=[2], quantiles=quantiles
                    ).double().eval()
    for p in model.linear.parameters():  # nonzero and distinct weights, bias included
        p.data.normal_()
    ran: list[str] = []
    hooks = [m.register_forward_hook(lambda m, i, o: ran.append("linear"))
             for m in (model.linear.lag, model.linear.point)]
    r = model.receptive_field
    for t in (1, min(lags, feature_lags), r - 1, r, r + 7):
        x = torch.randn(4, t, 3, dtype=torch.float64)
        ran.clear()
        with torch.no_grad():
            got = model.forward_last(x)
            assert ran == []
            torch.testing.assert_close(got, model(x)[:, -1], rtol=0, atol=1e-12)
        assert ran == ["linear", "linear"]  # forward, by contrast, runs both kernels
    for h in hooks:
        h.remove()


def test_forward_last_reads_exactly_the_receptive_field():
    model = net([1, 2, 4, 8], 3, 2)
    r = model.receptive_field
    x = torch.randn(1, r + 10, 3, dtype=torch.float64, requires_grad=True)
    model.forward_last(x).sum().backward()
    touched = (x.grad[0].abs().sum(dim=1) > 0).nonzero().flatten()
    assert (int(touched.min()), int(touched.max())) == (10, r + 9)


def test_forward_last_computes_only_the_dilated_tree():
    """Default net (dilations 1..64, k = 3, R = 255): 247 block outputs, not 7 x 255."""
    model = WaveNet(3, 24).eval()
    counts: list[int] = []
    hooks = [b.residual.register_forward_hook(lambda m, i, o: counts.append(o.shape[-1]))
             for b in model.blocks]
    with torch.no_grad():
        model.forward_last(torch.randn(2, 255, 3))
    for h in hooks:
        h.remove()
    assert counts == [127, 63, 31, 15, 7, 3, 1]


def test_non_causal_net_is_refused():
    with pytest.raises(ValueError, match="needs a causal net"):
        net([1, 2], 3, 1, causal=False).forward_last(torch.randn(1, 8, 3, dtype=torch.float64))


def test_module_forecast_last_adds_the_last_target():
    torch.manual_seed(1)
    module = ForecastModule(n_features=3, horizon=4, channels=6, skip_channels=5,
                            dilations=[1, 2, 4], members=2).eval()
    x = torch.randn(5, 20, 3)
    with torch.no_grad():
        torch.testing.assert_close(module.forecast_last(x), module(x)[:, -1],
                                   rtol=1e-5, atol=1e-5)


def test_honest_forecasts_equal_full_window_forecasts():
    torch.manual_seed(2)
    module = ForecastModule(n_features=3, horizon=4, channels=6, skip_channels=5,
                            dilations=[1, 2, 4, 8], members=2).eval()
    rng = np.random.default_rng(0)
    arrays = [SeriesArrays(name, np.arange(120, dtype=np.int64), rng.normal(size=(120, 3))
                           .astype(np.float32), rng.normal(size=120).astype(np.float32),
                           np.zeros(120, np.int64)) for name in ("a", "b")]
    origins = [np.arange(40, 110), np.arange(30, 100, 3)]
    spec = DataSpec(time_column="t", target="y", covariates=[], series_id=None, freq="1h",
                    max_gap=3, mean=[0.0], std=[1.0])
    fc = forecast_origins(module, arrays, origins, spec, "honest", batch_size=16)
    history = module.receptive_field - 1
    with torch.no_grad():
        expected = np.concatenate([
            module(torch.from_numpy(arrays[w.series].x[None, w.start : w.start + w.length]))
            [0, -1].numpy()[None] for w in honest_windows(origins, history)
        ])
    np.testing.assert_allclose(fc.pred, expected, rtol=0, atol=1e-5)
