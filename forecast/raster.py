"""Raster-order (pixel by pixel) 2-D stacks: the naive masked stack and the gated one.

Both map (B, C_in, H, W) -> (B, channels, H, W) and never read a pixel that comes
later in raster order (row by row, left to right). Stacking ``CausalConv2d``
layers (mask "A", then "B") leaves a **blind spot**: a 3 x 3 raster kernel reads
the row above only up to column j + 1, so after n layers pixels (i - 1, j + 2 ..)
are never seen although they come earlier. ``GatedStack2d`` removes it with two
stacks: a vertical one that reads whole rows above (any column within reach) and
reaches the horizontal one only shifted down one row, and a horizontal one that
reads the current row to the left.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forecast.conv import BoxConv, CausalConv2d, centred


class MaskedStack2d(nn.Module):
    """``layers`` raster-causal convs (mask "A" first, then "B") with tanh between."""

    def __init__(self, in_channels: int, channels: int, layers: int, kernel_size: int = 3,
                 impl: str = "pad") -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            CausalConv2d(in_channels if i == 0 else channels, channels, kernel_size,
                         mask="A" if i == 0 else "B", impl=impl)
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x if i == 0 else torch.tanh(x))
        return x


def _gate(x: torch.Tensor) -> torch.Tensor:
    filt, gate = x.chunk(2, dim=1)  # [B, 2C, H, W] -> 2 x [B, C, H, W]
    return torch.tanh(filt) * torch.sigmoid(gate)


class GatedLayer2d(nn.Module):
    """One gated layer: (v, h) -> (v', h'), each (B, C, H, W).

    The vertical conv reads rows i - r .. i over columns j - r .. j + r, so v' at row i
    knows rows <= i; the horizontal stack only ever sees it shifted down one row
    (rows < i). The horizontal conv reads columns j - r .. j - 1 (first layer) or
    .. j (later layers) of the current row.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, first: bool) -> None:
        super().__init__()
        r, k = -centred(kernel_size)[0], kernel_size
        self.first = first
        self.vertical = BoxConv(in_channels, 2 * channels, {"conv": ((-r, r + 1), (-r, k))})
        self.horizontal = BoxConv(in_channels, 2 * channels,
                                  {"conv": ((0, 1), (-r, r if first else r + 1))})
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical(v)
        down = F.pad(v_pre, (0, 0, 1, -1))  # row i gets row i - 1; the last row drops out
        h_new = self.out(_gate(self.horizontal(h) + self.link(down)))
        # the first layer has no residual: h is the input itself, pixel (i, j) included
        return _gate(v_pre), h_new if self.first else h + h_new


class GatedStack2d(nn.Module):
    """Gated PixelCNN-style stack without a blind spot: (B, C_in, H, W) -> (B, C, H, W)."""

    def __init__(self, in_channels: int, channels: int, layers: int,
                 kernel_size: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            GatedLayer2d(in_channels if i == 0 else channels, channels, kernel_size, i == 0)
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return h
