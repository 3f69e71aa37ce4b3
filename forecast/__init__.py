"""causal-forecast: dilated causal convolutions for temperature forecasting."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["load_checkpoint"]

if TYPE_CHECKING:
    from forecast.fields.module import FieldModule
    from forecast.module import ForecastModule


def load_checkpoint(path: str, map_location: str = "cpu") -> ForecastModule | FieldModule:
    """The trained LightningModule in eval mode (see :func:`forecast.module.load_checkpoint`;
    a field run's checkpoint gives :class:`forecast.fields.module.FieldModule`)."""
    from forecast.fields.module import is_field_checkpoint, load_field_checkpoint
    from forecast.module import load_checkpoint as _load  # torch only when needed
    from forecast.module import read_checkpoint

    ckpt = read_checkpoint(path, map_location)  # read once, then built by its kind
    if is_field_checkpoint(ckpt["hyper_parameters"]):
        return load_field_checkpoint(path, map_location, ckpt)
    return _load(path, map_location, ckpt)
