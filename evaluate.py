"""Compare trained runs with baselines and show the leak: ``python evaluate.py``.

With no argument it takes the newest causal and the newest standard run (all seeds
of it, when it came from a multirun sweep); ``runs=[DIR,...]`` names them instead.
Every model and baseline is scored on the same test origins and targets;
``docs_dir=docs`` also writes ``docs/results.json`` and the README's figures
(``python -m forecast.report.results`` then regenerates the README's table).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from forecast.evaluation.runs import RunError, find_runs
from forecast.frame import DataError
from forecast.module import CheckpointError
from forecast.report.comparison import ReportOptions, compare_runs

log = logging.getLogger("evaluate")


def evaluate(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Find the runs, build the baselines, and write the report into ``out_dir``."""
    runs = find_runs([str(r) for r in cfg.runs or []], [str(s) for s in cfg.search])
    horizon = int(runs[0].config["data"]["horizon"])
    baselines = {str(k): instantiate(v, horizon=horizon, _convert_="all")
                 for k, v in cfg.baselines.items()}
    options = ReportOptions(
        station=str(cfg.station), units=str(cfg.units), figure_lead=int(cfg.figure_lead),
        week_start=str(cfg.week_start) if cfg.week_start else None,
        audit_batch=int(cfg.audit_batch), audit_rows=int(cfg.audit_rows),
        batch_size=int(cfg.batch_size),
        docs_dir=Path(str(cfg.docs_dir)) if cfg.docs_dir else None)
    return compare_runs(runs, baselines, out_dir, options)


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg, HydraConfig.get().runtime.output_dir)
    except (RunError, CheckpointError, DataError) as err:
        log.error("%s", err)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
