"""causal-forecast: dilated causal convolutions for temperature forecasting."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["load_checkpoint"]

if TYPE_CHECKING:
    from forecast.module import ForecastModule


def load_checkpoint(path: str, map_location: str = "cpu") -> ForecastModule:
    """The trained LightningModule in eval mode (see :func:`forecast.module.load_checkpoint`)."""
    from forecast.module import load_checkpoint as _load  # torch only when needed

    return _load(path, map_location)
