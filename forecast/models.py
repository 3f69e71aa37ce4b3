"""WaveNet-style stack of gated, dilated convolutions (plain ``nn.Module``)."""

from __future__ import annotations

import torch
from torch import nn

from forecast.layers import DilatedConv1d


def receptive_field(kernel_size: int, dilations: list[int]) -> int:
    """R = 1 + (k - 1) * sum(dilations): the inputs one output can read."""
    return 1 + (kernel_size - 1) * sum(dilations)


def doubling_dilations(layers_per_stack: int, stacks: int = 1) -> list[int]:
    """Dilations 1, 2, 4, ... 2**(layers_per_stack - 1), repeated ``stacks`` times."""
    return [2**i for i in range(layers_per_stack)] * stacks


class ResidualBlock(nn.Module):
    """Gated dilated conv with residual and skip 1x1 convs."""

    def __init__(
        self, channels: int, skip_channels: int, kernel_size: int, dilation: int,
        causal: bool, dropout: float,
    ) -> None:
        super().__init__()
        self.conv = DilatedConv1d(channels, 2 * channels, kernel_size, dilation, causal)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # [B, C, T] -> [B, 2C, T] -> gate -> [B, C, T]
        filt, gate = self.conv(x).chunk(2, dim=1)
        h = self.dropout(torch.tanh(filt) * torch.sigmoid(gate))
        return x + self.residual(h), self.skip(h)


class WaveNet(nn.Module):
    """Dense sequence-to-sequence forecaster.

    Maps features (batch, T, n_features) to (batch, T, horizon): output [:, i, h-1]
    is read from inputs at steps i - (R - 1) .. i when causal, and from
    i - (R - 1) / 2 .. i + (R - 1) / 2 when not.
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
    ) -> None:
        super().__init__()
        dilations = list(dilations) if dilations is not None else doubling_dilations(7)
        self.dilations = dilations
        self.kernel_size = kernel_size
        self.causal = causal
        self.receptive_field = receptive_field(kernel_size, dilations)
        self.input = nn.Conv1d(n_features, channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, skip_channels, kernel_size, d, causal, dropout)
            for d in dilations
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(skip_channels, skip_channels, 1),
            nn.ReLU(),
            nn.Conv1d(skip_channels, horizon, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x.transpose(1, 2))  # [B, T, F] -> [B, C, T]
        skips = 0
        for block in self.blocks:
            h, s = block(h)
            skips = skips + s
        return self.head(skips).transpose(1, 2)  # [B, H, T] -> [B, T, H]
