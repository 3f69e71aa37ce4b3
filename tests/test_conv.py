"""Proofs by full Jacobian: every conv reads its footprint, nothing later; pad equals mask."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from forecast.conv import (
    BoxConv,
    CausalConv1d,
    CausalConv2d,
    CausalConv3d,
    SameConv1d,
    SameConv2d,
    SameConv3d,
)
from forecast.models import WaveNet
from forecast.raster import GatedStack2d
from forecast.reach import allowed, footprint_support, influence, within

FIXTURE = Path(__file__).parent / "data" / "wavenet_before_conv.pt"
T1, S2, S3 = (13,), (7, 8), (6, 5, 5)

# (name, factory(impl), grid shape, order, present): every layer, causal ones in both impls
LAYERS = [
    ("same1d", lambda impl: SameConv1d(2, 3, 3, dilation=2), T1, "none", True),
    ("causal1d", lambda impl: CausalConv1d(2, 3, 3, dilation=2, impl=impl), T1, "time", True),
    ("causal1d_A", lambda impl: CausalConv1d(2, 3, 2, mask="A", impl=impl), T1, "time", False),
    ("same2d", lambda impl: SameConv2d(2, 3, (3, 5)), S2, "none", True),
    ("causal2d_A", lambda impl: CausalConv2d(2, 3, 3, mask="A", impl=impl), S2, "raster", False),
    ("causal2d_B", lambda impl: CausalConv2d(2, 3, 5, impl=impl), S2, "raster", True),
    ("causal2d_dil", lambda impl: CausalConv2d(2, 3, 3, dilation=2, impl=impl), S2, "raster",
     True),
    ("same3d", lambda impl: SameConv3d(2, 3, 3, dilation=(2, 1, 1)), S3, "none", True),
    ("causal3d_time", lambda impl: CausalConv3d(2, 3, 3, dilation=(2, 1, 1), impl=impl), S3,
     "time", True),
    ("causal3d_time_A", lambda impl: CausalConv3d(2, 3, (2, 3, 3), mask="A", impl=impl), S3,
     "time", False),
    ("causal3d_raster_A", lambda impl: CausalConv3d(2, 3, 3, order="raster", mask="A",
                                                    impl=impl), S3, "raster", False),
    ("causal3d_raster_B", lambda impl: CausalConv3d(2, 3, (2, 3, 3), order="raster",
                                                    impl=impl), S3, "raster", True),
]
CAUSAL = [spec for spec in LAYERS if spec[3] != "none"]
EACH = [(*spec, impl) for spec in LAYERS
        for impl in (("pad", "mask") if spec in CAUSAL else ("pad",))]


def measured(model: nn.Module, shape: tuple[int, ...], c_in: int = 2) -> torch.Tensor:
    """(N, N) bool: output p moves when input q moves, over two random inputs."""
    torch.manual_seed(0)
    return sum(influence(model, torch.randn(1, c_in, *shape, dtype=torch.float64))
               for _ in range(2)) > 0


@pytest.mark.parametrize(("name", "make", "shape", "order", "present", "impl"), EACH,
                         ids=[f"{s[0]}-{s[-1]}" for s in EACH])
def test_each_layer_reads_exactly_its_footprint_and_nothing_later(
        name, make, shape, order, present, impl):
    torch.manual_seed(1)
    layer = make(impl)
    support = measured(layer, shape)
    expected = footprint_support(layer, shape)
    assert torch.equal(support, expected)  # (b) every tap in reach is read, (a) nothing else
    later = ~allowed(shape, order, present)
    assert not (support & later).any()
    if order == "none":  # the centred twin does read later positions: the test has teeth
        assert (support & ~allowed(shape, "time", True)).any()


def stacks() -> list:
    torch.manual_seed(2)
    causal1d = nn.Sequential(CausalConv1d(2, 4, 3), nn.Tanh(), CausalConv1d(4, 4, 3, dilation=2),
                             nn.Tanh(), CausalConv1d(4, 3, 3, dilation=4))
    time3d = nn.Sequential(CausalConv3d(2, 4, (2, 3, 3)), nn.Tanh(),
                           CausalConv3d(4, 3, (2, 3, 3), dilation=(2, 1, 1)))
    return [  # (stack, shape, order, box lo, box hi): all earlier positions in the box are read
        (causal1d, (24,), "time", (-14,), (0,)),
        (time3d, (6, 5, 5), "time", (-3, -2, -2), (0, 2, 2)),
        # vertical: 3 layers of rows i - 1 .. i, then shifted down one row; horizontal: j - 3 ..
        (GatedStack2d(2, 4, layers=3), (7, 9), "raster", (-4, -3), (0, 3)),
    ]


@pytest.mark.parametrize("k", range(3), ids=["causal1d", "time3d", "gated2d"])
def test_stacks_read_every_earlier_position_in_reach_and_nothing_later(k):
    stack, shape, order, lo, hi = stacks()[k]
    support = measured(stack, shape)
    present = k < 2  # the gated stack starts with mask A: never reads its own pixel
    assert torch.equal(support, allowed(shape, order, present) & within(shape, lo, hi))


@pytest.mark.parametrize(("name", "make", "shape", "order", "present"), CAUSAL,
                         ids=[s[0] for s in CAUSAL])
def test_mask_impl_equals_pad_impl_for_the_same_kernel(name, make, shape, order, present):
    torch.manual_seed(3)
    pad, mask = make("pad").double(), make("mask").double()
    with torch.no_grad():
        mask.conv.weight.copy_(pad.kernel())
        mask.conv.bias.copy_(pad.conv.bias)
    x = torch.randn(2, 2, *shape, dtype=torch.float64)
    assert torch.allclose(mask(x), pad(x), atol=1e-12)
    assert torch.equal(mask.kernel(), pad.kernel())
    assert mask.conv.weight.numel() > pad.conv.weight.numel()  # the mask pays in FLOPs


STRIDED = [(CausalConv1d, {"impl": "pad"}), (CausalConv1d, {"impl": "mask", "mask": "A"}),
           (SameConv1d, {}), (CausalConv3d, {"impl": "pad"}), (CausalConv3d, {"impl": "mask"}),
           (SameConv3d, {})]


@pytest.mark.parametrize(("cls", "kw"), STRIDED,
                         ids=[f"{c.__name__}-{k.get('impl', 'pad')}" for c, k in STRIDED])
def test_time_stride_keeps_the_outputs_at_strided_steps(cls, kw):
    torch.manual_seed(4)
    dense, strided = cls(2, 3, 3, dilation=2, **kw), cls(2, 3, 3, stride=3, dilation=2, **kw)
    strided.load_state_dict(dense.state_dict())
    space = (4, 4) if cls in (CausalConv3d, SameConv3d) else ()
    x = torch.randn(1, 2, 11, *space)
    assert strided(x).shape[2] == 4  # ceil(11 / 3)
    assert torch.allclose(strided(x), dense(x)[:, :, ::3], atol=1e-6)


def test_wavenet_gives_the_previous_layer_outputs_for_the_same_weights():
    """The fixture was written by the WaveNet of ``forecast/layers.py`` before this module."""
    saved = torch.load(FIXTURE, weights_only=True)
    for key, impls in (("causal", ("pad", "mask")), ("standard", ("pad",))):
        for impl in impls:
            net = WaveNet(3, 2, channels=4, skip_channels=4, kernel_size=3, dilations=[1, 2, 4],
                          causal=key == "causal", members=2, impl=impl).eval()
            net.load_state_dict(saved[f"{key}_state"])  # same keys: blocks.0.conv.conv.weight
            with torch.no_grad():
                assert torch.allclose(net(saved["x"]), saved[f"{key}_y"], atol=1e-6)


def test_mask_wavenet_checkpoint_loads_into_the_padded_net():
    torch.manual_seed(5)
    masked = WaveNet(3, 2, channels=4, skip_channels=4, dilations=[1, 2], impl="mask").eval()
    padded = WaveNet(3, 2, channels=4, skip_channels=4, dilations=[1, 2]).eval()
    state = masked.state_dict()
    assert "blocks.0.conv.mask" not in state  # the mask is rebuilt, never stored
    assert state["blocks.0.conv.conv.weight"].shape[-1] == 5  # 2k - 1 taps, future half masked
    padded.load_state_dict(state)
    x = torch.randn(2, 20, 3)
    with torch.no_grad():
        assert torch.allclose(padded(x), masked(x), atol=1e-6)
        # the last-position path and the stream read the masked kernel's causal taps
        assert torch.allclose(masked.forward_last(x), masked(x)[:, -1], atol=1e-6)


def test_mask_impl_from_the_module_config_gives_the_same_forecasts():
    from forecast.module import ForecastModule
    from forecast.stream import advance, zero_state

    torch.manual_seed(6)
    kw = dict(n_features=3, horizon=2, channels=4, skip_channels=4, dilations=[1, 2],
              linear_lags=5, feature_lags=3)
    masked = ForecastModule(**kw, impl="mask").eval()
    padded = ForecastModule(**kw).eval()
    padded.load_state_dict(masked.state_dict())
    assert masked.hparams.impl == "mask"
    conv = masked.net.blocks[0].conv
    assert conv.impl == "mask" and conv.conv.weight.shape[-1] == 5  # a masked 2k - 1 kernel
    x = torch.randn(2, 12, 3)
    with torch.no_grad():
        assert torch.allclose(masked(x), padded(x), atol=1e-6)
        streamed, _ = advance(masked, x, zero_state(masked, 2))
        assert torch.allclose(streamed, masked(x), atol=1e-5)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="impl='masked': expected 'pad' or 'mask'"):
        CausalConv1d(1, 1, 3, impl="masked")
    with pytest.raises(ValueError, match="mask='C'"):
        CausalConv2d(1, 1, 3, mask="C")
    with pytest.raises(ValueError, match="order='spiral'"):
        CausalConv3d(1, 1, 3, order="spiral")
    with pytest.raises(ValueError, match="kernel_size=4 on the columns axis.*odd"):
        CausalConv3d(1, 1, (2, 3, 4))
    with pytest.raises(ValueError, match="kernel width 1 reads nothing"):
        CausalConv2d(1, 1, 1, mask="A")
    with pytest.raises(ValueError, match=r"dilation=\(1, 2\): expected a positive int or 3"):
        SameConv3d(1, 1, 3, dilation=(1, 2))
    assert isinstance(CausalConv3d(1, 1, 3), BoxConv)


def test_reach_is_the_span_of_offsets_in_grid_steps():
    assert CausalConv3d(1, 1, 3, dilation=(4, 1, 1)).reach == ((-8, 0), (-1, 1), (-1, 1))
    assert CausalConv3d(1, 1, (2, 3, 3), dilation=(3, 1, 1), mask="A").reach == ((-6, -3), (-1, 1),
                                                                         (-1, 1))
    assert CausalConv1d(1, 1, 3, dilation=8, impl="mask").reach == ((-16, 0),)
    assert SameConv1d(1, 1, 3, dilation=8).reach == ((-8, 8),)
    assert CausalConv2d(1, 1, 5, mask="A").reach == ((-2, 0), (-2, 2))
