"""Evaluation: forecasting protocols, scoring, run discovery, model selection.

The protocols (teacher-forced and honest forecasts on the same origins) live in
:mod:`forecast.evaluation.protocols` and are re-exported here.
"""

from forecast.evaluation.protocols import (
    Forecasts,
    collect,
    dense_windows,
    forecast_origins,
    honest_windows,
    mean_forecasts,
    predict_windows,
    station_scores,
)

__all__ = ["Forecasts", "collect", "dense_windows", "forecast_origins", "honest_windows",
           "mean_forecasts", "predict_windows", "station_scores"]
