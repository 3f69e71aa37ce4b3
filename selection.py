"""Compare design variants on rolling-origin folds, never the test split:
``python selection.py variants=model_notes folds=3 seeds=[0,1,2]``.

Each variant is a list of training-config overrides; every (variant, fold, seed) is
one ``train()`` run whose data splits are the fold's. The table (honest MAE per
fold, mean and spread) goes to ``selection.md``, ``selection.csv`` and ``selection.json``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import train
from forecast.cli import (
    check_config,
    one_line,
    one_line_errors,
    run_hydra,
    settings_code,
    take_verbose_flag,
)
from forecast.data import ForecastDataModule
from forecast.evaluation.selection import Fold, rolling_folds, select
from forecast.files import atomic_write_text, write_json
from forecast.report.selection import (
    selection_csv,
    selection_markdown,
    strongest_baseline,
    summarise,
)
from forecast.settings import SettingsError, check_select, check_train

log = logging.getLogger("selection")


def training_config(overrides: list[str], fold: Fold | None = None) -> DictConfig:
    """The training config tree with ``overrides``, its splits replaced by the fold's."""
    cfg = compose(config_name="train", overrides=overrides)
    if fold is not None:
        cfg.data.splits = fold.splits()
    return cfg


def check_variants(cfg: Mapping[str, Any]) -> None:
    """Compose and check every variant's training settings (``train_overrides`` then its
    own) as ``train.py`` would; the first bad one is a :class:`SettingsError` naming it."""
    common = [str(o) for o in cfg.get("train_overrides") or []]
    variants = cfg.get("variants") or {}
    for name, extra in variants.items():
        if any(str(o).lstrip("+~").startswith("data.refit") for o in extra):
            raise SettingsError(f"variant {name}: data.refit changes how the baselines are "
                                "fitted too; set it for every variant in train_overrides")
    for name, extra in {"(common)": [], **variants}.items():
        try:
            check_train(OmegaConf.to_container(training_config([*common, *map(str, extra)]),
                                               resolve=True, throw_on_missing=False))
        except (SettingsError, HydraException, OmegaConfBaseException,
                ValueError) as err:  # ValueError: Hydra's, for an override of a wrong kind
            raise SettingsError(f"variant {name}: {one_line(err)}") from None


def check_selection(plain: Mapping[str, Any]) -> None:
    """The selection's own settings, then every variant's training settings (before any
    data is read or any run trained)."""
    check_select(plain)
    check_variants(plain)


def run_selection(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Train and score every variant and baseline on every fold; write the table."""
    out_dir = Path(out_dir)
    common = [str(o) for o in cfg.train_overrides]
    variants = {str(k): [str(o) for o in v] for k, v in (cfg.get("variants") or {}).items()}
    check_selection(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
    base = training_config(common)
    dm: ForecastDataModule = instantiate(base.data, _convert_="all")
    dm.load()
    start, end = dm.splits["train"][0], dm.splits["val"][1]
    folds = rolling_folds(start, end, int(cfg.folds), pd.Timedelta(str(cfg.fold_length)),
                          pd.Timedelta(str(cfg.stop_length)))

    def fit(name: str, fold: Fold, seed: int, run_dir: Path) -> Path:
        run_cfg = training_config([*common, *variants[name], f"seed={seed}"], fold)
        return Path(train.train(run_cfg, run_dir)["best_checkpoint"])

    def load_data(fold: Fold) -> ForecastDataModule:
        return instantiate(training_config(common, fold).data, _convert_="all")

    baselines = {str(k): instantiate(v, horizon=dm.horizon, _convert_="all")
                 for k, v in cfg.baselines.items()}
    scores = select(folds, list(variants), [int(s) for s in cfg.seeds], fit, load_data,
                    baselines, end, out_dir, int(cfg.batch_size))
    summary = summarise(scores)
    atomic_write_text(out_dir / "selection.md",
                      selection_markdown(summary, folds, str(cfg.units), dm.horizon))
    atomic_write_text(out_dir / "selection.csv", selection_csv(scores))
    result = {
        "strongest_baseline": strongest_baseline(summary),
        "summary": summary,
        "folds": [{"index": f.index, **f.splits()} for f in folds],
        "variants": variants,
        "train_overrides": common,
        "scores": [s.row() for s in scores],
    }
    write_json(out_dir / "selection.json", result)
    log.info("selection table written to %s", out_dir / "selection.md")
    return result


@hydra.main(version_base="1.3", config_path="configs", config_name="select")
def main(cfg: DictConfig) -> None:
    check_config(cfg, check_selection, log)  # exit 2 on a bad setting, before any data is read
    log.info("variants: %s", OmegaConf.to_container(cfg.variants))
    with one_line_errors(log):  # one line per error; the traceback in selection.log
        run_selection(cfg, HydraConfig.get().runtime.output_dir)


def cli() -> int:
    """The command's exit code: 0, 1 (a failed run) or 2 (a bad override or setting)."""
    return run_hydra(main, settings_code) or 0


if __name__ == "__main__":
    take_verbose_flag()
    sys.exit(cli())
