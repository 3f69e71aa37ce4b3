"""Fit a field net, score its best checkpoint on test, write ``metrics.json``.

The metrics carry the same keys as a series run (``test_honest_mae``,
``test_teacher_forced_mae``, ``test_persistence_mae``, ``train_seconds``, ...), over
all grid points of the test maps.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import ModelCheckpoint

from forecast.fields.data import FieldDataModule
from forecast.fields.evaluation import FieldForecasts, field_forecasts, field_scores, last_frames
from forecast.fields.module import FieldModule, load_field_checkpoint
from forecast.files import write_json

log = logging.getLogger(__name__)


def score_test(model: FieldModule, dm: FieldDataModule) -> dict:
    """Teacher-forced, honest and persistence scores on the test origins."""
    o = dm.origins["test"]
    tf = field_forecasts(model, dm.field, dm.spec, o, "teacher_forced", dm.span)
    hon = field_forecasts(model, dm.field, dm.spec, o, "honest")
    pers = FieldForecasts(o, np.repeat(last_frames(dm.field, o)[:, None], dm.horizon, axis=1),
                          hon.target)  # persistence
    return {
        "teacher_forced": field_scores(tf, pers), "honest": field_scores(hon, pers),
        "persistence": field_scores(pers),
        "max_abs_diff": float(np.max(np.abs(tf.pred - hon.pred))),
    }


def fit_field(dm: FieldDataModule, model: FieldModule, trainer: L.Trainer,
              checkpoint: ModelCheckpoint, out_dir: Path, seed: int) -> dict:
    """Train, reload the best checkpoint (weights only), score it; return metrics.json."""
    dm.set_history(model.receptive_field - 1)
    dm.setup("fit")
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: causal=%s, receptive field %d steps, %d parameters, grid %s",
             model.hparams.name, model.hparams.causal, model.receptive_field, n_params,
             dm.field.shape)
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=dm)
    train_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # all threads: the work, whatever the load
    if trainer.interrupted:
        raise KeyboardInterrupt
    best_path = Path(checkpoint.best_model_path)
    if not best_path.is_file():
        raise RuntimeError(f"training wrote no best checkpoint under {checkpoint.dirpath}")
    best = load_field_checkpoint(best_path)
    test = score_test(best, dm)
    val = field_forecasts(best, dm.field, dm.spec, dm.origins["val"], "teacher_forced", dm.span)
    metrics = {
        "model": model.hparams.name,
        "causal": bool(model.hparams.causal),
        "receptive_field": model.receptive_field,
        "n_parameters": n_params,
        "seed": int(seed),
        "horizon": dm.horizon,
        "data": {"path": dm.path, "variable": dm.variable, "units": dm.spec["units"],
                 "grid": list(dm.field.shape), "frames": len(dm.field)},
        "val_mae": field_scores(val)["mae"],
        "test_teacher_forced_mae": test["teacher_forced"]["mae"],
        "test_honest_mae": test["honest"]["mae"],
        "test_honest_rmse": test["honest"]["rmse"],
        "test_persistence_mae": test["persistence"]["mae"],
        "test_max_abs_diff_teacher_forced_vs_honest": test["max_abs_diff"],
        "test_honest_mae_by_horizon": test["honest"]["mae_by_horizon"],
        "test_teacher_forced_mae_by_horizon": test["teacher_forced"]["mae_by_horizon"],
        "test_persistence_mae_by_horizon": test["persistence"]["mae_by_horizon"],
        "test_targets": test["honest"]["n_targets"],
        "epochs": int(trainer.current_epoch),
        "best_epoch_val_loss": float(checkpoint.best_model_score),
        "global_steps": int(trainer.global_step),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "best_checkpoint": str(best_path),
    }
    write_json(Path(out_dir) / "metrics.json", metrics)
    log.info("test MAE (%s, %s): teacher-forced %.3f, honest %.3f, persistence %.3f",
             metrics["model"], dm.spec["units"], metrics["test_teacher_forced_mae"],
             metrics["test_honest_mae"], metrics["test_persistence_mae"])
    return metrics
