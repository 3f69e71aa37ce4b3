"""Metrics as numpy functions ``f(y_true, y_pred)`` over (origins, horizon) arrays.

Targets that were missing are NaN in ``y_true`` and are left out, never scored.
"""

from __future__ import annotations

import numpy as np


def _errors(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """y_pred - y_true where the target was observed, NaN where it was missing.

    A prediction that is not finite where the target was observed is an error: a
    NaN-aware mean would silently drop it and score the model on fewer targets.
    """
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true shape {y_true.shape} != y_pred shape {y_pred.shape}")
    observed = np.isfinite(y_true)
    bad = np.argwhere(observed & ~np.isfinite(y_pred))
    if bad.size:
        at = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"prediction {y_pred[at]} at index {at} where the target was observed "
            f"({y_true[at]}); {len(bad)} such predictions: a forecast must be finite wherever "
            "there is a target to score"
        )
    return np.where(observed, y_pred - y_true, np.nan)


def n_scored(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    """How many targets a score counts: observed targets with a (finite) prediction."""
    return int(np.isfinite(_errors(y_true, y_pred)).sum())


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error over all observed targets."""
    return float(np.nanmean(np.abs(_errors(y_true, y_pred))))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error over all observed targets."""
    return float(np.sqrt(np.nanmean(_errors(y_true, y_pred) ** 2)))


def mae_by_horizon(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(N, H) -> (H,): MAE of each horizon step."""
    return np.nanmean(np.abs(_errors(y_true, y_pred)), axis=0)


def rmse_by_horizon(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(N, H) -> (H,): RMSE of each horizon step."""
    return np.sqrt(np.nanmean(_errors(y_true, y_pred) ** 2, axis=0))


def skill(mae_model: float, mae_reference: float) -> float:
    """1 - MAE / MAE_reference: above 0 beats the reference."""
    return 1.0 - mae_model / mae_reference


def score(y_true: np.ndarray, y_pred: np.ndarray, reference: np.ndarray | None = None) -> dict:
    """MAE, RMSE (mean and per horizon step) and skill against ``reference`` predictions."""
    out = {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mae_by_horizon": mae_by_horizon(y_true, y_pred).tolist(),
        "rmse_by_horizon": rmse_by_horizon(y_true, y_pred).tolist(),
        "n_targets": n_scored(y_true, y_pred),
    }
    if reference is not None:
        out["skill"] = skill(out["mae"], mae(y_true, reference))
    return out
