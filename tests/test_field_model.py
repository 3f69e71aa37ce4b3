"""The field net: causal in time (by perturbation and autograd), centred in space."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_train
from fieldfiles import field_overrides, write_field

import train
from forecast.conv import CausalConv3d, SameConv3d
from forecast.fields.audit import audit_field
from forecast.fields.module import FieldModule
from forecast.fields.net import TimeConv3d


@pytest.mark.parametrize("causal,dilation", [(True, 4), (False, 4), (True, 1)])
def test_time_conv_is_a_dilated_conv3d(causal, dilation):
    torch.manual_seed(0)
    conv = TimeConv3d(3, 4, kernel_time=3, kernel_space=3, dilation=dilation, causal=causal)
    x = torch.randn(2, 3, 17, 5, 6)
    ref = F.conv3d(F.pad(x, conv.pad), conv.weight, conv.bias, dilation=(dilation, 1, 1))
    out = conv(x)
    assert out.shape == x.shape[:1] + (4,) + x.shape[2:]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    total = 2 * dilation
    assert conv.pad[4:] == ((total, 0) if causal else (total // 2, total // 2))


@pytest.mark.parametrize("causal,dilation", [(True, 4), (False, 2), (True, 1)])
def test_time_conv_equals_the_product_conv3d(causal, dilation):
    """The field net's conv is forecast.conv's time-causal (or centred) 3-D conv, computed
    faster on CPU: same kernel layout, same outputs."""
    torch.manual_seed(1)
    ours = TimeConv3d(3, 5, 3, 3, dilation, causal)
    cls = CausalConv3d if causal else SameConv3d
    theirs = cls(3, 5, 3, dilation=(dilation, 1, 1))
    theirs.conv.weight.data.copy_(ours.weight.data)
    theirs.conv.bias.data.copy_(ours.bias.data)
    x = torch.randn(2, 3, 20, 6, 7)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def _module(causal: bool) -> FieldModule:
    torch.manual_seed(0)
    return FieldModule(n_features=5, horizon=3, causal=causal, channels=4,
                       dilations=[1, 2, 4]).eval()


@pytest.mark.parametrize("causal", [True, False])
def test_perturbing_a_future_frame(causal):
    m = _module(causal)  # R = 15
    x = torch.randn(1, 30, 5, 6, 7)
    x2 = x.clone()
    j = 20
    x2[:, j] += torch.randn_like(x2[:, j])
    with torch.no_grad():
        moved = (m(x2) - m(x)).abs().amax(dim=(0, 2, 3, 4))  # [T]
    if causal:  # outputs j .. j + R - 1 read frame j; nothing before j moves, exactly
        assert torch.all(moved[j:] > 0) and torch.all(moved[:j] == 0)
    else:  # centred: outputs j - 7 .. j + 7 read it, so 7 earlier steps see the future
        assert torch.all(moved[j - 7 : j + 8] > 0)
        assert torch.all(moved[: j - 7] == 0) and torch.all(moved[j + 8 :] == 0)


@pytest.mark.parametrize("causal,past,future", [(True, 14, 0), (False, 7, 7)])
def test_audit_in_time_and_space(causal, past, future):
    a = audit_field(_module(causal), torch.randn(2, 40, 5, 11, 11), t=20)
    assert (a.past, a.future) == (past, future)
    assert a.radius == 3  # three centred 3 x 3 layers: 3 cells each way, in every direction
    assert a.influence[20, 5, 8] > 0 and a.influence[20, 5, 2] > 0  # centred: both sides


def test_field_data_needs_a_field_model(tmp_path):
    cfg = compose_train(["model=causal", *field_overrides(write_field(tmp_path / "f.nc"))])
    with pytest.raises(ValueError, match=r"is a field: use model=causal3d or model=standard3d"):
        train.train(cfg, tmp_path / "run")
    cfg = compose_train(["model=causal3d", "data=nyc_weather"])
    with pytest.raises(ValueError, match=r"model=causal3d is a field net: use data=era5_uk"):
        train.train(cfg, tmp_path / "run2")


def test_field_configs_compose(tmp_path):
    for model in ("causal3d", "standard3d"):
        cfg = compose_train(["data=era5_uk", f"model={model}"])
        assert cfg.model.horizon == cfg.data.horizon == 6
        assert cfg.model.causal is (model == "causal3d")
    cfg = compose_train(["data=field", "model=causal3d", "data.path=x.nc", "data.variable=v"])
    assert cfg.data._target_ == "forecast.fields.data.FieldDataModule"
