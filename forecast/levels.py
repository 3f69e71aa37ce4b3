"""The rule for quantile levels, without torch: the settings check reads it before any
heavy import, the model when it is built (re-exported by :mod:`forecast.quantiles`)."""

from __future__ import annotations

from collections.abc import Sequence


def check_levels(levels: Sequence[float]) -> list[float]:
    """Quantile levels as floats: strictly increasing, inside (0, 1), holding 0.5."""
    out = [float(q) for q in levels]
    if not out or any(not 0 < q < 1 for q in out) or any(
            b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"model.quantiles={out}: expected increasing levels inside (0, 1), "
                         "e.g. [0.05,0.1,0.5,0.9,0.95]")
    if 0.5 not in out:
        raise ValueError(f"model.quantiles={out}: the median 0.5 must be one of them (it is "
                         "the point forecast)")
    return out
