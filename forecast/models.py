"""WaveNet-style stack of gated, dilated convolutions (plain ``nn.Module``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forecast.conv import conv1d


def receptive_field(kernel_size: int, dilations: list[int]) -> int:
    """R = 1 + (k - 1) * sum(dilations): the inputs one output can read."""
    return 1 + (kernel_size - 1) * sum(dilations)


def doubling_dilations(layers_per_stack: int, stacks: int = 1) -> list[int]:
    """Dilations 1, 2, 4, ... 2**(layers_per_stack - 1), repeated ``stacks`` times."""
    return [2**i for i in range(layers_per_stack)] * stacks


class ResidualBlock(nn.Module):
    """Gated dilated conv with residual and skip 1x1 convs, for ``members`` nets at once.

    Members are independent nets held as conv groups: channels are laid out member
    by member, and no weight connects two members.
    """

    def __init__(
        self, channels: int, skip_channels: int, kernel_size: int, dilation: int,
        causal: bool, dropout: float, members: int = 1, impl: str = "pad",
    ) -> None:
        super().__init__()
        self.members = members
        self.conv = conv1d(members * channels, members * 2 * channels, kernel_size, dilation,
                           causal, groups=members, impl=impl)
        self.residual = nn.Conv1d(members * channels, members * channels, 1, groups=members)
        self.skip = nn.Conv1d(members * channels, members * skip_channels, 1, groups=members)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, t = x.shape
        # [B, K*2C, T] -> [B, K, 2C, T] -> filter, gate -> [B, K*C, T]
        filt, gate = self.conv(x).view(b, self.members, -1, t).chunk(2, dim=2)
        h = self.dropout((torch.tanh(filt) * torch.sigmoid(gate)).reshape(b, -1, t))
        return x + self.residual(h), self.skip(h)

    def valid(
        self, x: torch.Tensor, dilation: int, stride: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unpadded block on a grid of positions: x [B, K*C, n] -> (next [B, K*C, m], gated).

        ``dilation`` is the block's dilation in grid steps; outputs are taken every ``stride``
        grid steps, the last one at the last input position (``n - 1 - (k-1)*dilation`` must
        be a multiple of ``stride``). ``gated`` [B, K*C, m] feeds the skip conv.
        """
        conv = self.conv.conv
        y = F.conv1d(x, conv.weight, conv.bias, stride=stride, dilation=dilation,
                     groups=conv.groups)  # [B, K*2C, m]
        b, _, m = y.shape
        filt, gate = y.view(b, self.members, -1, m).chunk(2, dim=2)
        h = self.dropout((torch.tanh(filt) * torch.sigmoid(gate)).reshape(b, -1, m))
        first = (conv.kernel_size[0] - 1) * dilation
        return x[..., first::stride] + self.residual(h), h


class WaveNet(nn.Module):
    """Dense sequence-to-sequence forecaster.

    Maps features (batch, T, n_features) to (batch, T, horizon): output [:, i, h-1]
    is read from inputs at steps i - (R - 1) .. i when causal, and from
    i - (R - 1) / 2 .. i + (R - 1) / 2 when not. With ``members`` > 1 it is an
    ensemble of that many independent nets (run as conv groups) whose outputs are
    averaged.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        channels: int = 32,
        skip_channels: int = 64,
        kernel_size: int = 3,
        dilations: list[int] | None = None,
        causal: bool = True,
        dropout: float = 0.0,
        members: int = 1,
        impl: str = "pad",
    ) -> None:
        super().__init__()
        dilations = list(dilations) if dilations is not None else doubling_dilations(7)
        self.dilations = dilations
        self.kernel_size = kernel_size
        self.causal = causal
        self.members = members
        self.horizon = horizon
        self.receptive_field = receptive_field(kernel_size, dilations)
        k = members
        self.input = nn.Conv1d(n_features, k * channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, skip_channels, kernel_size, d, causal, dropout, members, impl)
            for d in dilations
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(k * skip_channels, k * skip_channels, 1, groups=k),
            nn.ReLU(),
            nn.Conv1d(k * skip_channels, k * horizon, 1, groups=k),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x.transpose(1, 2))  # [B, T, F] -> [B, K*C, T]
        skips = 0
        for block in self.blocks:
            h, s = block(h)
            skips = skips + s
        out = self.head(skips)  # [B, K*H, T]
        b, _, t = out.shape
        out = out.view(b, self.members, self.horizon, t).mean(dim=1)  # [B, H, T]
        return out.transpose(1, 2)  # [B, T, H]

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)[:, -1]`` computing only the positions the last output reads.

        x [B, T, F] -> [B, H]. Block j reads its input on a grid ending at step T - 1,
        spaced by the gcd of the dilations from j on; the skip sum and the head run at
        the last step only. Steps before the window are zeros, as ``forward``'s padding.
        """
        if not self.causal:
            raise ValueError("forward_last needs a causal net: a non-causal one reads steps "
                             "after the last")
        k, t = self.kernel_size, x.shape[1]
        spacing = [math.gcd(*self.dilations[j:]) for j in range(len(self.dilations))] + [1]
        spans = [(k - 1) * sum(self.dilations[j:]) for j in range(len(self.dilations) + 1)]
        steps = t - 1 - torch.arange(spans[0], -1, -spacing[0], device=x.device)  # grid
        h = self.input(x[:, steps.clamp(min=0)].transpose(1, 2))  # [B, K*C, n0]
        skips = 0
        for j, block in enumerate(self.blocks):
            if t <= spans[j]:  # positions before the window hold zeros (padding)
                h = h * (steps >= 0).to(h.dtype)
            stride = spacing[j + 1] // spacing[j] if j + 1 < len(self.blocks) else 1
            h, g = block.valid(h, self.dilations[j] // spacing[j], stride)
            steps = steps[(k - 1) * self.dilations[j] // spacing[j] :: stride]
            skips = skips + block.skip(g[..., -1:])
        out = self.head(skips)  # [B, K*H, 1]
        return out.view(out.shape[0], self.members, self.horizon).mean(dim=1)  # [B, H]
