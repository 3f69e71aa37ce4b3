"""Baselines in scikit-learn style over the same origins as the nets (no torch).

Each ``predict(arrays, origins)`` returns, per series, a (T, H) array of scaled
forecasts filled at the origins (NaN elsewhere), like the nets' outputs, so the
same code scores all of them. Inputs are the carried-forward values, as the nets
see them: nothing after the origin is read.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from forecast.baselines.naive import Persistence, SeasonalNaive
from forecast.baselines.tabular import GradientBoosting, LagFeatures, RidgeLags
from forecast.features import SeriesArrays


class Baseline(Protocol):
    """What every baseline offers: fit on training origins, predict at any origins."""

    @property
    def history(self) -> int: ...

    def fit(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> Baseline: ...

    def predict(self, arrays: list[SeriesArrays],
                origins: list[np.ndarray]) -> list[np.ndarray]: ...


__all__ = ["Baseline", "GradientBoosting", "LagFeatures", "Persistence", "RidgeLags",
           "SeasonalNaive"]
