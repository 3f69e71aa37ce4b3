"""Scale out on Lightning and Hydra: DDP, launchers, simultaneous runs, the logger group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, TINY, compose_train, csv_overrides
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.data import has_iterable_dataset
from test_evaluate import SMALL, compose_evaluate
from torch.utils.data import DataLoader

import evaluate
import train
import training
from forecast.data import EvalBatches

TRAIN = str(Path(train.__file__).resolve())
# a small net that must learn (no ridge-fitted linear path), a fixed step budget
LEARN = ["horizon=6", "data.span=32", "data.train_stride=16", "eval_batch_size=64",
         "model.channels=8", "model.skip_channels=8", "model.dilations=[1,2,4]",
         "model.linear_lags=0", "model.lr=0.01", "trainer.max_steps=40",
         "trainer.val_check_interval=20", "trainer.enable_progress_bar=false",
         "trainer.log_every_n_steps=5"]


def cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, TRAIN, *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


# train.py's Hydra settings (run folder pattern included) without its imports: fast starts
HYDRA_APP = f"""
import hydra
@hydra.main(version_base="1.3", config_path={str(CONFIGS)!r}, config_name="train")
def main(cfg):
    pass
main()
"""


def test_four_simultaneous_launches_get_four_run_folders(tmp_path):
    """Four processes started together, as a parallel launcher starts them: four run
    folders (train.yaml's run folder names carry microseconds)."""
    procs = [subprocess.Popen([sys.executable, "-c", HYDRA_APP, f"seed={i}"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "outputs" / "train").iterdir())
    assert len(runs) == 4 and all(r.name.endswith("_causal") for r in runs)
    seeds = sorted((r / ".hydra" / "overrides.yaml").read_text().split("=")[1].strip()
                   for r in runs)
    assert seeds == ["0", "1", "2", "3"]


def test_ddp_trainer_takes_devices_and_nodes_from_the_command_line():
    cfg = compose_train(["trainer=ddp", "trainer.devices=2", "trainer.num_nodes=1"])
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert type(trainer.strategy).__name__ == "DDPStrategy"
    assert trainer.num_devices == 2 and trainer.num_nodes == 1 and trainer.world_size == 2
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True
    assert compose_train(["trainer=ddp", "trainer.num_nodes=4"]).trainer.num_nodes == 4


def test_only_rank_zero_scores_and_writes(monkeypatch, tmp_path, series_csv):
    """After fitting, a DDP process other than rank 0 returns at once: no metrics.json."""
    cfg = compose_train([*TINY, *csv_overrides(series_csv)])
    monkeypatch.setattr(training, "fit", lambda cfg, out: (None, None, {}))
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert train.train(cfg, tmp_path) == {}
    assert not (tmp_path / "metrics.json").exists()


def compose_with_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_config_composes_without_submitting():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_with_hydra(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                              "trainer.num_nodes=2", "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.nodes, launcher.partition) == (4, 2, "gpu")
    assert compose_with_hydra(["hydra/launcher=slurm"]).hydra.launcher.tasks_per_node == 1
    assert type(instantiate(launcher)).__name__ == "SlurmLauncher"  # built, nothing submitted
    joblib = compose_with_hydra(["hydra/launcher=joblib", "hydra.launcher.n_jobs=4"])
    assert joblib.hydra.launcher.n_jobs == 4


def test_logger_group_defaults_to_csv_in_the_run_folder(tmp_path):
    logger = train.make_logger(compose_train([]), tmp_path)
    assert type(logger).__name__ == "CSVLogger"
    assert Path(logger.log_dir) == tmp_path / "logs"


def test_tensorboard_logger_writes_events_in_the_run_folder(tmp_path):
    pytest.importorskip("tensorboard")
    logger = train.make_logger(compose_train(["logger=tensorboard"]), tmp_path)
    logger.log_metrics({"val/loss": 0.5}, step=1)
    logger.finalize("success")
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_mlflow_logger_keeps_a_file_store_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = train.make_logger(compose_train(["logger=mlflow"]), tmp_path)
    logger.log_metrics({"val/loss": 0.5}, step=1)
    logger.finalize("success")
    metric = list((tmp_path / "mlruns").glob("*/*/metrics/val/loss"))
    assert len(metric) == 1 and metric[0].read_text().split()[1] == "0.5"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, series_csv):
    """2 processes over gloo, batches of 8 each, against one process with batches of 16:
    the same windows per step. Only rank 0 writes; the scores agree within the seed noise
    (0.015 between seeds here), far closer than an untrained net (0.9 worse)."""
    data = [*csv_overrides(series_csv), *LEARN]
    one = cli([*data, "data.batch_size=16", f"hydra.run.dir={tmp_path / 'one'}"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    ddp = cli([*data, "data.batch_size=8", "trainer=ddp", "trainer.devices=2",
               f"hydra.run.dir={tmp_path / 'ddp'}"], tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    run = tmp_path / "ddp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one", "series.csv"]
    assert (run / "train_ddp_process_1.log").is_file()  # the second process ran, here
    assert "test MAE" not in (run / "train_ddp_process_1.log").read_text()
    assert "test MAE" in (run / "train.log").read_text()
    a = json.loads((tmp_path / "one" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    # each process read half of the training windows: as many epochs in 40 steps
    assert (b["global_steps"], b["epochs"]) == (a["global_steps"], a["epochs"]) == (40, 8)
    assert abs(b["test_honest_mae"] - a["test_honest_mae"]) < 0.1
    assert b["test_honest_mae"] < 0.9 * b["test_persistence_mae"]


@pytest.mark.slow
def test_joblib_multirun_of_models_and_seeds_then_evaluate_reports_the_spread(tmp_path,
                                                                             series_csv):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    proc = cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4",
                f"hydra.sweep.dir={sweep}", "model=causal,standard", "seed=0,1", *TINY,
                *csv_overrides(series_csv)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert runs == ["0_causal_seed0", "1_causal_seed1", "2_standard_seed0", "3_standard_seed1"]
    assert all((sweep / r / "metrics.json").is_file() for r in runs)
    cfg = compose_evaluate([f"runs=[{sweep}]", *SMALL])
    entries = evaluate.evaluate(cfg, tmp_path / "eval")
    for name in ("causal", "standard"):
        assert entries[name]["seeds"] == [0, 1]
        assert entries[name]["spread"]["honest_mae"]["n"] == 2
        assert entries[name]["spread"]["honest_mae"]["std"] > 0



def test_evaluation_batches_are_whole_in_every_process_and_shared_by_loader_workers():
    """Lightning gives no DDP sampler to an iterable dataset: each process reads every
    validation batch; a process's loader workers read each batch once."""
    ds = [torch.full((3,), float(i)) for i in range(10)]
    batches = [[0, 1, 2], [3, 4], [5, 6, 7], [8], [9]]
    for workers in (0, 2):
        loader = DataLoader(EvalBatches(ds, batches), batch_size=None, num_workers=workers)
        assert len(loader) == 5 and has_iterable_dataset(loader)
        seen = sorted(b[:, 0].int().tolist() for b in loader)
        assert seen == batches
