"""WaveNet-style stack of gated, dilated convolutions (plain ``nn.Module``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forecast.inputs import ConvInputs, scaled
from forecast.layers import LinearPath, ResidualBlock, at_one
from forecast.quantiles import check_levels, monotone


def receptive_field(
    kernel_size: int, dilations: list[int], linear_lags: int = 0, feature_lags: int = 1,
    level_window: int = 0,
) -> int:
    """R = max(1 + (k - 1) * sum(dilations) + max(W - 1, 0), P, Q): the inputs one output
    can read (P, Q: the spans of the linear path's target and feature kernels; W: the
    window of the level features' mean, see :class:`WaveNet`)."""
    conv = 1 + (kernel_size - 1) * sum(dilations) + max(level_window - 1, 0)
    return max(conv, linear_lags, feature_lags)


def doubling_dilations(layers_per_stack: int, stacks: int = 1) -> list[int]:
    """Dilations 1, 2, 4, ... 2**(layers_per_stack - 1), repeated ``stacks`` times."""
    return [2**i for i in range(layers_per_stack)] * stacks


class WaveNet(nn.Module):
    """Dense sequence-to-sequence forecaster.

    Maps features (batch, T, n_features) to (batch, T, horizon): output [:, i, h-1]
    is read from inputs at steps i - (R - 1) .. i when causal, and from
    i - (R - 1) / 2 .. i + (R - 1) / 2 when not. With ``members`` > 1 it is an
    ensemble of that many independent nets (run as conv groups) whose outputs are
    averaged. With ``linear_lags`` P > 0 a :class:`LinearPath` is added to the
    output (``feature_lags`` Q: its kernel over every feature), and the convolutions
    model what it misses; features listed in
    ``linear_only`` (indices) reach the linear path but not the convolutions.

    With ``quantiles`` (levels holding 0.5) the head emits, per horizon step, a median
    and positive increments on each side (:func:`forecast.quantiles.monotone`), so the
    quantiles cannot cross; the linear path shifts them all. ``forward`` is then the
    median and :meth:`forward_quantiles` all of them.
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
        linear_lags: int = 0,
        linear_only: list[int] | None = None,
        feature_lags: int = 1,
        impl: str = "pad",
        quantiles: list[float] | None = None,
        level_window: int = 0,
        level_features: list[int] | None = None,
        level_scale: float = 0.0,
    ) -> None:
        super().__init__()
        self.quantiles = check_levels(quantiles) if quantiles is not None else None
        self.n_out = len(self.quantiles) if self.quantiles else 1  # Q outputs per step
        dilations = list(dilations) if dilations is not None else doubling_dilations(7)
        only = sorted(set(linear_only or []))
        if only and not linear_lags:
            raise ValueError(f"linear_only={only} needs a linear path (linear_lags > 0)")
        if level_scale and quantiles is not None:
            raise ValueError("level_scale needs a point net: a quantile head starts at the "
                             "ridge fit's residual quantiles, in the target's own units")
        self.inputs = ConvInputs(n_features, only, level_window, level_features or [], causal,
                                 level_scale)
        self.dilations = dilations
        self.kernel_size = kernel_size
        self.causal = causal
        self.members = members
        self.horizon = horizon
        self.receptive_field = receptive_field(kernel_size, dilations, linear_lags,
                                               feature_lags if linear_lags else 1,
                                               self.inputs.window)
        k = members
        self.input = nn.Conv1d(len(self.inputs.features), k * channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, skip_channels, kernel_size, d, causal, dropout, members, impl)
            for d in dilations
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(k * skip_channels, k * skip_channels, 1, groups=k),
            nn.ReLU(),
            nn.Conv1d(k * skip_channels, k * horizon * self.n_out, 1, groups=k),
        )
        self.linear = (LinearPath(n_features, horizon, linear_lags, causal, feature_lags)
                       if linear_lags else None)

    @property
    def median(self) -> int:
        """Index of the median among the quantile levels."""
        return self.quantiles.index(0.5) if self.quantiles else 0

    def split_members(self, out: torch.Tensor) -> torch.Tensor:
        """Head output [B, K*H*Q, n] -> each member's forecast: [B, K, H, n] (point net) or
        non-crossing quantiles [B, K, Q, H, n] (quantile net)."""
        b, _, t = out.shape
        if self.quantiles is None:
            return out.view(b, self.members, self.horizon, t)
        raw = out.view(b, self.members, self.n_out, self.horizon, t)  # [B, K, Q, H, n]
        return monotone(raw, self.median, dim=2)

    def combine(self, out: torch.Tensor) -> torch.Tensor:
        """Head output [B, K*H*Q, n] -> the members' mean: [B, H, n] (point net) or
        non-crossing quantiles [B, Q, H, n] (quantile net)."""
        return self.split_members(out).mean(dim=1)

    def _dense(self, x: torch.Tensor, members: bool = False) -> torch.Tensor:
        """[B, T, F] -> [B, H, T] (point) or [B, Q, H, T] (quantiles); ``members``: each
        member's, [B, K, H, T] or [B, K, Q, H, T]."""
        xc, spread = self.inputs(x)  # [B, Fc, T], [B, 1, T] or None
        h = self.input(xc)  # [B, K*C, T]
        x = x.transpose(1, 2)  # [B, T, F] -> [B, F, T]
        skips = 0
        for block in self.blocks:
            h, s = block(h)
            skips = skips + s
        head = self.head(skips)
        out = scaled(self.split_members(head) if members else self.combine(head), spread)
        if self.linear is not None:
            lin = self.linear(x)  # [B, H, T]
            lead = out.dim() - lin.dim()  # member and level axes before (H, T)
            out = out + lin.view(lin.shape[0], *(1,) * lead, *lin.shape[1:])
        return out

    def members_forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> each member's forecasts: [B, K, T, H] (point net) or
        [B, K, T, H, Q] (quantile net); their mean over K is :meth:`forward`
        (:meth:`forward_quantiles`)."""
        out = self._dense(x, members=True)
        return out.transpose(2, 3) if self.quantiles is None else out.permute(0, 1, 4, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, T, H]: the point forecast (the median of a quantile net)."""
        out = self._dense(x)
        if self.quantiles is not None:
            out = out[:, self.median]
        return out.transpose(1, 2)  # [B, T, H]

    def forward_quantiles(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, T, H, Q] non-crossing quantiles (quantile nets only)."""
        if self.quantiles is None:
            raise ValueError("forward_quantiles needs a quantile net (model.quantiles)")
        return self._dense(x).permute(0, 3, 2, 1)  # [B, Q, H, T] -> [B, T, H, Q]

    def forward_last(self, x: torch.Tensor, quantiles: bool = False) -> torch.Tensor:
        """``forward(x)[:, -1]`` computing only the positions the last output reads.

        x [B, T, F] -> [B, H] (``quantiles=True``: ``forward_quantiles(x)[:, -1]``,
        [B, H, Q]). Block j reads its input on a grid ending at step T - 1,
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
        # the steps the grid's inputs read: the grid's span, and the level means' W - 1
        first = max(t - 1 - spans[0] - self.inputs.width, 0)
        xc, spread = self.inputs(x[:, first:])
        xc = xc.transpose(1, 2)  # [B, t - first, Fc]
        if spacing[0] == 1 and t > spans[0]:
            grid = xc[:, t - 1 - spans[0] - first:]  # the last spans[0] + 1 steps: a slice
        else:
            grid = xc[:, (steps - first).clamp(min=0)]
        # the 1x1 input conv as one matrix product over [B, n, Fc], then [B, K*C, n]
        h = F.linear(grid, self.input.weight[..., 0], self.input.bias).transpose(1, 2)
        h = h.contiguous()
        skips = 0
        for j, block in enumerate(self.blocks):
            if t <= spans[j]:  # positions before the window hold zeros (padding)
                h = h * (steps >= 0).to(h.dtype)
            stride = spacing[j + 1] // spacing[j] if j + 1 < len(self.blocks) else 1
            h, g = block.valid(h, self.dilations[j] // spacing[j], stride)
            steps = steps[(k - 1) * self.dilations[j] // spacing[j] :: stride]
            skips = skips + at_one(block.skip, g[..., -1:])  # [B, K*S]
        hidden = F.relu(at_one(self.head[1], F.relu(skips)[..., None]))  # [B, K*S]
        head = at_one(self.head[3], hidden[..., None])  # [B, K*H*Q]
        out = self.combine(head[..., None])  # [B, H, 1] or [B, Q, H, 1]
        out = scaled(out, None if spread is None else spread[..., -1:])[..., 0]
        if self.linear is not None:  # its last output reads the last max(P, Q) steps
            lin = self.linear.last(x)  # [B, H]
            out = out + (lin if self.quantiles is None else lin[:, None])
        if self.quantiles is None:
            return out
        return out.transpose(1, 2) if quantiles else out[:, self.median]


def last_outputs(model: torch.nn.Module, x: torch.Tensor, quantiles: bool = False
                 ) -> torch.Tensor:
    """[B, T, F] -> [B, H]: the forecasts of each window's last position, computing only
    what that position reads when the model offers it (``forecast_last``, causal only).
    ``quantiles``: a quantile model's quantiles, [B, H, Q]."""
    fast = getattr(model, "forecast_last", None)
    if fast is not None and bool(model.hparams.causal):
        return fast(x, quantiles)
    return (model.forward_quantiles(x) if quantiles else model(x))[:, -1]
