"""Figures of quantile forecasts: a fan chart over one week and a reliability diagram
(Agg figures, rendered by :func:`forecast.report.figures.png_bytes`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from forecast.report.figures import COLOURS, colour, time_axes


@dataclass
class Band:
    """One central interval over time: (T,) lower and upper ends and its nominal level."""

    lower: np.ndarray
    upper: np.ndarray
    nominal: float


def fan_chart(times: np.ndarray, actual: np.ndarray, median: np.ndarray, bands: Sequence[Band],
              title: str, units: str, name: str = "causal") -> Figure:
    """Median and central intervals (widest palest) against the actual values: (T,) each."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax = fig.add_subplot()
    c = colour(name)
    for k, b in enumerate(sorted(bands, key=lambda b: -b.nominal)):
        ax.fill_between(times, b.lower, b.upper, color=c, alpha=0.18 + 0.17 * k, lw=0,
                        label=f"{100 * b.nominal:g} % interval")
    ax.plot(times, median, color=c, lw=1.4, label="median")
    ax.plot(times, actual, color=COLOURS["actual"], lw=1.6, label="actual")
    time_axes(ax, title, units)
    return fig


@dataclass
class Reliability:
    """One forecaster's calibration: observed share at or below each quantile, and each
    central interval's coverage per horizon step."""

    name: str  # model or baseline name, picks the colour
    label: str
    levels: np.ndarray  # (Q,) nominal quantile levels
    below: np.ndarray  # (Q,) observed share of targets at or below each quantile
    coverage: dict[float, np.ndarray]  # nominal coverage -> (H,) observed per step
    dashed: bool = False
    marker: str = "o"


def reliability_figure(rows: Sequence[Reliability], title: str) -> Figure:
    """Left: nominal quantile level against the observed share below it (the diagonal is
    perfect calibration). Right: observed coverage of each central interval per horizon
    step against its nominal level (dotted lines)."""
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    left.plot([0, 1], [0, 1], color="black", lw=0.8, ls=":", label="perfectly calibrated")
    for r in rows:
        ls = "--" if r.dashed else "-"
        left.plot(r.levels, r.below, color=colour(r.name), ls=ls, marker=r.marker, ms=5,
                  lw=1.4, label=r.label)
        for nominal, cov in r.coverage.items():
            right.plot(np.arange(1, len(cov) + 1), 100 * cov, color=colour(r.name), ls=ls,
                       marker=r.marker, ms=3, lw=1.2,
                       alpha=1.0 if nominal == max(r.coverage) else 0.55)
    for nominal in sorted({n for r in rows for n in r.coverage}):
        right.axhline(100 * nominal, color="black", ls=":", lw=1)
        right.annotate(f"nominal {100 * nominal:g} %", (1, 100 * nominal), xytext=(2, 3),
                       textcoords="offset points", fontsize=8)
    left.set_xlabel("nominal quantile level")
    left.set_ylabel("observed share of targets at or below it")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_aspect("equal")
    left.grid(alpha=0.3)
    left.legend(loc="upper left", fontsize=8, frameon=False)
    right.set_xlabel("horizon step h (hours ahead)")
    right.set_ylabel("observed coverage (%) of the central intervals")
    right.set_title("coverage per step (solid dark: the widest interval)", fontsize=10)
    right.grid(alpha=0.3)
    fig.suptitle(title)
    return fig
