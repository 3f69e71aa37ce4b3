"""The published mask recipe's pitfalls, reproduced as they are, and ours free of them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from forecast.conv import CausalConv1d, CausalConv3d
from forecast.conv_stream import ChunkedStack
from forecast.raster import GatedStack2d, MaskedStack2d
from forecast.reach import allowed, influence, within


class RecipeMaskedConv1d(nn.Conv1d):
    """The recipe: an unpadded conv whose weights are masked in place at every call."""

    def __init__(self, mask: list[float]) -> None:
        super().__init__(1, 1, len(mask), bias=False)
        self.register_buffer("mask", torch.tensor(mask).view(1, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.weight.data *= self.mask
        return super().forward(x)


def test_unpadded_masked_1d_conv_shrinks_and_peeks_one_step():
    recipe = RecipeMaskedConv1d([1.0, 1.0, 0.0]).double()
    x = torch.randn(1, 1, 10, dtype=torch.float64)
    assert recipe(x).shape[-1] == 8  # 10 in, 8 out
    j = influence(recipe, x) > 0  # [8 outputs, 10 inputs]
    assert all(j[t, t + 1] for t in range(8))  # output t, read at index t, reads t + 1
    ours = CausalConv1d(1, 1, 2, impl="mask").double()  # the same 3-tap kernel, [1, 1, 0]
    assert torch.equal(ours.mask.flatten(), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    assert ours(x).shape[-1] == 10
    assert torch.equal(influence(ours, x) > 0, allowed((10,), "time") & within((10,), (-1,), (0,)))


def test_in_place_masking_lets_the_optimiser_move_masked_weights():
    torch.manual_seed(0)
    x, y = torch.randn(4, 1, 12), torch.randn(4, 1, 10)
    recipe = RecipeMaskedConv1d([1.0, 1.0, 0.0])
    opt = torch.optim.SGD(recipe.parameters(), lr=0.1)
    F.mse_loss(recipe(x), y).backward()
    grad = recipe.weight.grad[..., 2].clone()
    opt.step()
    # the masked tap took a full step: the saved state dict now holds an unmasked kernel
    assert torch.allclose(recipe.weight[..., 2], -0.1 * grad) and grad.abs().min() > 1e-3
    ours = CausalConv1d(1, 1, 2, bias=False, impl="mask")
    before = ours.conv.weight.detach().clone()
    opt = torch.optim.SGD(ours.parameters(), lr=0.1)
    F.mse_loss(ours(x[..., 2:]), y).backward()
    assert torch.all(ours.conv.weight.grad[..., 2] == 0)  # masked tap: exactly zero gradient
    opt.step()
    assert torch.equal(ours.conv.weight[..., 2], before[..., 2])
    assert torch.all(ours.kernel()[..., 2] == 0)


def test_naive_masked_stack_has_a_blind_spot_and_the_gated_stack_has_none():
    torch.manual_seed(1)
    shape, layers = (9, 11), 3
    reach = allowed(shape, "raster", present=False) & within(shape, (-layers, -layers),
                                                            (0, layers))
    x = torch.randn(1, 2, *shape, dtype=torch.float64)
    naive = influence(MaskedStack2d(2, 4, layers), x) > 0
    gated = influence(GatedStack2d(2, 4, layers), x) > 0
    p = 6 * 11 + 5  # output pixel (6, 5)
    assert not (naive & ~allowed(shape, "raster", False)).any()
    blind = (reach & ~naive)[p].reshape(shape)
    assert blind.nonzero().tolist() == [[4, 8], [5, 7], [5, 8]]  # (i-2, j+3), (i-1, j+2..3)
    assert not (reach & ~gated)[p].any()
    assert not (gated & ~allowed(shape, "raster", False)).any()


def test_reflect_padding_on_the_past_side_of_time_copies_future_frames():
    torch.manual_seed(2)
    conv = nn.Conv3d(1, 1, 3).double()
    x = torch.randn(1, 1, 6, 4, 4, dtype=torch.float64)

    def recipe(v: torch.Tensor) -> torch.Tensor:
        return conv(F.pad(v, (1, 1, 1, 1, 2, 0), mode="reflect"))  # time padded (2, 0)

    frames = (influence(recipe, x) > 0).reshape(6, 16, 6, 16).any(dim=(1, 3))  # [t_out, t_in]
    assert frames[0, 1] and frames[0, 2]  # output at t = 0 reads frames 1 and 2
    ours = (influence(CausalConv3d(1, 1, 3), x) > 0).reshape(6, 16, 6, 16).any(dim=(1, 3))
    assert torch.equal(ours, torch.tril(torch.ones(6, 6, dtype=torch.bool)) & ~torch.tril(
        torch.ones(6, 6, dtype=torch.bool), diagonal=-3))


def test_group_norm_over_time_leaks_and_cannot_run_in_chunks():
    torch.manual_seed(3)
    stack = nn.Sequential(CausalConv3d(1, 4, 3), nn.GroupNorm(2, 4))
    x = torch.randn(1, 1, 5, 3, 3, dtype=torch.float64)
    frames = (influence(stack, x) > 0).reshape(5, 9, 5, 9).any(dim=(1, 3))
    assert frames[0, 4]  # the first output reads the last frame through the statistics
    with pytest.raises(ValueError, match=r"layer 1 \(GroupNorm\) is not elementwise over time"):
        ChunkedStack(stack)
    with pytest.raises(ValueError, match="only time-causal convs with impl='pad'"):
        ChunkedStack(nn.Sequential(CausalConv3d(1, 1, 3, impl="mask")))


def strided_stack(dims: int) -> nn.Sequential:
    torch.manual_seed(4)
    if dims == 1:
        return nn.Sequential(CausalConv1d(2, 4, 3, dilation=2), nn.ReLU(),
                             CausalConv1d(4, 4, 2, stride=2), nn.Tanh(),
                             CausalConv1d(4, 3, 3, stride=3, dilation=2, mask="A")).double()
    return nn.Sequential(
        CausalConv3d(2, 4, 3, dilation=(2, 1, 1)), nn.Tanh(),
        CausalConv3d(4, 4, (2, 3, 3), stride=2), nn.Tanh(),
        CausalConv3d(4, 3, (3, 1, 1), stride=3, dilation=(2, 1, 1), mask="A"),
    ).double()


@pytest.mark.parametrize("dims", [1, 3])
@pytest.mark.parametrize("sizes", [[1] + [4] * 5 + [2], [8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5],
                                   [23], [5, 7, 11]], ids=["1-4-4", "8-1-1", "whole", "5-7-11"])
def test_chunked_time_causal_stack_equals_one_pass(sizes, dims):
    stack = strided_stack(dims)
    x = torch.randn(2, 2, sum(sizes), *((4, 5) if dims == 3 else ()),
                    dtype=torch.float64)
    stream = ChunkedStack(stack)
    chunks, start = [], 0
    for n in sizes:
        chunks.append(stream(x[:, :, start : start + n]))
        start += n
    whole = stack(x)
    assert whole.shape[2] == 4  # 23 -> 12 -> 4 steps
    assert torch.allclose(torch.cat(chunks, dim=2), whole, atol=1e-12)


def test_caching_a_fixed_number_of_frames_breaks_with_time_stride():
    torch.manual_seed(5)
    conv = CausalConv3d(1, 1, 3, stride=2).double()
    x = torch.randn(1, 1, 9, 3, 3, dtype=torch.float64)
    span = 2  # (k - 1) * d frames, the right cache only when the stride is 1
    cache, outs = x.new_zeros(1, 1, span, 3, 3), []
    for start in (0, 1, 5):  # chunks of 1, 4, 4 frames
        buf = torch.cat([cache, x[:, :, start : start + (1 if start == 0 else 4)]], dim=2)
        outs.append(F.conv3d(F.pad(buf, (1, 1, 1, 1)), conv.conv.weight, conv.conv.bias,
                             stride=(2, 1, 1)))
        cache = buf[:, :, -span:]
    naive, whole = torch.cat(outs, dim=2), conv(x)
    assert naive.shape == whole.shape  # right count of outputs ...
    assert not torch.allclose(naive[:, :, 1:], whole[:, :, 1:])  # ... read at the wrong frames
    stream = ChunkedStack(nn.Sequential(conv))
    ours = torch.cat([stream(x[:, :, :1]), stream(x[:, :, 1:5]), stream(x[:, :, 5:])], dim=2)
    assert torch.allclose(ours, whole, atol=1e-12)
