"""Closed-form ridge fit of the net's linear path on training origins (numpy).

The linear path (``forecast.layers.LinearPath``) is a lag kernel over the target plus a
shorter lag kernel over every feature, forecasting the change from the last observed target.
Fitted by ridge regression before training starts, it gives the net a strong linear
forecaster to start from; the convolutions then learn what it misses.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from forecast.features import SeriesArrays

log = logging.getLogger(__name__)

# how each horizon step's absolute error counts in a point net's training loss
HORIZON_WEIGHTS = ("uniform", "inverse_error")


def _rows(
    a: SeriesArrays, o: np.ndarray, offsets: np.ndarray, feature_offsets: np.ndarray,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Design (N, P + Q * F) and change targets (N, H) at origins ``o`` with every
    input and target inside the series and observed."""
    steps = np.arange(1, horizon + 1)
    lo = min(offsets.min(), feature_offsets.min())
    hi = max(offsets.max(), feature_offsets.max(), 0)
    o = o[(o + lo >= 0) & (o + max(hi, horizon) < len(a))]
    seg = a.segment
    o = o[(seg[o + lo] == seg[o]) & (seg[o + hi] == seg[o])]
    y = a.y[o[:, None] + steps[None, :]] - a.x[o, :1]
    keep = ~np.isnan(y).any(axis=1)
    o, y = o[keep], y[keep]
    feats = a.x[o[:, None] + feature_offsets[None, :]]  # [N, Q, F]
    x = np.concatenate([a.x[o[:, None] + offsets[None, :], 0],
                        feats.transpose(0, 2, 1).reshape(len(o), -1 if len(o) else 0)], axis=1)
    return x.astype(np.float64), y.astype(np.float64)


def ridge_solve(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (D, H) and intercept (H,) of ridge regression with an unpenalised intercept."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc = x - mx
    gram = xc.T @ xc + alpha * np.eye(x.shape[1])
    w = np.linalg.solve(gram, xc.T @ (y - my))
    return w, my - mx @ w


@torch.no_grad()
def fit_linear_path(
    path: torch.nn.Module, arrays: list[SeriesArrays], origins: list[np.ndarray],
    alpha: float = 1.0,
) -> int:
    """Set ``path``'s weights to the ridge fit on ``origins`` (training only); returns
    the number of origins used.

    Each lag weight is fitted on the input its kernel tap reads (tap k reads step
    i + k - left padding), so a centred (non-causal) path is fitted with the same
    inputs it will see, future ones included.
    """
    lag, point = path.lag, path.point
    offsets = np.arange(lag.conv.kernel_size[0]) - lag.padding[0]  # [P] step of each tap
    feature_offsets = np.arange(point.conv.kernel_size[0]) - point.padding[0]  # [Q]
    horizon = lag.conv.out_channels
    parts = [_rows(a, o, offsets, feature_offsets, horizon)
             for a, o in zip(arrays, origins, strict=True)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if len(x) == 0:
        raise ValueError("linear path: no training origin with all its inputs and targets "
                         "observed; lower model.linear_lags or widen the training split")
    w, b = ridge_solve(x, y, alpha)
    p = len(offsets)
    dtype = lag.conv.weight.dtype
    lag.conv.weight.copy_(torch.as_tensor(w[:p].T[:, None, :], dtype=dtype))  # [H, 1, P]
    n_f = point.conv.in_channels
    wf = w[p:].T.reshape(horizon, n_f, point.conv.kernel_size[0])  # [H, F, Q]
    point.conv.weight.copy_(torch.as_tensor(wf, dtype=dtype))
    point.conv.bias.copy_(torch.as_tensor(b, dtype=dtype))
    return len(x)


@torch.no_grad()
def path_residuals(linear: torch.nn.Module, arrays: list[SeriesArrays],
                   origins: list[np.ndarray], horizon: int) -> np.ndarray:
    """The linear path's residuals on ``origins``, scaled: [N, H] (NaN where the target is
    missing)."""
    steps = np.arange(1, horizon + 1)
    weight = linear.point.conv.weight
    res = []
    for a, o in zip(arrays, origins, strict=True):
        o = o[o + steps[-1] < len(a)]
        x = torch.from_numpy(a.x).to(weight).T[None]  # [1, F, T]
        change = linear(x)[0].T.cpu().numpy()[o]  # [N, H]
        res.append(a.y[o[:, None] + steps] - a.x[o, :1] - change)
    return np.concatenate(res)


def horizon_weighting(kind: str, quantiles: list[float] | None, linear_lags: int) -> str:
    """The loss weighting a net gets: ``kind``, or ``uniform`` where there is no ridge fit
    to weigh by (no linear path) or no point loss (a quantile net); logged, not refused."""
    if kind not in HORIZON_WEIGHTS:
        raise ValueError(f"model.horizon_weights={kind!r}: expected one of "
                         f"{list(HORIZON_WEIGHTS)}")
    if kind != "uniform" and (quantiles is not None or not linear_lags):
        log.info("model.horizon_weights=%s applies to point nets with a linear path "
                 "(model.linear_lags > 0); this one trains on the uniform loss", kind)
        return "uniform"
    return kind


def inverse_error_weights(residuals: np.ndarray) -> np.ndarray:
    """[N, H] residuals -> [H] weights, 1 / (mean absolute residual at h), averaging 1: each
    step counts by its error relative to what the linear path leaves there (short steps
    weigh more). The standard twin's centred path reads the targets it fits, so its
    weights come out near 1."""
    w = 1.0 / np.maximum(np.nanmean(np.abs(residuals), axis=0), 1e-6)
    return w / w.mean()
