"""Metrics: missing targets are not scored, a missing prediction is an error, counts stated."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.metrics import mae, n_scored, score


def test_missing_targets_are_left_out_and_counted():
    y = np.array([[1.0, np.nan], [3.0, 4.0]])
    p = np.array([[2.0, 100.0], [3.0, 6.0]])  # the 100 sits on a missing target
    assert mae(y, p) == pytest.approx((1 + 0 + 2) / 3)
    s = score(y, p, reference=np.zeros_like(p))
    assert s["n_targets"] == 3 == n_scored(y, p)
    assert s["mae_by_horizon"] == pytest.approx([0.5, 2.0])


def test_a_nan_prediction_where_the_target_was_observed_is_an_error():
    y = np.array([[1.0, 2.0], [3.0, np.nan]])
    p = np.array([[1.0, np.nan], [3.0, np.nan]])  # (1, 1) is fine: nothing to score there
    with pytest.raises(ValueError, match=r"prediction nan at index \(0, 1\) where the target "
                                         r"was observed \(2.0\); 1 such"):
        mae(y, p)
    with pytest.raises(ValueError, match="must be finite"):
        score(y, np.where(np.isnan(p), np.inf, p))
