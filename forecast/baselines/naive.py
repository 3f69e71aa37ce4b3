"""Naive baselines: persistence and seasonal naive (and the origin checks all share)."""

from __future__ import annotations

import numpy as np

from forecast.features import SeriesArrays


def empty_outputs(arrays: list[SeriesArrays], horizon: int) -> list[np.ndarray]:
    return [np.full((len(a), horizon), np.nan) for a in arrays]


def has_history(a: SeriesArrays, o: np.ndarray, history: int) -> np.ndarray:
    """(N,) True where origin t has ``history`` earlier steps in its own segment."""
    ok = o >= history
    ok[ok] = a.segment[o[ok] - history] == a.segment[o[ok]]
    return ok


def check_history(a: SeriesArrays, o: np.ndarray, history: int, name: str) -> None:
    bad = o[~has_history(a, o, history)]
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
        out = empty_outputs(arrays, self.horizon)
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
        out = empty_outputs(arrays, self.horizon)
        h = np.arange(1, self.horizon + 1)
        back = h - self.season * np.ceil(h / self.season).astype(int)  # <= 0: at or before t
        for a, o, p in zip(arrays, origins, out, strict=True):
            if len(o):
                check_history(a, o, int(-back.min()), self.name)
                p[o] = a.x[o[:, None] + back[None, :], 0]
        return out
