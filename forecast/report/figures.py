"""Matplotlib figures for the reports (Agg, no pyplot state).

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, so no
global backend is touched; :func:`png_bytes` renders one for an atomic write.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# one colour per curve role, fixed so the figures read alike
COLOURS = {
    "actual": "black", "causal": "tab:blue", "standard": "tab:red",
    "persistence": "tab:gray", "seasonal_naive": "tab:olive", "ridge": "tab:green",
}
_SPARE = ["tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:cyan"]


def colour(name: str) -> str:
    """A stable colour for a model or baseline name."""
    if name in COLOURS:
        return COLOURS[name]
    return _SPARE[sum(map(ord, name)) % len(_SPARE)]


def png_bytes(fig: Figure, dpi: int = 120) -> bytes:
    """Render ``fig`` to PNG bytes."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


@dataclass
class Curve:
    """One line of a figure: values, an optional spread band, a label and a style."""

    name: str  # model or baseline name, picks the colour
    label: str
    values: np.ndarray
    spread: np.ndarray | None = None  # same shape as values: +- band (std across seeds)
    dashed: bool = False


def forecast_week_figure(
    times: np.ndarray, actual: np.ndarray, curves: Sequence[Curve], station: str, lead: int,
    units: str,
) -> Figure:
    """Actual and ``lead``-step-ahead forecasts over one week: (T,) times, (T,) values each."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(times, actual, color=COLOURS["actual"], lw=2.2, label="actual")
    for c in curves:
        ax.plot(times, c.values, color=colour(c.name), lw=1.4, ls="--" if c.dashed else "-",
                label=c.label)
    time_axes(ax, f"{station}: forecasts issued {lead} h ahead over one test week", units)
    return fig


def time_axes(ax: Axes, title: str, units: str) -> None:
    """Title, labels, grid and an outside legend of a temperature-over-time plot."""
    ax.set_title(title)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"temperature ({units})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.tick_params(axis="x", labelrotation=25)


def mae_by_horizon_figure(curves: Sequence[Curve], title: str, units: str) -> Figure:
    """MAE per horizon step, one line per model / protocol / baseline: (H,) values each."""
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.add_subplot()
    for c in curves:
        steps = np.arange(1, len(c.values) + 1)
        ax.plot(steps, c.values, color=colour(c.name), ls="--" if c.dashed else "-",
                marker="o" if c.dashed else None, ms=3, lw=1.8, label=c.label)
        if c.spread is not None:
            ax.fill_between(steps, c.values - c.spread, c.values + c.spread,
                            color=colour(c.name), alpha=0.15, lw=0)
    ax.set_title(title)
    ax.set_xlabel("horizon step h (hours ahead)")
    ax.set_ylabel(f"MAE ({units})")
    ax.set_xlim(0.5, max(len(c.values) for c in curves) + 0.5)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


@dataclass
class LeakBar:
    """Teacher-forced and honest mean MAE of one model (with seed spreads, if any)."""

    name: str
    teacher_forced: float
    honest: float
    teacher_forced_spread: float | None = None
    honest_spread: float | None = None


def leak_bars_figure(
    bars: Sequence[LeakBar], references: dict[str, float], units: str,
) -> Figure:
    """Teacher-forced vs honest MAE side by side per model; baselines as reference lines."""
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(bars))
    width = 0.38
    for offset, key, hatch, label in ((-width / 2, "teacher_forced", "//", "teacher-forced"),
                                      (width / 2, "honest", None, "honest (rolling origin)")):
        vals = [getattr(b, key) for b in bars]
        errs = [getattr(b, f"{key}_spread") or 0.0 for b in bars]
        rects = ax.bar(x + offset, vals, width, yerr=errs if any(errs) else None, capsize=4,
                       color=[colour(b.name) for b in bars],
                       alpha=0.45 if hatch else 0.9, hatch=hatch, edgecolor="black", lw=0.6,
                       label=label)
        ax.bar_label(rects, labels=[f"{v:.2f}" for v in vals], padding=3, fontsize=9)
    for b, xi in zip(bars, x, strict=True):
        if b.teacher_forced > 0:
            ratio = b.honest / b.teacher_forced
            top = max(b.honest, b.teacher_forced) + (b.honest_spread or 0.0)
            ax.annotate(f"honest / teacher-forced = {ratio:.2f}x", (xi, top), ha="center",
                        xytext=(0, 20), textcoords="offset points", fontsize=10,
                        fontweight="bold", bbox={"facecolor": "white", "edgecolor": "none",
                                                 "alpha": 0.85})
    styles = iter(["-", "--", ":", "-."])
    for name, value in references.items():
        ax.axhline(value, color=colour(name), ls=next(styles, ":"), lw=1.2,
                   label=f"{name} (honest) {value:.2f}")
    ax.set_xticks(x, [b.name for b in bars])
    ax.set_ylabel(f"mean MAE over h = 1..H ({units})")
    ax.set_title("The leak at a glance: what training shows vs what forecasting gets")
    top = max([max(b.honest, b.teacher_forced) for b in bars] + list(references.values()))
    ax.set_ylim(0, top * 1.3)
    ax.grid(axis="y", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles = [h for h in handles if not isinstance(h, BarContainer)] + [
        Patch(facecolor="white", edgecolor="black", hatch="//", label="teacher-forced (hatched)"),
        Patch(facecolor="darkgray", edgecolor="black", label="honest, rolling origin (solid)"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
              frameon=False)
    return fig


@dataclass
class FieldPanel:
    """Measured influence of one model, for the receptive-field figure."""

    name: str
    title: str
    influence: np.ndarray  # (P, T): influence of input step j on output position p
    positions: np.ndarray  # (P,) the output steps of the rows
    profile: np.ndarray  # (T,) influence on the audited output step, max 1
    position: int  # the audited output step t
    past: int
    future: int


def receptive_field_figure(panels: Sequence[FieldPanel]) -> Figure:
    """Influence of input steps on output steps, one column per model.

    Top: the classic causal-convolution picture as an image, output step against input
    step, influence as colour (white: none); the dashed diagonal is 'input = output'.
    Bottom: the influence on the audited step t against the offset j - t; the shaded
    side is the future, where a forecaster must read nothing.
    """
    fig = Figure(figsize=(6.5 * len(panels), 9.5), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, height_ratios=[3, 2])
    for col, p in enumerate(panels):
        ax = axes[0, col]
        length = p.influence.shape[1]
        rows = p.influence / p.influence.max(axis=1, keepdims=True)
        shown = np.ma.masked_less_equal(rows, 0)
        step = np.median(np.diff(p.positions)) if len(p.positions) > 1 else 1
        img = ax.imshow(shown, aspect="auto", origin="lower", cmap="viridis",
                        norm=LogNorm(vmin=1e-4, vmax=1), interpolation="nearest",
                        extent=(-0.5, length - 0.5, p.positions[0] - step / 2,
                                p.positions[-1] + step / 2))
        ax.plot([0, length - 1], [0, length - 1], color="red", ls="--", lw=1,
                label="input step = output step")
        ax.set_xlim(-0.5, length - 0.5)
        ax.set_ylim(p.positions[0] - step / 2, p.positions[-1] + step / 2)
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel("input step j")
        ax.set_ylabel("output step t")
        ax.legend(loc="upper left", fontsize=8)
        fig.colorbar(img, ax=ax, label="influence |d out[t] / d x[j]| (relative)")

        ax = axes[1, col]
        offset = np.arange(length) - p.position
        ax.semilogy(offset, np.where(p.profile > 0, p.profile, np.nan), color=colour(p.name),
                    lw=1.2)
        ax.axvspan(0.5, offset[-1], color="red", alpha=0.08, label="future (j > t)")
        ax.axvline(-p.past, color="black", ls=":", lw=1)
        ax.axvline(p.future, color="black", ls=":", lw=1,
                   label=f"measured extent: {p.past} past, {p.future} future")
        ax.set_xlim(offset[0], offset[-1])
        ax.set_ylim(1e-6, 2)
        ax.set_xlabel(f"input offset j - t (steps, t = {p.position})")
        ax.set_ylabel("influence on output t (relative)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.suptitle("Measured receptive field: which input steps move the output at step t")
    return fig
