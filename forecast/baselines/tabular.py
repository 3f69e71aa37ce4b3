"""Fair tabular baselines: direct multi-horizon regressors on everything known at t.

A fair baseline reads every input known at the origin, whatever the net uses: lags
of the target and of every other input column (covariates and their missing
indicators), calendar encodings computed from the timestamps (time of day, week and
year), and which series the origin belongs to. Each regressor predicts the change
y[t + h] - y[t] from that row, one output per horizon step (direct, no recursion).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from forecast.baselines.naive import check_history, empty_outputs, has_history
from forecast.features import CYCLES, SeriesArrays, calendar_features


def offsets(lags: int | Sequence[int]) -> np.ndarray:
    """Lags as steps back from the origin: ``n`` means 0 .. n - 1, a list is taken as is."""
    out = np.arange(lags) if isinstance(lags, int) else np.asarray(sorted(set(lags)), int)
    if out.size and out.min() < 0:
        raise ValueError(f"lags {list(out)} must be >= 0 (steps back from the origin)")
    return out


class LagFeatures:
    """The design row of origin t: target lags, lags of the other input columns,
    calendar of t (sin and cos per cycle) and a one-hot series indicator."""

    def __init__(self, lags: int | Sequence[int], covariate_lags: int | Sequence[int],
                 calendar: Sequence[str]) -> None:
        self.lags, self.covariate_lags = offsets(lags), offsets(covariate_lags)
        if self.lags.size == 0:
            raise ValueError("lags: at least one target lag is needed")
        unknown = sorted(set(calendar) - set(CYCLES))
        if unknown:
            raise ValueError(f"calendar cycles {unknown} unknown; choose from {list(CYCLES)}")
        self.calendar = list(calendar)
        self.series: list[str] = []

    @property
    def history(self) -> int:
        """Steps before an origin that a row reads."""
        return int(max(self.lags.max(), self.covariate_lags.max(initial=0)))

    def transform(self, a: SeriesArrays, o: np.ndarray) -> np.ndarray:
        """(N,) origins of one series -> (N, n_features) design rows."""
        parts = [a.x[o[:, None] - self.lags[None, :], 0]]  # [N, n_lags], newest first
        if self.covariate_lags.size:
            cov = a.x[o[:, None] - self.covariate_lags[None, :], 1:]  # [N, n_cov_lags, C - 1]
            parts.append(cov.reshape(len(o), cov.shape[1] * cov.shape[2]))
        parts.append(calendar_features(pd.DatetimeIndex(a.times[o]), self.calendar))
        if len(self.series) > 1:
            onehot = np.zeros((len(o), len(self.series)))
            if a.name in self.series:
                onehot[:, self.series.index(a.name)] = 1.0
            parts.append(onehot)
        return np.concatenate(parts, axis=1)


class DirectRegressor:
    """Shared fit/predict of the direct baselines; subclasses fit (N, F) -> (N, H)."""

    name = "direct"

    def __init__(self, horizon: int, lags: int | Sequence[int],
                 covariate_lags: int | Sequence[int], calendar: Sequence[str]) -> None:
        self.horizon, self.lags, self.covariate_lags = horizon, lags, covariate_lags
        self.calendar = calendar

    def _features(self) -> LagFeatures:
        lags = self.lags if isinstance(self.lags, int) else list(self.lags)
        cov = self.covariate_lags if isinstance(self.covariate_lags, int) \
            else list(self.covariate_lags)
        return LagFeatures(lags, cov, list(self.calendar))

    @property
    def history(self) -> int:
        """Steps before an origin that ``predict`` reads."""
        return self._features().history

    def _fit_rows(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_rows(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> DirectRegressor:
        """Fit on ``origins`` (training origins only); those without enough history in
        their segment are skipped. y holds NaN where a target was missing."""
        self.features_ = self._features()
        self.features_.series = [a.name for a in arrays]
        history = self.features_.history
        steps = np.arange(1, self.horizon + 1)
        xs, ys = [], []
        for a, o in zip(arrays, origins, strict=True):
            o = o[has_history(a, o, history)]
            xs.append(self.features_.transform(a, o))
            ys.append(a.y[o[:, None] + steps[None, :]] - a.x[o, :1])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if not np.isfinite(y).any(axis=0).all():
            raise ValueError(
                f"{type(self).__name__}: no training origins with {history} steps of history "
                f"(lags={self.lags}) and observed targets; lower lags or widen the training split"
            )
        self._fit_rows(x, y)
        return self

    def predict(self, arrays: list[SeriesArrays], origins: list[np.ndarray]) -> list[np.ndarray]:
        out = empty_outputs(arrays, self.horizon)
        for a, o, p in zip(arrays, origins, out, strict=True):
            if len(o):
                check_history(a, o, self.features_.history, self.name)
                p[o] = self._predict_rows(self.features_.transform(a, o)) + a.x[o, :1]
        return out


class RidgeLags(DirectRegressor):
    """Direct multi-output Ridge on the fair design row (origins with a missing target
    are left out of the fit)."""

    name = "ridge"

    def __init__(self, horizon: int = 24, lags: int | Sequence[int] = 168,
                 covariate_lags: int | Sequence[int] = 24,
                 calendar: Sequence[str] = ("day", "week", "year"), alpha: float = 1.0) -> None:
        super().__init__(horizon, lags, covariate_lags, calendar)
        self.alpha = alpha

    def _fit_rows(self, x: np.ndarray, y: np.ndarray) -> None:
        keep = np.isfinite(y).all(axis=1)
        self.model_ = Ridge(alpha=self.alpha).fit(x[keep], y[keep])

    def _predict_rows(self, x: np.ndarray) -> np.ndarray:
        return self.model_.predict(x)


def fit_steps(horizon: int, max_models: int) -> np.ndarray:
    """Horizon steps that get their own model: all of them, or ``max_models`` spaced
    geometrically from 1 to H (short steps change fastest)."""
    if horizon <= max_models:
        return np.arange(1, horizon + 1)
    return np.unique(np.geomspace(1, horizon, max_models).round().astype(int))


class GradientBoosting(DirectRegressor):
    """Direct multi-horizon ``HistGradientBoostingRegressor``: one model per fitted
    horizon step (at most ``max_models``; steps between them are interpolated
    linearly), each on the origins whose target at that step was observed."""

    name = "gradient_boosting"

    def __init__(self, horizon: int = 24,
                 lags: int | Sequence[int] = (0, 1, 2, 3, 5, 11, 23, 47, 71, 167),
                 covariate_lags: int | Sequence[int] = (0, 1),
                 calendar: Sequence[str] = ("day", "week", "year"), max_models: int = 24,
                 max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 200, l2_regularization: float = 0.0,
                 random_state: int = 0) -> None:
        super().__init__(horizon, lags, covariate_lags, calendar)
        self.max_models, self.max_iter, self.learning_rate = max_models, max_iter, learning_rate
        self.max_leaf_nodes, self.min_samples_leaf = max_leaf_nodes, min_samples_leaf
        self.l2_regularization, self.random_state = l2_regularization, random_state

    def _fit_rows(self, x: np.ndarray, y: np.ndarray) -> None:
        self.steps_ = fit_steps(self.horizon, self.max_models)
        self.models_ = []
        for h in self.steps_:
            keep = np.isfinite(y[:, h - 1])
            self.models_.append(HistGradientBoostingRegressor(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization, early_stopping=False,
                random_state=self.random_state,
            ).fit(x[keep], y[keep, h - 1]))
        # [H, K] weights that interpolate the K fitted steps linearly to all H steps
        eye = np.eye(len(self.steps_))
        all_steps = np.arange(1, self.horizon + 1)
        self.interp_ = np.stack([np.interp(all_steps, self.steps_, eye[k])
                                 for k in range(len(self.steps_))], axis=1)

    def _predict_rows(self, x: np.ndarray) -> np.ndarray:
        at_steps = np.stack([m.predict(x) for m in self.models_], axis=1)  # [N, K]
        return at_steps @ self.interp_.T  # [N, H]
