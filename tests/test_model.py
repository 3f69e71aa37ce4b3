"""Causality by perturbation, receptive field by impulse, fairness of the two variants."""

from __future__ import annotations

import pytest
import torch

from forecast.conv import CausalConv1d, SameConv1d
from forecast.models import WaveNet, doubling_dilations, receptive_field
from forecast.module import ForecastModule
from forecast.quantiles import pinball_loss

DILATIONS = [1, 2, 4, 8]  # R = 1 + 2 * 15 = 31


def net(causal: bool, seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(n_features=3, horizon=4, channels=8, skip_channels=8, kernel_size=3,
                   dilations=DILATIONS, causal=causal).eval()


@pytest.mark.parametrize("t", [0, 40, 79])
def test_causal_outputs_before_t_do_not_move_when_input_t_changes(t):
    model = net(causal=True)
    x = torch.randn(1, 80, 3)
    x2 = x.clone()
    x2[:, t] += 5.0
    with torch.no_grad():
        diff = (model(x2) - model(x)).abs().amax(dim=(0, 2))  # [T]
    assert torch.all(diff[:t] == 0)
    assert diff[t] > 1e-4  # the perturbation does reach its own step


def test_standard_outputs_before_t_do_move():
    model = net(causal=False)
    x = torch.randn(1, 80, 3)
    x2 = x.clone()
    x2[:, 40] += 5.0
    with torch.no_grad():
        diff = (model(x2) - model(x)).abs().amax(dim=(0, 2))
    half = (receptive_field(3, DILATIONS) - 1) // 2
    assert torch.all(diff[40 - half : 40] > 0)  # earlier outputs saw the future
    assert torch.all(diff[: 40 - half] == 0)  # but no further back than (R - 1) / 2


@pytest.mark.parametrize("causal", [True, False])
def test_impulse_response_spans_exactly_the_receptive_field(causal):
    """Gradient of one output w.r.t. the inputs is nonzero on exactly R steps."""
    model = net(causal)
    r = receptive_field(3, DILATIONS)
    assert model.receptive_field == r == 31
    x = torch.randn(1, 101, 3, requires_grad=True)
    model(x)[0, 50].sum().backward()
    touched = (x.grad[0].abs().sum(dim=1) > 0).nonzero().flatten()
    lo, hi = int(touched.min()), int(touched.max())
    assert hi - lo + 1 == r
    if causal:
        assert (lo, hi) == (50 - (r - 1), 50)
    else:
        assert (lo, hi) == (50 - (r - 1) // 2, 50 + (r - 1) // 2)


def test_causal_and_standard_have_identical_parameters_and_shapes():
    a, b = net(True), net(False)
    shapes = [p.shape for p in a.parameters()]
    assert shapes == [p.shape for p in b.parameters()]
    b.load_state_dict(a.state_dict())  # same weights fit both
    x = torch.randn(2, 64, 3)
    assert a(x).shape == b(x).shape == (2, 64, 4)


def test_padding_is_the_only_difference():
    assert CausalConv1d(4, 4, 3, dilation=8).padding == (16, 0)
    assert SameConv1d(4, 4, 3, dilation=8).padding == (8, 8)
    with pytest.raises(ValueError, match="odd kernel_size"):
        SameConv1d(4, 4, 2)


def test_default_receptive_field_is_about_a_week_or_more():
    assert doubling_dilations(3, stacks=2) == [1, 2, 4, 1, 2, 4]
    assert receptive_field(3, doubling_dilations(7)) == 255


def test_module_forward_adds_last_observed_target():
    torch.manual_seed(0)
    m = ForecastModule(n_features=3, horizon=4, channels=4, skip_channels=4, dilations=[1, 2])
    for p in m.net.head[-1].parameters():
        torch.nn.init.zeros_(p)  # net emits 0: forecast = persistence of feature 0
    x = torch.randn(2, 10, 3)
    out = m(x)
    assert torch.allclose(out, x[..., :1].expand(-1, -1, 4))


def test_non_finite_loss_stops_training():
    m = ForecastModule(n_features=2, horizon=2, channels=4, skip_channels=4, dilations=[1])
    x = torch.full((1, 5, 2), float("nan"))
    y = torch.zeros(1, 5, 2)
    mask = torch.ones(1, 5, 2, dtype=torch.bool)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        m.training_step((x, y, mask), 0)


def test_ensemble_members_are_independent_nets_averaged():
    """members=2 equals the mean of two single nets holding each member's weights."""
    torch.manual_seed(0)
    pair = WaveNet(3, 4, channels=4, skip_channels=5, dilations=[1, 2], members=2).eval()
    singles = [WaveNet(3, 4, channels=4, skip_channels=5, dilations=[1, 2]).eval()
               for _ in range(2)]
    state = pair.state_dict()
    for k, single in enumerate(singles):
        own = {}
        for name, p in single.state_dict().items():
            n = p.shape[0]
            own[name] = state[name][k * n : (k + 1) * n]
        single.load_state_dict(own)
    x = torch.randn(2, 30, 3)
    expected = (singles[0](x) + singles[1](x)) / 2
    assert torch.allclose(pair(x), expected, atol=1e-6)


@pytest.mark.parametrize("members", [1, 3])
def test_causality_holds_for_ensembles(members):
    torch.manual_seed(1)
    model = WaveNet(3, 4, channels=4, skip_channels=4, dilations=DILATIONS, members=members)
    x = torch.randn(1, 60, 3, requires_grad=True)
    model(x)[0, 30].sum().backward()
    touched = (x.grad[0].abs().sum(dim=1) > 0).nonzero().flatten()
    assert int(touched.max()) == 30 and int(touched.min()) == 30 - 30


@pytest.mark.parametrize("quantiles", [None, [0.1, 0.5, 0.9]])
def test_ensemble_members_train_on_their_own_losses(quantiles):
    """members=K: the training loss is the mean of the members' own losses, so one member's
    gradient does not depend on another member's weights (a loss on their mean would couple
    them: every member would learn to cancel the others' errors)."""
    torch.manual_seed(0)
    m = ForecastModule(n_features=3, horizon=4, channels=4, skip_channels=4, dilations=[1, 2],
                       members=2, linear_lags=3, quantiles=quantiles)
    last = m.net.head[-1]
    with torch.no_grad():
        last.weight.normal_(std=0.3)
        last.bias.normal_(std=0.3)
    x, y = torch.randn(2, 20, 3), torch.randn(2, 20, 4)
    mask = torch.rand(2, 20, 4) > 0.2
    each = m.net.members_forward(x)  # [B, K, T, H(, Q)]
    origin = x[..., :1] if quantiles is None else x[..., :1, None]
    own = []
    for k in range(2):
        fc = each[:, k] + origin
        own.append((fc - y).abs()[mask].mean() if quantiles is None
                   else pinball_loss(fc[mask], y[mask], m.levels))
    loss = m.training_step((x, y, mask), 0)
    assert torch.allclose(loss, torch.stack(own).mean(), atol=1e-6)

    rows = last.weight.shape[0] // 2  # member 1's output rows of the grouped head

    def member1_grad() -> torch.Tensor:
        m.zero_grad()
        m.training_step((x, y, mask), 0).backward()
        return last.weight.grad[rows:].clone()

    before = member1_grad()
    with torch.no_grad():
        last.weight[:rows].mul_(-3.0)  # change member 0 only
        last.bias[: len(last.bias) // 2].add_(1.0)
    assert torch.allclose(member1_grad(), before, atol=1e-6)
