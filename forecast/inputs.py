"""What the dilated convolutions read: every feature not kept for the linear path, with
the level features as departures from their mean over the last W steps."""

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
    """

    def __init__(self, n_features: int, linear_only: list[int], window: int,
                 levels: list[int], causal: bool) -> None:
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
        place = torch.zeros(len(features), len(levels))  # [Fc, L]: each mean's feature slot
        for i, j in enumerate(levels):
            place[features.index(j), i] = 1.0
        self.register_buffer("features", torch.tensor(features, dtype=torch.long),
                             persistent=False)
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        self.register_buffer("place", place, persistent=False)

    @property
    def width(self) -> int:
        """Past raw steps of the level features a stream keeps: W - 1 (0: none)."""
        return max(self.window - 1, 0)

    def _departures(self, x: torch.Tensor, padded: torch.Tensor | None) -> torch.Tensor:
        """x [B, n, F], level features with their W - 1 extra steps [B, L, n + W - 1]
        (None without a window) -> [B, Fc, n]."""
        xc = x[..., self.features].transpose(1, 2)  # [B, Fc, n]
        if padded is None:
            return xc
        means = F.avg_pool1d(padded, self.window, stride=1)  # [B, L, n]
        return xc - torch.einsum("cl,bln->bcn", self.place.to(x.dtype), means)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, Fc, T]."""
        if not self.window:
            return self._departures(x, None)
        left = self.width if self.causal else self.width // 2
        levels = x[..., self.levels].transpose(1, 2)  # [B, L, T]
        return self._departures(x, F.pad(levels, (left, self.width - left)))

    def advance(self, x: torch.Tensor, past: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A causal stream: n new steps x [B, n, F] after the level features' last W - 1
        raw values ``past`` [B, L, W - 1] -> (inputs [B, Fc, n], the values after x)."""
        if not self.window:
            return self._departures(x, None), past
        padded = torch.cat([past, x[..., self.levels].transpose(1, 2)], dim=-1)
        return self._departures(x, padded), padded[..., padded.shape[-1] - self.width:]
