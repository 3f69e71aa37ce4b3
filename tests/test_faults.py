"""Faults: damaged checkpoints, a full disk, a non-finite loss, and determinism across processes."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_train, csv_overrides, make_series
from resumable import ACROSS, cli, overrides, restore_snapshot, scores, snapshot_every_write
from resumable import weights_hash as run_hash

import train
from forecast import checkpoint_io
from forecast.checkpoint_io import nonfinite_weights
from forecast.cli import one_line_errors
from forecast.files import TMP_MARK
from forecast.module import CheckpointError, ForecastModule, build_defaults
from forecast.resume import check_same_run, resume_checkpoint


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run (validation every 7 steps, across epochs) and a copy of its
    checkpoint folder after every write. Tests rerun in its folder: checkpoints record it,
    and a run resumed elsewhere keeps its weights but not the best-checkpoint record."""
    root = tmp_path_factory.mktemp("reference")
    series_csv = root / "series.csv"
    make_series().to_csv(series_csv, index=False)
    snaps = root / "snaps"
    snaps.mkdir()
    with pytest.MonkeyPatch.context() as m:
        snapshot_every_write(m, snaps)
        metrics = train.train(compose_train(overrides(series_csv, *ACROSS)), root / "run")
    return {"csv": series_csv, "hash": run_hash(root / "run"), "metrics": metrics,
            "snaps": sorted(snaps.iterdir()), "run": root / "run"}


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TMP_MARK in p.name]


def test_truncated_last_ckpt_falls_back_to_the_newest_loadable(reference, caplog):
    # a moment with best.ckpt and a newer last.ckpt beside it: damage last.ckpt
    snap = next(s for s in reversed(reference["snaps"])
                if s.name.endswith("last") and (s / "best.ckpt").is_file())
    run = reference["run"]
    restore_snapshot(snap, run)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    args = overrides(reference["csv"], *ACROSS, "resume=true")
    with caplog.at_level(logging.WARNING, logger="forecast.resume"):
        got = train.train(compose_train(args), run)
    lines = [r.getMessage() for r in caplog.records if r.name == "forecast.resume"]
    assert len(lines) == 1 and "last.ckpt is unusable" in lines[0]
    assert "continuing from best.ckpt" in lines[0]
    # best.ckpt holds a whole training state too: the run still ends identical
    assert run_hash(run) == reference["hash"]
    assert scores(got) == scores(reference["metrics"])


def test_a_checkpoint_of_another_configuration_is_refused(reference):
    restore_snapshot(reference["snaps"][2], reference["run"])
    args = overrides(reference["csv"], *ACROSS, "resume=true", "model.channels=4")
    with pytest.raises(CheckpointError, match=r"written by another configuration \(differs in "
                                              r"channels: channels=8 there, 4 here\)"):
        train.train(compose_train(args), reference["run"])


def test_a_checkpoint_older_than_a_setting_counts_as_that_settings_default(tmp_path):
    path = tmp_path / "old.ckpt"  # written before model.horizon_weights existed
    torch.save({"state_dict": {}, "hyper_parameters": {"channels": 8}}, path)
    defaults = build_defaults()
    assert defaults["horizon_weights"] == "uniform"
    check_same_run(path, {**defaults, "channels": 8}, defaults)
    with pytest.raises(CheckpointError, match=r"differs in horizon_weights: "
                                              r"horizon_weights='uniform' there"):
        check_same_run(path, {**defaults, "channels": 8, "horizon_weights": "inverse_error"},
                       defaults)
    with pytest.raises(CheckpointError, match=r"differs in .*horizon_weights"):
        check_same_run(path, {**defaults, "channels": 8})  # without the defaults


def test_unusable_checkpoints_fail_in_one_line_naming_the_file(tmp_path, caplog):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 half a zip")
    (folder / "best.ckpt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"no loadable checkpoint in .*checkpoints: "
                                              r"last\.ckpt: not a readable checkpoint"):
        resume_checkpoint(True, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"resume=.*best\.ckpt: not a readable "
                                              r"checkpoint \(not a zip-format"):
        resume_checkpoint(str(folder / "best.ckpt"), tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match=r"resume=.*nowhere: no such checkpoint file or run"):
        resume_checkpoint(str(tmp_path / "nowhere"), tmp_path)
    weights_only = folder / "weights.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, weights_only)
    with pytest.raises(CheckpointError, match=r"weights\.ckpt: holds weights only \(no "
                                              r"optimizer_states"):
        resume_checkpoint(str(weights_only), tmp_path)
    # resume=true on a run that wrote no checkpoint yet starts it from the beginning
    with caplog.at_level(logging.INFO, logger="forecast.resume"):
        assert resume_checkpoint(True, tmp_path / "fresh") is None
    assert "starting from the beginning" in caplog.text
    assert resume_checkpoint(None, tmp_path / "run") is None


def test_full_disk_keeps_the_previous_checkpoint_and_resume_ends_identical(reference,
                                                                          monkeypatch):
    real_save, writes = torch.save, []

    def disk_full(obj, f):  # the 4th write runs out of space half way
        writes.append(obj["global_step"])
        if len(writes) == 4:
            f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(checkpoint_io.torch, "save", disk_full)
    run = reference["run"]
    shutil.rmtree(run)
    args = overrides(reference["csv"], *ACROSS)
    with pytest.raises(OSError, match=r"could not write checkpoint .*\.ckpt \(No space left on "
                                      r"device\); the previous checkpoint there is intact"):
        train.train(compose_train(args), run)
    monkeypatch.setattr(checkpoint_io.torch, "save", real_save)
    folder = run / "checkpoints"
    assert _leftovers(folder) == []
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert last["global_step"] == writes[2]  # the write before the failed one, whole
    got = train.train(compose_train([*args, "resume=true"]), run)
    assert run_hash(run) == reference["hash"]
    assert scores(got) == scores(reference["metrics"])


def _fails_in_one_line(caplog, run):
    with caplog.at_level(logging.ERROR, logger="train"), pytest.raises(SystemExit):
        with one_line_errors(train.log, verbose=False):  # what train.py's main() does
            run()
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and "traceback" not in r.getMessage()]


def test_non_finite_loss_stops_at_its_step_in_one_line(tmp_path, series_csv, caplog):
    out = tmp_path / "run"
    cfg = compose_train([*TINY, *csv_overrides(series_csv), "model.lr=1e37", "checkpoint_every=1"])
    errors = _fails_in_one_line(caplog, lambda: train.train(cfg, out))
    assert errors == ["non-finite training loss (inf) at step 1; lower model.lr (now 1e+37) or "
                      "check the input data"]
    written = sorted((out / "checkpoints").glob("*.ckpt"))
    assert written, "the step before the fault was checkpointed"
    for path in written:
        assert nonfinite_weights(torch.load(path, weights_only=True)) == []
    assert not (out / "metrics.json").exists()


def test_non_finite_weights_are_never_written(tmp_path, series_csv, monkeypatch, caplog):
    """Weights that an optimiser step turned to NaN (its loss was finite): the checkpoint
    write is refused, the previous one stays."""
    real, steps = ForecastModule.optimizer_step, []

    def poisoned(self, *args, **kwargs):
        real(self, *args, **kwargs)
        steps.append(1)
        if len(steps) == 3:
            with torch.no_grad():
                self.net.input.weight[0, 0, 0] = float("nan")

    monkeypatch.setattr(ForecastModule, "optimizer_step", poisoned)
    out = tmp_path / "run"
    cfg = compose_train([*TINY, *csv_overrides(series_csv), "checkpoint_every=1"])
    errors = _fails_in_one_line(caplog, lambda: train.train(cfg, out))
    assert len(errors) == 1 and errors[0].startswith("non-finite weights (net.input.weight")
    assert "at step 3: " in errors[0] and "last.ckpt not written" in errors[0]
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 and nonfinite_weights(last) == []


@pytest.mark.slow  # two interpreters; the default suite's kill test compares across processes
def test_same_seed_and_threads_give_identical_weights_in_two_fresh_processes(tmp_path,
                                                                              series_csv):
    args = [*TINY, *csv_overrides(series_csv), "model.dropout=0.2", "seed=3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cli(tmp_path / f"run{i}", args), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
             for i in (1, 2)]  # side by side, each in its own fresh interpreter
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-1500:]
    assert run_hash(tmp_path / "run1") == run_hash(tmp_path / "run2")
