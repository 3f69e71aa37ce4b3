"""Evaluate field runs: causal and standard nets, teacher-forced and honest, against
persistence, seasonal naive and a per-grid-point linear model on the same test
origins; the leakage audit; ``report.md``, ``metrics.json`` and the figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from forecast.fields.audit import audit_field
from forecast.fields.baselines import GridLinear, persistence, seasonal_naive
from forecast.fields.data import FieldDataModule, field_inputs
from forecast.fields.evaluation import FieldForecasts, field_forecasts, field_scores
from forecast.fields.figures import write_field_figures
from forecast.fields.module import FieldModule, load_field_checkpoint
from forecast.files import atomic_write_bytes, atomic_write_text, write_json

log = logging.getLogger(__name__)
SEASON, LAGS = 24, 24


@dataclass
class FieldRun:
    """A finished field training run: its folder, data settings and best checkpoint."""

    path: Path
    data: dict  # the data config's constructor arguments

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.ckpt"


def data_module(data: dict, history: int) -> FieldDataModule:
    dm = FieldDataModule(**{k: v for k, v in data.items() if not k.startswith("_")})
    dm.set_history(history)
    dm.load()
    return dm


def entry(tf: FieldForecasts | None, hon: FieldForecasts, pers: FieldForecasts) -> dict:
    s = field_scores(hon, pers)
    t = field_scores(tf, pers) if tf is not None else s
    return {"teacher_forced_mae": t["mae"], "honest_mae": s["mae"], "honest_rmse": s["rmse"],
            "skill": s["skill"], "mae_by_horizon": s["mae_by_horizon"],
            "rmse_by_horizon": s["rmse_by_horizon"],
            "teacher_forced_mae_by_horizon": t["mae_by_horizon"], "n_targets": s["n_targets"]}


def audit(model: FieldModule, dm: FieldDataModule, origin: int) -> dict:
    """Autograd audit of the output at the centre of the map, on real test inputs."""
    r = model.receptive_field
    a, b = origin - 2 * r, origin + 2 * r
    frames = (dm.field.frames(a, b) - dm.spec["mean"]) / dm.spec["std"]
    x = torch.from_numpy(field_inputs(frames, dm.field.times[a:b], dm.calendar))[None]
    return audit_field(model, x, t=2 * r).to_dict()


def evaluate_fields(runs_in: list[FieldRun], out_dir: Path, point: dict | None = None,
                    map_time: str | None = None, gif_lead: int = 3, gif_hours: int = 24,
                    docs_dir: Path | None = None) -> dict:
    """Score the runs (same data) and the baselines; write report, metrics and figures
    (also copied into ``docs_dir`` when given)."""
    runs = {}
    for run in runs_in:
        model = load_field_checkpoint(run.checkpoint)
        runs[model.hparams.name] = (run, model)
    first_run = next(iter(runs.values()))[0]
    history = max([m.receptive_field - 1 for _, m in runs.values()] + [LAGS - 1, SEASON])
    dm = data_module(first_run.data, history)
    frames, times, horizon = dm.field.frames(0, len(dm.field)), dm.field.times, dm.horizon
    test = dm.split_origins("test", history)
    train = dm.split_origins("train", LAGS - 1)
    fc: dict[str, dict[str, FieldForecasts]] = {}
    for name, (_, model) in runs.items():
        fc[name] = {p: field_forecasts(model, dm.field, dm.spec, test, p, dm.span)
                    for p in ("teacher_forced", "honest")}
    truth = fc[next(iter(fc))]["honest"].target  # [N, H, Y, X]
    pers = FieldForecasts(test, persistence(frames, test, horizon), truth)
    base = {
        "persistence": pers.pred,
        "seasonal_naive": seasonal_naive(frames, test, horizon, SEASON),
        "grid_linear": GridLinear(horizon, LAGS).fit(frames, times, train).predict(
            frames, times, test),
    }
    entries = {name: entry(f["teacher_forced"], f["honest"], pers) for name, f in fc.items()}
    for name, pred in base.items():
        entries[name] = entry(None, FieldForecasts(test, pred, truth), pers)
    audits = {name: audit(model, dm, int(test[len(test) // 2])) for name, (_, model) in
              runs.items()}
    result = {"units": dm.spec["units"], "horizon": horizon, "origins": int(len(test)),
              "grid": list(dm.field.shape), "runs": {n: str(r.path) for n, (r, _) in runs.items()},
              "models": entries, "audit": audits}
    if point is not None:
        result["point_vs_field"] = point_vs_field(point, dm, fc, test)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", result)
    atomic_write_text(out_dir / "report.md", report_markdown(result))
    causal = {n for n, (_, m) in runs.items() if m.hparams.causal}
    figures = write_field_figures(out_dir, dm, fc, causal, truth, entries, map_time, gif_lead,
                                  gif_hours)
    for path in figures if docs_dir is not None else []:
        atomic_write_bytes(Path(docs_dir) / path.name, path.read_bytes())
    log.info("field report written to %s", out_dir)
    return result


def point_vs_field(point: dict, dm: FieldDataModule, fc: dict, test: np.ndarray) -> dict:
    """The field nets' honest forecasts at one grid point next to a point model's honest
    forecasts (``point``: {name, lat, lon, times (ns), pred (N, H) in the field's units})."""
    r = int(np.abs(dm.field.y - point["lat"]).argmin())
    c = int(np.abs(dm.field.x - point["lon"]).argmin())
    where = {int(t): i for i, t in enumerate(point["times"])}
    keep = np.array([int(dm.field.times[o]) in where for o in test])
    if not keep.any():
        raise ValueError("point vs field: the point model has no forecast at the test origins")
    rows = [where[int(dm.field.times[o])] for o in test[keep]]
    truth = fc[next(iter(fc))]["honest"].target[keep, :, r, c]
    out = {"point": point["name"], "lat": float(dm.field.y[r]), "lon": float(dm.field.x[c]),
           "origins": int(keep.sum())}
    preds = {f"{n} (field)": f["honest"].pred[keep, :, r, c] for n, f in fc.items()}
    preds[f"{point['model']} (point)"] = np.asarray(point["pred"])[rows]
    preds["persistence"] = persistence(dm.field.frames(0, len(dm.field)), test[keep], dm.horizon
                                       )[:, :, r, c]
    for name, p in preds.items():
        err = np.abs(p - truth)
        out[name] = {"mae": float(err.mean()), "mae_by_horizon": err.mean(axis=0).tolist()}
    return out


def report_markdown(r: dict) -> str:
    u, h = r["units"], r["horizon"]
    lines = [f"# Field forecasts: {r['origins']} test origins, {r['grid'][0]} x {r['grid'][1]} "
             f"grid, leads 1..{h} h ({u})", "",
             "| model | teacher-forced MAE | honest MAE | honest RMSE | skill vs persistence |",
             "| --- | --- | --- | --- | --- |"]
    for name, e in r["models"].items():
        lines.append(f"| {name} | {e['teacher_forced_mae']:.3f} | {e['honest_mae']:.3f} | "
                     f"{e['honest_rmse']:.3f} | {e['skill']:+.3f} |")
    lines += ["", "Honest MAE by lead time (h):", "",
              "| model | " + " | ".join(f"+{k}" for k in range(1, h + 1)) + " |",
              "| --- " * (h + 1) + "|"]
    for name, e in r["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in e["mae_by_horizon"]) + " |")
    lines += ["", "Leakage audit (autograd, output at the map centre): frames of the past and "
              "future, and grid cells around, that move it.", "",
              "| model | past | future | radius (cells) | leaks |",
              "| --- | --- | --- | --- | --- |"]
    for name, a in r["audit"].items():
        lines.append(f"| {name} | {a['past']} | {a['future']} | {a['radius']} | {a['leaks']} |")
    lines += ["", *verdict(r)]
    if "point_vs_field" in r:
        p = r["point_vs_field"]
        lines += ["", f"Point vs field at {p['point']} (grid point {p['lat']:.2f} N, "
                  f"{p['lon']:+.2f} E), {p['origins']} origins, honest MAE:", "",
                  "| model | MAE | " + " | ".join(f"+{k}" for k in range(1, h + 1)) + " |",
                  "| --- " * (h + 2) + "|"]
        for name, e in p.items():
            if isinstance(e, dict):
                lines.append(f"| {name} | {e['mae']:.3f} | "
                             + " | ".join(f"{v:.3f}" for v in e["mae_by_horizon"]) + " |")
    return "\n".join(lines) + "\n"


def verdict(r: dict) -> list[str]:
    m, u, out = r["models"], r["units"], []
    pers = m["persistence"]["mae_by_horizon"]
    for name, e in m.items():
        if name in ("persistence", "seasonal_naive", "grid_linear"):
            continue
        wins = [a < b for a, b in zip(e["mae_by_horizon"], pers, strict=True)]
        gap = e["honest_mae"] / e["teacher_forced_mae"]
        out.append(f"- {name}: honest MAE {e['honest_mae']:.3f} {u} beats persistence at "
                   f"{sum(wins)} of {len(wins)} lead times; teacher-forced "
                   f"{e['teacher_forced_mae']:.3f}, honest / teacher-forced = {gap:.2f}.")
    return out
