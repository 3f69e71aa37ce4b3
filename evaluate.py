"""Compare trained runs with baselines and show the leak: ``python evaluate.py``.

With no argument it takes the newest causal and the newest standard run (all seeds
of it, when it came from a multirun sweep); ``runs=[DIR,...]`` names them instead.
Every model and baseline is scored on the same test origins and targets;
``docs_dir=docs`` also writes ``docs/results.json`` and the README's figures
(``python -m forecast.report.results`` then regenerates the README's table).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from forecast.cli import check_config, run_hydra, settings_code
from forecast.settings import check_evaluate

if TYPE_CHECKING:
    from forecast.evaluation.runs import Run

log = logging.getLogger("evaluate")


def evaluate(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Find the runs, build the baselines, and write the report into ``out_dir``."""
    # torch and the report: imported only once the settings passed (a bad one is refused fast)
    from forecast.evaluation.runs import find_runs, is_field_run
    from forecast.report.comparison import ReportOptions, compare_runs

    runs = find_runs([str(r) for r in cfg.runs or []], [str(s) for s in cfg.search],
                     bool(cfg.field))
    if any(is_field_run(r) for r in runs):
        return evaluate_field_runs(cfg, runs, Path(out_dir))
    horizon = int(runs[0].config["data"]["horizon"])
    baselines = {str(k): instantiate(v, horizon=horizon, _convert_="all")
                 for k, v in cfg.baselines.items()}
    options = ReportOptions(
        station=str(cfg.station), units=str(cfg.units), figure_lead=int(cfg.figure_lead),
        week_start=str(cfg.week_start) if cfg.week_start else None,
        audit_batch=int(cfg.audit_batch), audit_rows=int(cfg.audit_rows),
        batch_size=int(cfg.batch_size),
        calibration_days=(float(cfg.calibration_days) if cfg.get("calibration_days")
                          is not None else None),
        calibration_scaled=bool(cfg.get("calibration_scaled", False)),
        calibration_rate=(float(cfg.calibration_rate) if cfg.get("calibration_rate")
                          is not None else None),
        docs_dir=Path(str(cfg.docs_dir)) if cfg.docs_dir else None)
    return compare_runs(runs, baselines, out_dir, options)


def evaluate_field_runs(cfg: DictConfig, runs: list[Run], out_dir: Path) -> dict:
    """Field runs: both nets and the field baselines over all grid points, the audit in time
    and space, maps, a GIF, and (``point_run=DIR``) point vs field."""
    from forecast.evaluation.runs import RunError, is_field_run, load_run
    from forecast.fields.point import point_forecasts
    from forecast.fields.report import FieldRun, evaluate_fields

    if not all(is_field_run(r) for r in runs):
        raise RunError("runs: field runs and series runs cannot be compared in one report")
    point = None
    if cfg.point_run:
        p = load_run(Path(str(cfg.point_run)))
        point = point_forecasts(p.checkpoint, p.config["data"], str(cfg.point.name),
                                float(cfg.point.lat), float(cfg.point.lon))
    return evaluate_fields([FieldRun(r.path, r.config["data"]) for r in runs], out_dir, point,
                           cfg.map_time, int(cfg.gif_lead), int(cfg.gif_hours),
                           Path(str(cfg.docs_dir)) if cfg.docs_dir else None)


def cli() -> int:
    """The command's exit code: 0, 1 (a failed run) or 2 (a bad override or setting)."""
    return run_hydra(main, settings_code) or 0


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    check_config(cfg, check_evaluate, log)  # before any run is read; exit 2 with one line
    from forecast.evaluation.runs import RunError
    from forecast.frame import DataError
    from forecast.module import CheckpointError

    try:
        evaluate(cfg, HydraConfig.get().runtime.output_dir)
    except (RunError, CheckpointError, DataError) as err:
        log.error("%s", err)
        raise SystemExit(1) from None


if __name__ == "__main__":
    sys.exit(cli())
