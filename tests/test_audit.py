"""The leakage audit measures receptive fields by autograd, on nets with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from forecast.audit import audit, expected_extents, influence
from forecast.models import WaveNet


def wavenet(causal: bool, seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(n_features=3, horizon=2, channels=4, skip_channels=4, kernel_size=3,
                   dilations=[1, 2, 4], causal=causal)


class Shift(nn.Module):
    """out[:, t, :] = x[:, t + shift, 0] (zero past the edge): a known, pure lag or lead."""

    def __init__(self, shift: int, horizon: int = 2) -> None:
        super().__init__()
        self.shift, self.horizon = shift, horizon
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.roll(x[..., 0], -self.shift, dims=1)
        t = torch.arange(x.shape[1])
        v = torch.where((t + self.shift >= 0) & (t + self.shift < x.shape[1]), v, 0.0)
        return (self.scale * v).unsqueeze(-1).repeat(1, 1, self.horizon)


@pytest.mark.parametrize("causal,past,future", [(True, 14, 0), (False, 7, 7)])
def test_wavenet_extents_match_the_formula(causal, past, future):
    net = wavenet(causal)
    assert net.receptive_field == 15
    # teeth: every tap of every dilated conv is non-zero, so the full field is reachable
    for block in net.blocks:
        assert (block.conv.conv.weight.abs().sum(dim=(0, 1)) > 0).all()
    result = audit(net, n_features=3, length=41)
    assert (result.past, result.future) == (past, future)
    assert (result.past, result.future) == expected_extents(15, causal)
    assert result.bounded
    assert result.leaks is (not causal)
    # the influence profile is non-zero exactly on the measured extent
    nz = np.flatnonzero(result.influence > 0)
    assert nz.min() == 20 - past and nz.max() == 20 + future
    assert len(nz) == past + future + 1


@pytest.mark.parametrize("shift", [-5, 0, 3])
def test_pure_shift_is_measured_exactly(shift):
    result = audit(Shift(shift), n_features=2, length=21)
    assert result.past == max(-shift, 0)
    assert result.future == max(shift, 0)
    assert result.leaks is (shift > 0)


def test_audit_measures_weights_not_config():
    """Zeroing the future half of the first centred kernel shrinks the measured leak."""
    net = wavenet(causal=False)
    with torch.no_grad():
        for block in net.blocks:
            block.conv.conv.weight[..., 2] = 0.0  # the tap that reads step t + d
    result = audit(net, n_features=3, length=41)
    assert result.future == 0 and result.past == 7  # same config, no leak left


def test_window_edge_is_reported_as_unbounded():
    result = audit(wavenet(causal=True), n_features=3, length=21, position=10)
    assert result.past == 10 and not result.bounded


def test_influence_map_shape_and_band():
    net = wavenet(causal=True)
    x = torch.randn(2, 30, 3)
    rows = influence(net, x, [0, 14, 29])
    assert rows.shape == (3, 30)
    for p, row in zip([0, 14, 29], rows, strict=True):
        nz = np.flatnonzero(row > 0)
        assert nz.max() == p and nz.min() == max(p - 14, 0)
    # one backward pass of a random output combination: the same zero pattern
    projected = influence(net, x, [0, 14, 29], project=True)
    np.testing.assert_array_equal(projected > 0, rows > 0)
    with pytest.raises(ValueError, match="positions"):
        influence(net, x, [30])


def test_audit_leaves_training_mode_and_grads_alone():
    net = wavenet(causal=True).train()
    audit(net, n_features=3, length=31)
    assert net.training
    assert all(p.grad is None for p in net.parameters())


def test_all_zero_model_is_refused():
    net = wavenet(causal=True)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    with pytest.raises(ValueError, match="no input moves the output"):
        audit(net, n_features=3, length=31)
