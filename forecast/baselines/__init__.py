"""Baselines in scikit-learn style over the same origins as the nets (no torch).

Each ``predict(arrays, origins)`` returns, per series, a (T, H) array of scaled
forecasts filled at the origins (NaN elsewhere), like the nets' outputs, so the
same code scores all of them. Inputs are the carried-forward values, as the nets
see them: nothing after the origin is read.
"""

from forecast.baselines.naive import Persistence, SeasonalNaive
from forecast.baselines.tabular import GradientBoosting, LagFeatures, RidgeLags

__all__ = ["GradientBoosting", "LagFeatures", "Persistence", "RidgeLags", "SeasonalNaive"]
