"""Baselines in scikit-learn style over the same origins as the nets (no torch).

Each ``predict(arrays, origins)`` returns, per series, a (T, H) array of scaled
forecasts filled at the origins (NaN elsewhere), like the nets' outputs, so the
same code scores all of them. Inputs are the carried-forward values, as the nets
see them: nothing after the origin is read.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge

from forecast.features import SeriesArrays


def _empty(arrays: list[SeriesArrays], horizon: int) -> list[np.ndarray]:
    return [np.full((len(a), horizon), np.nan) for a in arrays]


def _has_history(a: SeriesArrays, o: np.ndarray, history: int) -> np.ndarray:
    """(N,) True where origin t has ``history`` earlier steps in its own segment."""
    ok = o >= history
    ok[ok] = a.segment[o[ok] - history] == a.segment[o[ok]]
    return ok


def _check_history(a: SeriesArrays, o: np.ndarray, history: int, name: str) -> None:
    bad = o[~_has_history(a, o, history)]
    if bad.size:
        raise ValueError(
            f"{name}: series {a.name!r} origin index {int(bad[0])} has fewer than {history} "
            "earlier steps in its segment; compute the origins with at least that history"
        )


class Persistence:
    """y[t + h] = y[t], the last observed value carried forward."""

    name = "persistence"

    def __init__(self, horizon: int = 24) -> None:
        self.horizon = horizon

    @property
    def history(self) -> int:
        """Steps before an origin that ``predict`` reads."""
        return 0

    def fit(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> Persistence:
        return self

    def predict(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> list[np.ndarray]:
        out = _empty(arrays, self.horizon)
        for a, o, p in zip(arrays, origins, out, strict=True):
            p[o] = a.x[o, :1]
        return out


class SeasonalNaive:
    """y[t + h] = y[t + h - k * season], the latest value one or more seasons back."""

    name = "seasonal_naive"

    def __init__(self, horizon: int = 24, season: int = 24) -> None:
        self.horizon, self.season = horizon, season

    @property
    def history(self) -> int:
        """Steps before an origin that ``predict`` reads."""
        return self.season - 1

    def fit(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> SeasonalNaive:
        return self

    def predict(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> list[np.ndarray]:
        out = _empty(arrays, self.horizon)
        h = np.arange(1, self.horizon + 1)
        back = h - self.season * np.ceil(h / self.season).astype(int)  # <= 0: at or before t
        for a, o, p in zip(arrays, origins, out, strict=True):
            if len(o):
                _check_history(a, o, int(-back.min()), self.name)
                p[o] = a.x[o[:, None] + back[None, :], 0]
        return out


class RidgeLags:
    """Direct multi-output Ridge on ``lags`` past targets plus every other feature at t.

    Predicts the change from y[t]; fitted on the origins given to ``fit`` (training
    origins only), skipping those with fewer than ``lags`` steps in their segment or
    a missing target.
    """

    name = "ridge"

    def __init__(self, horizon: int = 24, lags: int = 168, alpha: float = 1.0) -> None:
        self.horizon, self.lags, self.alpha = horizon, lags, alpha

    @property
    def history(self) -> int:
        """Steps before an origin that ``predict`` reads."""
        return self.lags - 1

    def _design(self, a: SeriesArrays, o: np.ndarray) -> np.ndarray:
        idx = o[:, None] - np.arange(self.lags)[None, :]  # [N, lags], newest first
        return np.concatenate([a.x[idx, 0], a.x[o, 1:]], axis=1)

    def fit(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> RidgeLags:
        xs, ys = [], []
        steps = np.arange(1, self.horizon + 1)
        for a, o in zip(arrays, origins, strict=True):
            o = o[_has_history(a, o, self.lags - 1)]
            y = a.y[o[:, None] + steps[None, :]] - a.x[o, :1]
            keep = ~np.isnan(y).any(axis=1)
            xs.append(self._design(a, o[keep]))
            ys.append(y[keep])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(x) == 0:
            raise ValueError(
                f"RidgeLags: no training origins with lags={self.lags} steps of history and "
                "all targets observed; lower lags or widen the training split"
            )
        self.model_ = Ridge(alpha=self.alpha).fit(x, y)
        return self

    def predict(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> list[np.ndarray]:
        out = _empty(arrays, self.horizon)
        for a, o, p in zip(arrays, origins, out, strict=True):
            if len(o):
                _check_history(a, o, self.lags - 1, self.name)
                p[o] = self.model_.predict(self._design(a, o)) + a.x[o, :1]
        return out
