"""Helpers for the resume and fault tests: tiny runs long enough to interrupt, weight hashes,
snapshots of the checkpoint folder after every write, and the CLI run as a child process."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import TINY, csv_overrides

import train
from forecast.checkpoint_io import AtomicCheckpointIO

# 80 training windows in batches of 32: 3 batches an epoch (the last one short)
STEPS = ["trainer.max_epochs=-1", "trainer.limit_train_batches=null",
         "trainer.check_val_every_n_epoch=null", "model.dropout=0.2"]
# validation every 7 steps, across epoch boundaries (as the default trainer does every 50)
ACROSS = [*STEPS, "trainer.max_steps=40", "trainer.val_check_interval=7", "patience=100",
          "checkpoint_every=2"]
# validation at every epoch end (as trainer=tiny does), early stopping that fires (the
# unscaled level inputs: on this file that net's validation loss turns up within 5 epochs)
EPOCHS = [*STEPS, "trainer.max_steps=-1", "trainer.max_epochs=5", "trainer.val_check_interval=1.0",
          "trainer.check_val_every_n_epoch=1", "patience=1", "checkpoint_every=1",
          "model.level_scale=0"]


def overrides(csv: Path, *extra: str) -> list[str]:
    return [*TINY, *csv_overrides(csv), *extra]


def weights_hash(run_dir: Path) -> str:
    """SHA-256 of the final weights (EMA and raw, in last.ckpt) and of best.ckpt's weights."""
    h = hashlib.sha256()
    for name, keys in (("last", ("state_dict", "current_model_state")), ("best", ("state_dict",))):
        ckpt = torch.load(run_dir / "checkpoints" / f"{name}.ckpt", weights_only=True)
        for key in keys:
            for param, value in sorted((ckpt.get(key) or {}).items()):
                h.update(f"{name}.{key}.{param}".encode())
                h.update(value.numpy().tobytes())
    return h.hexdigest()


def scores(metrics: dict) -> dict:
    """What a run reports, less what differs by nature (wall time, paths)."""
    return {k: v for k, v in metrics.items()
            if k not in ("train_seconds", "refit_seconds", "best_checkpoint",
                         "early_stopped_checkpoint")}


def snapshot_every_write(monkeypatch, into: Path) -> None:
    """Copy the checkpoint folder after every checkpoint write: each copy is what a kill
    right after that write would leave (named ``NNN_<step>_<file>``)."""
    save = AtomicCheckpointIO.save_checkpoint
    count = [0]

    def saving(self, checkpoint, path, storage_options=None):  # noqa: ANN001
        save(self, checkpoint, path, storage_options)
        count[0] += 1
        name = f"{count[0]:03d}_{checkpoint['global_step']}_{Path(path).stem}"
        shutil.copytree(Path(path).parent, into / name)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", saving)


def restore_snapshot(snapshot: Path, run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(snapshot, run_dir / "checkpoints")


def cli(run_dir: Path, args: list[str]) -> list[str]:
    return [sys.executable, str(Path(train.__file__)), f"hydra.run.dir={run_dir}", *args]


def checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["global_step"])
    except Exception:  # not written yet, or being replaced
        return -1


def kill_at_step(cmd: list[str], run_dir: Path, step: int, delay: float,
                 timeout: float = 240) -> int:
    """Start ``cmd``, SIGKILL it ``delay`` seconds after its last.ckpt reaches ``step``;
    return the step of the last.ckpt it left. Fails when the run ends first."""
    # the parent's thread count: the test compares with runs made in this process
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    log = run_dir.with_name(run_dir.name + ".stderr")
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + timeout
    try:
        while checkpoint_step(last) < step:
            if proc.poll() is not None:
                raise AssertionError(f"run ended (rc {proc.returncode}) before step {step}: "
                                     f"{log.read_text()[-1500:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no checkpoint at step {step} within {timeout} s")
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run finished before the kill (step {step})"
    return checkpoint_step(last)
