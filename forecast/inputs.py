"""What the dilated convolutions read: every feature not kept for the linear path, with
the level features as departures from their mean over the last W steps (and, with a scale,
divided by their spread over those steps)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvInputs(nn.Module):
    """Features [B, T, F] -> the convolutions' inputs [B, Fc, T].

    ``linear_only`` (indices) are left out. With ``window`` W > 1, each feature in
    ``levels`` (indices) is read minus its mean over the last W steps (the W centred on
    each step when not causal); steps outside the series count as zeros, as the
    convolutions' padding. W = 1 or no level features: no mean, :attr:`window` 0.

    With ``scale_eps`` e > 0 each level departure is divided by sqrt(var + e^2), its
    feature's variance over the same W steps, and :meth:`forward` also returns the target's
    (feature 0's) such spread, [B, 1, T], by which the net multiplies the convolutions'
    output: they read and forecast the window's weather in units of its own recent swing.
    """

    def __init__(self, n_features: int, linear_only: list[int], window: int,
                 levels: list[int], causal: bool, scale_eps: float = 0.0) -> None:
        super().__init__()
        features = [j for j in range(n_features) if j not in linear_only]
        levels = sorted(set(levels))
        self.causal = causal
        self.window = int(window) if window > 1 and levels else 0
        if self.window:
            if not causal and self.window % 2 == 0:
                raise ValueError(f"level_window={window} must be odd when not causal "
                                 "(the mean is centred on each step)")
            bad = [j for j in levels if j not in features]
            if bad:
                raise ValueError(f"level_features={bad} do not reach the convolutions "
                                 f"(out of range, or listed in linear_only={linear_only})")
        else:
            levels = []
        self.scale_eps = float(scale_eps)
        if self.scale_eps < 0:
            raise ValueError(f"level_scale={scale_eps} must be >= 0 (0: no scaling)")
        if self.scale_eps and 0 not in levels:
            raise ValueError(f"level_scale={scale_eps} needs the target among level_features "
                             "and level_window > 1 (its spread scales the output)")
        self.register_buffer("features", torch.tensor(features, dtype=torch.long),
                             persistent=False)
        # the features as a slice when they are consecutive (the usual case: the linear-only
        # ones come last): a copy of a slice is cheaper than a gather on the last axis
        self._span = ((features[0], features[-1] + 1)
                      if features and features == list(range(features[0], features[-1] + 1))
                      else None)
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        # where each level feature sits among the convolutions' inputs
        self.register_buffer("slots", torch.tensor([features.index(j) for j in levels],
                                                   dtype=torch.long), persistent=False)

    @property
    def width(self) -> int:
        """Past raw steps of the level features a stream keeps: W - 1 (0: none)."""
        return max(self.window - 1, 0)

    def _departures(self, x: torch.Tensor, padded: torch.Tensor | None, left: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B, n, F], level features with their W - 1 extra steps [B, L, n + W - 1], of
        which ``left`` come before x (None without a window) -> (inputs [B, Fc, n], the
        target's spread [B, 1, n] or None without a scale)."""
        if self._span is None:
            xc = x[..., self.features]  # [B, n, Fc], a copy
        else:
            xc = x[..., self._span[0]:self._span[1]].clone()
        xc = xc.transpose(1, 2)  # [B, Fc, n]
        if padded is None:
            return xc, None
        means = F.avg_pool1d(padded, self.window, stride=1)  # [B, L, n]
        departures = padded[..., left:left + x.shape[1]] - means
        spread = None
        if self.scale_eps:
            var = (F.avg_pool1d(padded * padded, self.window, stride=1) - means * means
                   ).clamp(min=0)
            spread = (var + self.scale_eps ** 2).sqrt()  # [B, L, n]
            departures = departures / spread
        xc[:, self.slots] = departures
        return xc, None if spread is None else spread[:, :1]  # levels sorted: feature 0 first

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B, T, F] -> (inputs [B, Fc, T], the target's spread [B, 1, T] or None)."""
        if not self.window:
            return self._departures(x, None)
        left = self.width if self.causal else self.width // 2
        levels = x[..., self.levels].transpose(1, 2)  # [B, L, T]
        return self._departures(x, F.pad(levels, (left, self.width - left)), left)

    def advance(self, x: torch.Tensor, past: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """A causal stream: n new steps x [B, n, F] after the level features' last W - 1
        raw values ``past`` [B, L, W - 1] -> (inputs [B, Fc, n], the target's spread
        [B, 1, n] or None, the values after x)."""
        if not self.window:
            return *self._departures(x, None), past
        padded = torch.cat([past, x[..., self.levels].transpose(1, 2)], dim=-1)
        return (*self._departures(x, padded, self.width),
                padded[..., padded.shape[-1] - self.width:])


def scaled(out: torch.Tensor, spread: torch.Tensor | None) -> torch.Tensor:
    """The convolutions' output [B, ..., n] times the target's spread [B, 1, n] (None: as
    it is), broadcast over the axes between."""
    if spread is None:
        return out
    return out * spread.reshape(spread.shape[0], *(1,) * (out.dim() - 2), spread.shape[-1])
