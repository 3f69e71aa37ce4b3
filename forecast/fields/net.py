"""The 3-D field net: dilated convolutions causal in time, centred in space.

Maps frames (batch, T, C, Y, X) to (batch, T, H, Y, X): output [:, i, h-1] is the
whole map at step i + h, read from frames i - (R - 1) .. i when causal and from
i - (R - 1) / 2 .. i + (R - 1) / 2 when not. Space is always centred: a grid point
sees its neighbours on every side, within one time step that is allowed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forecast.models import receptive_field


class TimeConv3d(nn.Module):
    """Shape-preserving 3-D convolution over (time, y, x), dilated along time.

    The whole causal/standard difference is the time padding: causal pads
    ``(k - 1) * d`` frames before and none after, standard splits them evenly.
    Space is padded ``s // 2`` with zeros on each side (centred). The kernel is a
    Conv3d kernel (out, in, k, s, s). With a time dilation it is applied as one 2-D
    convolution over the k time taps stacked as channels: torch's CPU Conv3d takes a slow
    path when dilated (7-8x slower at dilations 4 and 8 on 2 cores,
    ``benchmarks/bench_field_conv.py``); undilated, Conv3d itself is the faster one. It
    equals ``forecast.conv.CausalConv3d`` (``SameConv3d`` when not causal) with the same
    weights, a test shows.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_time: int,
                 kernel_space: int, dilation: int = 1, causal: bool = True) -> None:
        super().__init__()
        total = (kernel_time - 1) * dilation
        before = total if causal else total // 2
        ps = kernel_space // 2
        self.pad = (ps, ps, ps, ps, before, total - before)  # F.pad order: x, y, time
        self.kernel_time, self.dilation = kernel_time, dilation
        conv = nn.Conv3d(in_channels, out_channels, (kernel_time, kernel_space, kernel_space))
        self.weight, self.bias = conv.weight, conv.bias  # torch's initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, _, _ = x.shape
        xp = F.pad(x, self.pad)  # [B, C, T + (k-1)d, Y + 2p, X + 2p]
        if self.dilation == 1:
            return F.conv3d(xp, self.weight, self.bias)  # [B, O, T, Y, X]
        taps = torch.cat([xp[:, :, j * self.dilation : j * self.dilation + t]
                          for j in range(self.kernel_time)], dim=1)  # [B, k*C, T, Y', X']
        taps = taps.transpose(1, 2).reshape(b * t, -1, *taps.shape[-2:])
        o, _, k, s, _ = self.weight.shape
        w = self.weight.transpose(1, 2).reshape(o, k * c, s, s)  # taps-major, as stacked
        out = F.conv2d(taps, w, self.bias)  # [B*T, O, Y, X]
        return out.view(b, t, o, *out.shape[-2:]).transpose(1, 2)  # [B, O, T, Y, X]


class FieldBlock(nn.Module):
    """Residual gated block: one dilated time-space conv, then a 1x1x1 mix."""

    def __init__(self, channels: int, kernel_time: int, kernel_space: int, dilation: int,
                 causal: bool) -> None:
        super().__init__()
        self.conv = TimeConv3d(channels, 2 * channels, kernel_time, kernel_space, dilation,
                               causal)
        self.mix = nn.Conv3d(channels, channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(h).chunk(2, dim=1)
        return h + self.mix(torch.tanh(a) * torch.sigmoid(b))


class FieldNet(nn.Module):
    """Dense field forecaster (see the module docstring for the shapes)."""

    def __init__(
        self,
        in_channels: int,
        horizon: int,
        channels: int = 16,
        kernel_time: int = 3,
        kernel_space: int = 3,
        dilations: list[int] | None = None,
        causal: bool = True,
    ) -> None:
        super().__init__()
        dilations = list(dilations) if dilations is not None else [1, 2, 4, 8]
        self.horizon, self.causal = horizon, causal
        self.receptive_field = receptive_field(kernel_time, dilations)
        self.input = nn.Conv3d(in_channels, channels, 1)
        self.blocks = nn.ModuleList(
            FieldBlock(channels, kernel_time, kernel_space, d, causal) for d in dilations
        )
        self.head = nn.Sequential(nn.GELU(), nn.Conv3d(channels, channels, 1), nn.GELU(),
                                  nn.Conv3d(channels, horizon, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x.transpose(1, 2))  # [B, T, C, Y, X] -> [B, C', T, Y, X]
        for block in self.blocks:
            h = block(h)
        return self.head(h).transpose(1, 2)  # [B, H, T, Y, X] -> [B, T, H, Y, X]
