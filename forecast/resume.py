"""Resuming a killed run: which checkpoint to continue from, and the state Lightning leaves out.

Lightning restores weights, optimiser, scheduler, loops, callbacks (early stopping,
checkpointing, EMA) and a resumable loader's position from ``last.ckpt``; it does not save
the random number generators. :class:`RngState` adds them, so a resumed run draws the
numbers the uninterrupted one would have drawn.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from forecast.files import sweep_stale
from forecast.module import CheckpointError, read_checkpoint

log = logging.getLogger(__name__)

LAST = "last.ckpt"
# entries a checkpoint needs to continue training, beyond the weights
TRAINING_STATE = ("optimizer_states", "lr_schedulers", "loops", "callbacks", "global_step")


class RngState(Callback):
    """Saves and restores the torch (CPU and CUDA), numpy and Python generators."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, words, gauss_next = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            # this process's device only: another machine may see other devices
            "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() else [],
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": int(version), "words": list(words), "gauss_next": gauss_next},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"][0], torch.cuda.current_device())
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["gauss"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["words"]), p["gauss_next"]))


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that also restores, on resume in the same folder, what
    the stock one forgets: its current score, and that it has written ``last.ckpt`` (else it
    writes it again when training ends, after the EMA weights replaced the raw ones)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            self.current_score = state_dict.get("current_score")
            # the file it last wrote, where only its truth value is read: has it written one
            self._last_checkpoint_saved = self.last_model_path or self.best_model_path


class StepCheckpoint(RunCheckpoint):
    """``last.ckpt`` every ``every_n_train_steps`` optimiser steps, except at a step that
    validation follows: a checkpoint taken between the step and its validation resumes past
    that validation (Lightning counts it as done); the checkpoint written after it is whole."""

    def __init__(self, dirpath: str | Path, every_n_train_steps: int) -> None:
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True,
                         every_n_train_steps=every_n_train_steps, enable_version_counter=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        loop = trainer.fit_loop
        if loop.epoch_loop._should_check_val_fx(loop._data_fetcher):
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def _resumable(path: Path) -> tuple[int, str | None]:
    """(global step, None) for a checkpoint that can continue training, else (-1, why not)."""
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as err:
        return -1, str(err).removeprefix(f"{path}: ")
    missing = [k for k in TRAINING_STATE if k not in ckpt]
    if missing:
        return -1, f"holds weights only (no {', '.join(missing)})"
    return int(ckpt["global_step"]), None


def pick_checkpoint(folder: Path) -> tuple[Path | None, dict[Path, str]]:
    """``last.ckpt`` when it can continue training, else the checkpoint with the most steps
    that can; and why each refused one cannot.

    ``last.ckpt`` wins even where ``best.ckpt`` is a step newer (a kill between the two
    writes of one validation): every checkpoint holds a whole state, so continuing from the
    older one replays the same steps and rewrites the same ``best.ckpt``.
    """
    found, found_step, refused = None, -1, {}
    for path in sorted(folder.glob("*.ckpt")):
        step, why = _resumable(path)
        if why is not None:
            refused[path] = why
        elif path.name == LAST:
            return path, refused
        elif step > found_step:
            found, found_step = path, step
    return found, refused


def resume_checkpoint(resume: bool | str | None, run_dir: str | Path) -> Path | None:
    """The checkpoint a run continues from, or None to start from scratch.

    ``resume``: None/False (start from scratch); True (the run folder ``run_dir``, which
    may have no checkpoint yet: then the run starts from scratch); a run folder; or a
    checkpoint file. A damaged ``last.ckpt`` falls back to the newest loadable checkpoint
    beside it (logged); when there is none, a one-line :class:`CheckpointError`.
    """
    if resume in (None, False, "", "false", "False"):
        return None
    fresh_ok = resume is True or resume in ("true", "True")
    target = Path(run_dir) if fresh_ok else Path(str(resume)).expanduser()
    if target.is_file() and target.name != LAST:  # a checkpoint named on purpose
        why = _resumable(target)[1]
        if why is not None:
            raise CheckpointError(f"resume={target}: {why}")
        return target
    if target.is_file() or (target.name == LAST and target.parent.is_dir()):
        folder = target.parent
    elif target.is_dir():
        folder = target / "checkpoints" if (target / "checkpoints").is_dir() else target
    elif fresh_ok:
        folder = target / "checkpoints"
    else:
        raise CheckpointError(f"resume={target}: no such checkpoint file or run folder")
    sweep_stale(folder)  # temporary files of writes that a kill interrupted
    found, refused = pick_checkpoint(folder) if folder.is_dir() else (None, {})
    last = folder / LAST
    if found is not None:
        if last in refused:
            log.warning("resume: %s is unusable (%s); continuing from %s, the newest loadable "
                        "checkpoint", last, refused[last], found.name)
        else:
            log.info("resume: continuing from %s", found)
        return found
    if refused:
        path, why = next(iter(refused.items())) if last not in refused else (last, refused[last])
        raise CheckpointError(f"resume: no loadable checkpoint in {folder}: {path.name}: {why}")
    if fresh_ok:
        log.info("resume: no checkpoint in %s yet; starting from the beginning", folder)
        return None
    raise CheckpointError(f"resume={target}: no checkpoint (*.ckpt) in {folder}")


def check_same_run(path: Path, hparams: dict[str, Any],
                   defaults: dict[str, Any] | None = None) -> None:
    """Refuse to continue from a checkpoint written by a different model or data.

    ``defaults``: the constructor's default of each setting, which a checkpoint written
    before that setting existed was trained with (so it is not another configuration)."""
    stored = {**(defaults or {}), **read_checkpoint(path)["hyper_parameters"]}
    differ = [k for k in sorted(set(stored) | set(hparams)) if stored.get(k) != hparams.get(k)]
    if differ:
        shown = ", ".join(f"{k}={stored.get(k)!r} there, {hparams.get(k)!r} here"
                          for k in differ[:2] if k != "data_spec")
        raise CheckpointError(
            f"resume: {path} was written by another configuration (differs in "
            f"{', '.join(differ)}{': ' + shown if shown else ''}); resume with the run's own "
            "settings (its config.yaml)")


def keep_earlier_log(log_file: str | Path) -> Path | None:
    """Move the curve an interrupted attempt logged (``metrics.csv``) aside as
    ``metrics.attempt-K.csv`` before a resumed run starts a new one (a CSV logger
    replaces the file it finds); returns the new name, or None when there was none."""
    log_file = Path(log_file)
    if not log_file.is_file() or rank_zero_only.rank != 0:
        return None  # in a DDP run the rank-0 process moves it
    k = 1 + len(list(log_file.parent.glob(f"{log_file.stem}.attempt-*{log_file.suffix}")))
    kept = log_file.with_name(f"{log_file.stem}.attempt-{k}{log_file.suffix}")
    try:
        log_file.rename(kept)
    except FileNotFoundError:  # moved meanwhile by another process of the run
        return None
    log.info("resume: the interrupted attempt's log is kept as %s", kept)
    return kept
