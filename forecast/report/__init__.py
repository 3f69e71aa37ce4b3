"""Report pieces: markdown tables and figures."""

from forecast.report.figures import (
    Curve,
    FieldPanel,
    LeakBar,
    colour,
    forecast_week_figure,
    leak_bars_figure,
    mae_by_horizon_figure,
    png_bytes,
    receptive_field_figure,
)
from forecast.report.tables import fmt, markdown_table

__all__ = ["Curve", "FieldPanel", "LeakBar", "colour", "fmt", "forecast_week_figure",
           "leak_bars_figure", "mae_by_horizon_figure", "markdown_table", "png_bytes",
           "receptive_field_figure"]
