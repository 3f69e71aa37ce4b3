"""End to end: train.py composes, trains, checkpoints and scores honestly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_train, csv_overrides
from hydra.errors import ConfigCompositionException

import train
from forecast import load_checkpoint


def test_tiny_causal_run_writes_checkpoints_and_metrics(tiny_run):
    out, metrics = tiny_run("causal")
    for name in ("best.ckpt", "last.ckpt"):
        assert (out / "checkpoints" / name).is_file()
    on_disk = json.loads((out / "metrics.json").read_text())
    for key in ("model", "causal", "receptive_field", "val_mae", "test_teacher_forced_mae",
                "test_honest_mae", "epochs", "train_seconds"):
        assert key in on_disk
    assert on_disk["causal"] is True and on_disk["receptive_field"] == 19
    assert (out / "config.yaml").is_file()
    # causal: both protocols see the same inputs, so they agree to float precision
    assert metrics["test_max_abs_diff_teacher_forced_vs_honest"] < 1e-4
    rel = abs(metrics["test_teacher_forced_mae"] - metrics["test_honest_mae"])
    assert rel <= 1e-3 * metrics["test_honest_mae"]


def test_checkpoint_is_plain_and_reloads(tiny_run):
    out, _ = tiny_run("standard")
    path = out / "checkpoints" / "best.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    torch.load(path, weights_only=True)
    model = load_checkpoint(path)
    assert not model.training
    hp = model.hparams
    assert hp.causal is False and hp.receptive_field == 19 and hp.horizon == 6
    spec = hp.data_spec
    assert spec["calendar"] == ["day", "week"]  # 28 days of training: no time of year
    assert hp.n_features == 2 * len(spec["mean"]) + 2 * len(spec["calendar"])
    x = torch.randn(2, 40, hp.n_features)
    assert model(x).shape == (2, 40, 6)


def test_standard_teacher_forced_differs_from_honest(tiny_run):
    _, metrics = tiny_run("standard")
    assert metrics["test_max_abs_diff_teacher_forced_vs_honest"] > 1e-4


@pytest.mark.parametrize("group,options", [
    ("model", ["causal", "standard"]),
    ("data", ["nyc_weather", "csv"]),
    ("trainer", ["default", "gpu", "tiny"]),
])
def test_every_config_option_composes(group, options, series_csv):
    for option in options:
        extra = csv_overrides(series_csv) if option == "csv" else []
        cfg = compose_train([f"{group}={option}", *extra])
        assert cfg[group]._target_


def test_config_typo_fails_loudly():
    with pytest.raises(ConfigCompositionException):
        compose_train(["model=casual"])
    with pytest.raises(ConfigCompositionException):
        compose_train(["model.chanels=4"])


def test_cli_subprocess_tiny(tmp_path, series_csv):
    out = tmp_path / "cli_run"
    cmd = [sys.executable, str(Path(train.__file__)), f"hydra.run.dir={out}", *TINY,
           *csv_overrides(series_csv)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "causal"
    assert (out / "checkpoints" / "best.ckpt").is_file()
    # the Hydra shell logged the repairs and the model summary into its run folder
    log = (out / "train.log").read_text()
    assert "receptive field 19 steps" in log and "(causal)" in log
