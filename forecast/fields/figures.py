"""Pictures of field forecasts: maps at one test hour, error by lead time, a GIF of a day.

Every file is rendered in memory and written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from forecast.fields.data import FieldDataModule  # noqa: E402
from forecast.fields.evaluation import FieldForecasts  # noqa: E402
from forecast.files import atomic_write_bytes  # noqa: E402


def _png(fig: plt.Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _extent(dm: FieldDataModule) -> list[float]:
    y, x = dm.field.y, dm.field.x
    dy, dx = abs(y[1] - y[0]) / 2, abs(x[1] - x[0]) / 2
    return [x.min() - dx, x.max() + dx, y.min() - dy, y.max() + dy]


def _show(ax: plt.Axes, dm: FieldDataModule, a: np.ndarray, title: str, **kw) -> plt.Artist:
    origin = "upper" if dm.field.y[0] > dm.field.y[-1] else "lower"
    im = ax.imshow(a, extent=_extent(dm), origin=origin, **kw)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    return im


def _stamp(dm: FieldDataModule, index: int) -> str:
    return pd.Timestamp(int(dm.field.times[index]), tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def maps_figure(dm: FieldDataModule, fc: dict[str, dict[str, FieldForecasts]],
                causal: set[str], truth: np.ndarray, k: int,
                leads: tuple[int, ...] = (1, 6)) -> bytes:
    """Rows: lead times; columns: truth, each forecast, each forecast's error (origin k).
    A causal model's teacher-forced maps equal its honest ones: it gets one column."""
    panels = [(f"{n}\n{p.replace('_', '-')}", f[p].pred) for n, f in fc.items()
              for p in (("honest",) if n in causal else ("teacher_forced", "honest"))]
    leads = tuple(h for h in leads if h <= truth.shape[1])
    cols = 1 + 2 * len(panels)
    fig, axes = plt.subplots(len(leads), cols, figsize=(2.1 * cols, 2.2 * len(leads)),
                             squeeze=False)
    lo, hi = np.percentile(truth[k], [1, 99])
    for row, h in zip(axes, leads, strict=True):
        t = truth[k, h - 1]
        im = _show(row[0], dm, t, f"truth\n+{h} h", vmin=lo, vmax=hi, cmap="RdYlBu_r")
        for j, (name, pred) in enumerate(panels):
            _show(row[1 + j], dm, pred[k, h - 1], f"{name} +{h} h", vmin=lo, vmax=hi,
                  cmap="RdYlBu_r")
            err = pred[k, h - 1] - t
            em = _show(row[1 + len(panels) + j], dm, err,
                       f"error {name}, MAE {np.abs(err).mean():.2f}", vmin=-3, vmax=3,
                       cmap="coolwarm")
        fig.colorbar(im, ax=row[: 1 + len(panels)], shrink=0.8, label=dm.spec["units"])
        fig.colorbar(em, ax=row[1 + len(panels):], shrink=0.8, label=dm.spec["units"])
    origin = int(fc[next(iter(fc))]["honest"].origin[k])
    fig.suptitle(f"forecasts issued {_stamp(dm, origin)}", fontsize=10)
    return _png(fig)


def lead_figure(entries: dict, units: str) -> bytes:
    """Honest MAE by lead time for every model and baseline; teacher-forced dashed."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, e in entries.items():
        h = np.arange(1, len(e["mae_by_horizon"]) + 1)
        line, = ax.plot(h, e["mae_by_horizon"], marker="o", label=f"{name} (honest)")
        if e["teacher_forced_mae_by_horizon"] != e["mae_by_horizon"]:
            ax.plot(h, e["teacher_forced_mae_by_horizon"], ls="--", color=line.get_color(),
                    label=f"{name} (teacher-forced)")
    ax.set(xlabel="lead time (h)", ylabel=f"MAE over all grid points ({units})",
           title="Test error by lead time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def day_gif(dm: FieldDataModule, pred: np.ndarray, truth: np.ndarray, origins: np.ndarray,
            lead: int, name: str, frames: int = 24) -> bytes:
    """Truth beside the forecast made ``lead`` hours earlier, for ``frames`` hours."""
    lo, hi = np.percentile(truth[:frames, lead - 1], [1, 99])
    images = []
    for k in range(min(frames, len(origins))):
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 3))
        valid = int(origins[k]) + lead
        _show(axes[0], dm, truth[k, lead - 1], f"truth {_stamp(dm, valid)}", vmin=lo,
              vmax=hi, cmap="RdYlBu_r")
        im = _show(axes[1], dm, pred[k, lead - 1], f"{name}, issued {lead} h before", vmin=lo,
                   vmax=hi, cmap="RdYlBu_r")
        fig.colorbar(im, ax=axes, shrink=0.8, label=dm.spec["units"])
        images.append(Image.open(io.BytesIO(_png(fig, dpi=80))).convert("P"))
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=400,
                   loop=0)
    return buf.getvalue()


def write_field_figures(out_dir: Path, dm: FieldDataModule, fc: dict, causal: set[str],
                        truth: np.ndarray, entries: dict, map_time: str | None,
                        gif_lead: int, gif_hours: int = 24) -> list[Path]:
    """maps.png, lead_mae.png and day.gif into ``out_dir``."""
    origins = fc[next(iter(fc))]["honest"].origin
    stamps = dm.field.times[origins]
    if map_time is not None:
        k = int(np.abs(stamps - pd.Timestamp(map_time, tz="UTC").value).argmin())
    else:
        k = len(origins) // 2
    shown = next((n for n in fc if n in causal), next(iter(fc)))
    day = np.flatnonzero(pd.DatetimeIndex(stamps + gif_lead * dm.field.step.value,
                                          tz="UTC").hour == 0)
    first = int(day[0]) if day.size else 0
    written = [
        atomic_write_bytes(out_dir / "maps.png", maps_figure(dm, fc, causal, truth, k)),
        atomic_write_bytes(out_dir / "lead_mae.png", lead_figure(entries, dm.spec["units"])),
        atomic_write_bytes(out_dir / "day.gif", day_gif(
            dm, fc[shown]["honest"].pred[first:], truth[first:], origins[first:], gif_lead,
            shown, gif_hours)),
    ]
    return written
