"""Field baselines on the same origins as the nets (numpy only), in the field's units.

Each function returns (N, H, Y, X) forecasts for the origins; nothing after an
origin is read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.features import calendar_features


def persistence(frames: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """y[t + h] = y[t] at every grid point."""
    return np.repeat(frames[origins][:, None], horizon, axis=1).astype(np.float64)


def seasonal_naive(frames: np.ndarray, origins: np.ndarray, horizon: int,
                   season: int = 24) -> np.ndarray:
    """y[t + h] = y[t + h - season] (the same hour a day earlier for hourly maps)."""
    if horizon > season:
        raise ValueError(f"seasonal naive: horizon={horizon} exceeds season={season}")
    steps = np.arange(1, horizon + 1) - season
    return frames[origins[:, None] + steps[None, :]].astype(np.float64)


class GridLinear:
    """Per-grid-point ridge regression of y[t + 1 .. t + H] on ``lags`` past values and the
    hour of day (sin, cos): one direct multi-output linear model per grid point."""

    def __init__(self, horizon: int, lags: int = 24, alpha: float = 1.0) -> None:
        self.horizon, self.lags, self.alpha = horizon, lags, alpha

    def _design(self, frames: np.ndarray, times: np.ndarray, origins: np.ndarray) -> np.ndarray:
        if origins.min() < self.lags - 1:
            raise ValueError(f"grid linear: origin {int(origins.min())} has fewer than "
                             f"{self.lags - 1} earlier frames")
        lagged = frames[origins[:, None] - np.arange(self.lags)[None, :]]  # [N, lags, Y, X]
        n, _, ny, nx = lagged.shape
        cal = calendar_features(pd.DatetimeIndex(times[origins], tz="UTC"), ["day"])  # [N, 2]
        extra = np.concatenate([cal, np.ones((n, 1))], axis=1)
        extra = np.broadcast_to(extra[:, :, None, None], (n, extra.shape[1], ny, nx))
        design = np.concatenate([lagged, extra], axis=1)  # [N, F, Y, X]
        return np.moveaxis(design.reshape(n, -1, ny * nx), -1, 0)  # [P, N, F]

    def fit(self, frames: np.ndarray, times: np.ndarray, origins: np.ndarray) -> GridLinear:
        """Fit on training ``origins`` (their targets must lie in training frames)."""
        design = self._design(frames, times, origins)  # [P, N, F]
        steps = np.arange(1, self.horizon + 1)
        y = frames[origins[:, None] + steps[None, :]]  # [N, H, Y, X]
        y = np.moveaxis(y.reshape(len(origins), self.horizon, -1), -1, 0)  # [P, N, H]
        self.center_ = frames[origins].reshape(len(origins), -1).mean(axis=0)[:, None, None]
        d = design.copy()
        d[:, :, : self.lags] -= self.center_  # lags relative to each point's mean
        gram = d.transpose(0, 2, 1) @ d + self.alpha * np.eye(d.shape[-1])
        self.coef_ = np.linalg.solve(gram, d.transpose(0, 2, 1) @ (y - self.center_))  # [P,F,H]
        self.shape_ = frames.shape[1:]
        return self

    def predict(self, frames: np.ndarray, times: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(N,) origins -> (N, H, Y, X) forecasts."""
        d = self._design(frames, times, origins).copy()
        d[:, :, : self.lags] -= self.center_
        pred = d @ self.coef_ + self.center_  # [P, N, H]
        return np.moveaxis(pred, 0, -1).reshape(len(origins), self.horizon, *self.shape_)

