"""Chunked (streaming) evaluation of a time-causal stack, equal to one pass.

Each conv layer keeps a cache of the past input frames its next outputs will
read. Output n of a layer with time stride s, taps k, dilation d and first
offset f sits at input step n * s and reads steps n * s + f * d ..
n * s + (f + k - 1) * d. So the cache starts at the first frame the *next*
output reads: with s = 1 that is always the last (k - 1) * d frames, but with
s > 1 it is between (k - 1) * d - s + 1 and (k - 1) * d frames, depending on
where the chunk ended. Keeping a fixed (k - 1) * d frames is the classic bug.

Only layers that treat every time step alike may sit between the convs
(elementwise activations, dropout): a norm over the time axis reads the future
and has no streaming form, so it is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from forecast.conv import BoxConv

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity,
                nn.Dropout)


class _LayerCache:
    """Past input frames and output count of one time-causal conv."""

    def __init__(self, layer: BoxConv) -> None:
        (first, taps), *_ = layer.boxes["conv"]
        self.layer = layer
        self.conv = layer.conv
        self.stride, self.dilation = layer.conv.stride[0], layer.dilation[0]
        self.span = (taps - 1) * self.dilation  # the frames one output reads, minus one
        self.before = -first * self.dilation  # zero frames of padding before step 0
        self.space_pad = layer.padding[:-2] + (0, 0)  # F.pad tuple: time is the last pair
        self.cache: torch.Tensor | None = None
        self.seen = 0  # input steps received
        self.emitted = 0  # outputs produced

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, t, *space) new input steps -> (B, C_out, t', *space) new outputs."""
        if self.cache is None:
            self.cache = x.new_zeros(*x.shape[:2], self.before, *x.shape[3:])
        buf = torch.cat([self.cache, x], dim=2)  # buf[:, :, 0] is padded step emitted * s
        self.seen += x.shape[2]
        ready = (self.seen - 1) // self.stride + 1 - self.emitted if self.seen else 0
        if ready <= 0:
            self.cache = buf
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0, *x.shape[3:])
        used = buf[:, :, : (ready - 1) * self.stride + self.span + 1]
        y = self.layer._conv_fn(nn.functional.pad(used, self.space_pad), self.conv.weight,
                                self.conv.bias, self.conv.stride, 0, self.conv.dilation,
                                self.conv.groups)
        self.emitted += ready
        self.cache = buf[:, :, ready * self.stride :]  # from the first frame output `emitted` reads
        return y


class ChunkedStack:
    """Feeds a sequence to ``stack`` chunk by chunk: (B, C, t, *space) -> new outputs.

    ``stack`` is an ``nn.Sequential`` of time-causal convs with ``impl="pad"``
    (``CausalConv1d``, ``CausalConv3d(order="time")``) and elementwise layers.
    Concatenating the outputs of all chunks equals ``stack(whole sequence)``.
    """

    def __init__(self, stack: nn.Sequential) -> None:
        self.steps: list = []
        for i, layer in enumerate(stack):
            if isinstance(layer, BoxConv):
                if layer.impl != "pad" or list(layer.boxes) != ["conv"] or not _time_causal(layer):
                    raise ValueError(
                        f"layer {i} ({type(layer).__name__}): only time-causal convs with "
                        "impl='pad' can run in chunks"
                    )
                self.steps.append(_LayerCache(layer))
            elif isinstance(layer, _ELEMENTWISE):
                self.steps.append(layer)
            else:
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) is not elementwise over time: "
                    "it has no chunked form (a norm over time reads the future)"
                )

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            chunk = step.step(chunk) if isinstance(step, _LayerCache) else step(chunk)
        return chunk


def _time_causal(layer: BoxConv) -> bool:
    """True when the time box ends at or before the present and space is centred."""
    (first, taps), *space = layer.boxes["conv"]
    return first + taps - 1 <= 0 and all(f == -(n // 2) and n % 2 for f, n in space)
