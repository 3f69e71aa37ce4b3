"""The leakage report's figures: a forecast week, MAE by horizon, the leak, the
measured receptive fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from forecast.data import ForecastDataModule
from forecast.evaluation.audit import influence
from forecast.evaluation.protocols import Forecasts
from forecast.evaluation.scoring import ModelResult
from forecast.files import atomic_write_bytes
from forecast.report.figures import (
    Curve,
    FieldPanel,
    LeakBar,
    forecast_week_figure,
    leak_bars_figure,
    mae_by_horizon_figure,
    png_bytes,
    receptive_field_figure,
)

FIGURES = {
    "forecast_week": "forecast_week.png",
    "mae_by_horizon": "mae_by_horizon.png",
    "leak": "teacher_forced_vs_honest.png",
    "receptive_field": "receptive_field.png",
}


def week_curves(groups: dict[str, list[ModelResult]], reference: Forecasts, station: str,
                start: pd.Timestamp, lead: int, step: pd.Timedelta
                ) -> tuple[np.ndarray, np.ndarray, list[Curve]]:
    """(times, actual, curves) of ``lead``-step forecasts at ``station`` for one week."""
    lead_ns = lead * step.value
    valid = reference.origin + lead_ns
    keep = ((reference.series == station) & (valid >= start.value)
            & (valid < (start + pd.Timedelta(days=7)).value))
    order = np.argsort(valid[keep])
    times = valid[keep][order].astype("datetime64[ns]")

    def pick(fc: Forecasts) -> np.ndarray:
        return fc.pred[keep][order, lead - 1]

    curves = []
    for name, g in groups.items():
        first = g[0]
        if first.model.hparams.causal:
            curves.append(Curve(name, f"{name} (honest)", pick(first.honest)))
        else:
            curves.append(Curve(name, f"{name} (teacher-forced, peeks)",
                                pick(first.teacher_forced), dashed=True))
            curves.append(Curve(name, f"{name} (honest)", pick(first.honest)))
    curves.append(Curve("persistence", "persistence", pick(reference)))
    return times, reference.target[keep][order, lead - 1], curves


def write_figures(out_dir: Path, groups: dict[str, list[ModelResult]], entries: dict,
                  baselines: list[str], reference: Forecasts, dm: ForecastDataModule,
                  station: str, units: str, figure_lead: int = 12, week_start: str | None = None,
                  audit_rows: int = 96) -> dict[str, str]:
    """The four PNG figures, written atomically; returns {figure key: file name}."""
    spec = dm.spec
    lead = min(figure_lead, dm.horizon)
    if week_start:
        start = pd.Timestamp(week_start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    else:
        start = dm.splits["test"][0]
    times, actual, curves = week_curves(groups, reference, station, start, lead, spec.step)
    figs = {"forecast_week": forecast_week_figure(times, actual, curves, station, lead, units)}

    curves = []
    for name, g in groups.items():
        e = entries[name]
        seeds = f", {len(g)} seeds" if len(g) > 1 else ""
        spread = e["spread"]["mae_by_horizon_std"]
        curves.append(Curve(name, f"{name} (honest{seeds})", np.asarray(e["mae_by_horizon"]),
                            None if spread is None else np.asarray(spread)))
        if not e["causal"]:
            curves.append(Curve(name, f"{name} (teacher-forced, peeks)",
                                np.asarray(e["teacher_forced_mae_by_horizon"]), dashed=True))
    curves += [Curve(b, b, np.asarray(entries[b]["mae_by_horizon"])) for b in baselines]
    figs["mae_by_horizon"] = mae_by_horizon_figure(
        curves, f"MAE by horizon step on the test period (all series, "
                f"{len(reference.origin)} origins)", units)

    bars = [LeakBar(name, entries[name]["teacher_forced_mae"], entries[name]["honest_mae"],
                    entries[name]["spread"]["teacher_forced_mae"]["std"],
                    entries[name]["spread"]["honest_mae"]["std"]) for name in groups]
    figs["leak"] = leak_bars_figure(bars, {b: entries[b]["honest_mae"] for b in baselines},
                                    units)

    panels = []
    for name, g in groups.items():
        first = g[0]
        a = entries[name]["audit"]
        rows = np.unique(np.linspace(0, first.audit.length - 1, audit_rows).round()
                         .astype(int))
        x = torch.randn(1, first.audit.length,
                        first.model.hparams.n_features,
                        generator=torch.Generator().manual_seed(0))
        panels.append(FieldPanel(
            name=name,
            title=(f"{name}: R = {a['receptive_field']}, configured past {a['expected_past']} / "
                   f"future {a['expected_future']}\nmeasured past {first.audit.past} / "
                   f"future {first.audit.future}"),
            influence=influence(first.model, x, rows, project=True), positions=rows,
            profile=first.audit.influence, position=first.audit.position,
            past=first.audit.past, future=first.audit.future))
    figs["receptive_field"] = receptive_field_figure(panels)

    for key, fig in figs.items():
        atomic_write_bytes(out_dir / FIGURES[key], png_bytes(fig))
    return {key: FIGURES[key] for key in figs}
