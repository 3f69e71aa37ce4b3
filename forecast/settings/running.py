"""Schemas of how ``train.py`` runs: the ``trainer`` group (Lightning's Trainer, DDP
included), the ``logger`` group, and DDP inside a sweep."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass

from forecast.settings.rules import (
    Rule,
    SettingsError,
    arguments,
    at_least,
    check_section,
    each,
    either,
    fail,
    key,
    one_of,
)
from forecast.settings.signatures import STRATEGIES

POSITIVE = at_least(1)
COUNT = Rule(lambda v: isinstance(v, int) and v >= 1, "a count >= 1")
FRACTION_OR_COUNT = either(Rule(lambda v: isinstance(v, float) and 0 < v <= 1,
                                "a fraction in (0, 1]"), COUNT)
NO_LIMIT = Rule(lambda v: v == -1, "-1 (no limit)")
DEVICE_IDS = Rule(lambda v: isinstance(v, str) and all(p.strip().isdigit() for p in v.split(",")),
                  "device ids such as '0,1'")


@dataclass(frozen=True)
class TrainerSettings:
    """``trainer=default|gpu|tiny|ddp``: the typed part of ``lightning.pytorch.Trainer``'s
    arguments; its other arguments pass unchecked, set by train.py ones are refused."""

    _target_: str = key()
    accelerator: str = key(one_of("auto", "cpu", "gpu", "cuda", "mps", "tpu"))
    strategy: str = key()  # checked against Lightning's registry in check_trainer
    devices: int | str | list[int] = key(either(POSITIVE, one_of(-1, "auto"), DEVICE_IDS,
                                                 each(at_least(0))))
    num_nodes: int = key(POSITIVE)
    max_epochs: int | None = key(either(POSITIVE, NO_LIMIT))
    max_steps: int = key(either(POSITIVE, NO_LIMIT))
    val_check_interval: int | float | None = key(FRACTION_OR_COUNT)
    check_val_every_n_epoch: int | None = key(POSITIVE)
    limit_train_batches: int | float | None = key(FRACTION_OR_COUNT)
    limit_val_batches: int | float | None = key(FRACTION_OR_COUNT)
    gradient_clip_val: float | None = key(at_least(0))
    log_every_n_steps: int = key(POSITIVE)
    accumulate_grad_batches: int = key(POSITIVE)
    enable_progress_bar: bool = key()
    deterministic: bool | str | None = key()


SET_BY_TRAIN = {"logger": "choose it with the logger group (logger=csv|tensorboard|mlflow)",
                "callbacks": "train.py sets them (checkpoints, early stopping, EMA)",
                "default_root_dir": "train.py sets it to the run folder (hydra.run.dir)"}
LOGGER_EXTRAS = {"TensorBoardLogger": ("tensorboard", "tensorboard"),
                 "MLFlowLogger": ("mlflow", "mlflow")}


def check_trainer(trainer: Mapping) -> None:
    # the Trainer's own arguments are the allowed keys
    known = arguments("lightning.pytorch.Trainer", "trainer",
                      [k for k in trainer if k != "_target_"])
    for name, why in SET_BY_TRAIN.items():
        if name in trainer:
            raise SettingsError(f"trainer.{name}: not a trainer setting here: {why}")
    typed = TrainerSettings.__dataclass_fields__
    check_section(TrainerSettings, "trainer", trainer,
                  extra={k: "" for k in known if k not in SET_BY_TRAIN and k not in typed})
    strategy = trainer.get("strategy")
    if strategy is None or strategy in ("auto", *STRATEGIES):
        return
    from lightning.pytorch.strategies import StrategyRegistry  # a name not listed statically

    allowed = ["auto", *StrategyRegistry.available_strategies()]
    if strategy not in allowed:
        raise fail("trainer.strategy", strategy, "one of " + ", ".join(allowed))


def check_logger(logger: Mapping) -> None:
    """The logger's keys are the arguments of its class; a tracker's package is installed."""
    target = str(logger.get("_target_", ""))
    name = target.rpartition(".")[2]
    params = arguments(target, "logger", [k for k in logger if k != "_target_"])
    stray = sorted(set(logger) - {"_target_", *params})
    if stray:
        raise SettingsError(f"logger.{stray[0]}: unknown key; allowed keys of {name}: "
                            f"{', '.join(params)}")
    extra, module_name = LOGGER_EXTRAS.get(name, (None, None))
    if module_name and importlib.util.find_spec(module_name) is None:
        raise SettingsError(f"logger={extra} needs the {module_name} package: "
                            f"pip install -e \".[{extra}]\"")


def check_launch(trainer: Mapping, multirun: bool, env: Mapping[str, str]) -> None:
    """DDP in a sweep on one machine: Lightning starts the other processes by re-running
    the command line, sweep included. Under SLURM or torchrun they are already there."""
    strategy = str(trainer.get("strategy") or "")
    launched = any(k in env for k in ("SLURM_NTASKS", "LOCAL_RANK", "WORLD_SIZE"))
    if multirun and strategy.startswith("ddp") and "spawn" not in strategy and not launched:
        raise fail("trainer.strategy", strategy, "a single-process trainer in a multirun on "
                   "one machine (DDP re-runs the command line, sweep included): run DDP runs "
                   "one by one, or sweep them with hydra/launcher=slurm")
