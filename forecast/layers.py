"""The dilated 1-D convolution: the only place where causality lives.

Padding is explicit and the convolution itself is unpadded. ``causal=True`` puts
all ``(k - 1) * d`` padding on the left, so the output at step i reads inputs at
steps ``<= i`` only. ``causal=False`` splits the same padding evenly ("same"
padding), so the output at i also reads ``(k - 1) * d / 2`` future steps. The
flag changes nothing else: same weights, same output length, same FLOPs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DilatedConv1d(nn.Module):
    """Length-preserving dilated conv: (batch, in_channels, T) -> (batch, out_channels, T)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        causal: bool = True,
        groups: int = 1,
    ) -> None:
        super().__init__()
        span = (kernel_size - 1) * dilation
        if not causal and span % 2:
            raise ValueError(
                f"kernel_size={kernel_size}, dilation={dilation}: centred padding needs an even "
                "span (k - 1) * d; use an odd kernel_size"
            )
        self.causal = causal
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = (span, 0) if causal else (span // 2, span // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation,
                              groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))

    def extra_repr(self) -> str:
        return f"causal={self.causal}, padding={self.padding}"
