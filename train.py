"""Train a causal or standard dilated-conv forecaster: ``python train.py model=causal``.

The Hydra shell: the composed settings are checked before torch and Lightning are
imported, so a bad one is refused in about a second; the training is ``training.py``
(``train.fit``, ``train.train``, ... resolve to it).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from forecast.cli import check_config, one_line_errors, run_hydra, settings_code, take_verbose_flag
from forecast.settings import check_train

ROOT = Path(__file__).resolve().parent
OmegaConf.register_new_resolver("project_root", lambda: str(ROOT), replace=True)
log = logging.getLogger("train")


def __getattr__(name: str) -> Any:
    """``train.fit``, ``train.train``, ...: the training module's, imported on first use."""
    import training

    try:
        return getattr(training, name)
    except AttributeError:
        raise AttributeError(f"module 'train' has no attribute {name!r}") from None


def cli() -> int:
    """The command's exit code: 0, 1 (a failed run) or 2 (a bad override or setting)."""
    return run_hydra(main, settings_code) or 0


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    # every DDP process validates on the whole split (forecast.data.EvalBatches, whose
    # length stays exact with loader workers): val/loss needs no sync_dist
    warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
    warnings.filterwarnings("ignore", message=r".*IterableDataset.*has `__len__` defined.*")
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    check_config(cfg, lambda c: check_train(c, multirun), log)  # before reading any data
    with one_line_errors(log):  # one line per error; the traceback in train.log (--verbose)
        from training import train  # torch and Lightning: only once the settings passed

        train(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    take_verbose_flag()
    sys.exit(cli())
