"""The training behind ``train.py``: build data and model from a composed config, fit,
score the best checkpoint on test, write ``metrics.json``.

``train.py`` checks the settings first and imports this module only then (torch and
Lightning take seconds to import); ``train.fit``, ``train.train`` ... are these.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning as L
import numpy as np
from hydra.utils import instantiate
from lightning.pytorch.callbacks import (
    EarlyStopping,
    EMAWeightAveraging,
    ModelCheckpoint,
    RichModelSummary,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from forecast.baselines import Persistence
from forecast.checkpoint_io import AtomicCheckpointIO
from forecast.data import ForecastDataModule
from forecast.evaluation import collect, forecast_origins, station_scores
from forecast.features import DataSpec, series_arrays
from forecast.files import atomic_write_bytes, atomic_write_text, write_json
from forecast.metrics import mae
from forecast.module import ForecastModule, build_defaults, load_checkpoint, read_checkpoint
from forecast.resume import (
    RngState,
    RunCheckpoint,
    StepCheckpoint,
    check_same_run,
    keep_earlier_log,
    resume_checkpoint,
)

log = logging.getLogger("train")


def evaluate_test(model: ForecastModule, dm: ForecastDataModule, batch_size: int) -> dict:
    """Teacher-forced and honest test scores of ``model`` and persistence, same origins."""
    origins = dm.origins["test"]
    tf = forecast_origins(model, dm.arrays, origins, dm.spec, "teacher_forced", dm.span, batch_size)
    hon = forecast_origins(model, dm.arrays, origins, dm.spec, "honest", dm.span, batch_size)
    pers = collect(dm.arrays, origins, Persistence(dm.horizon).predict(dm.arrays, origins), dm.spec)
    return {
        "teacher_forced": station_scores(tf, pers),
        "honest": station_scores(hon, pers),
        "persistence": station_scores(pers, pers),
        "max_abs_diff_tf_honest": float(np.nanmax(np.abs(tf.pred - hon.pred))),
    }


def make_logger(cfg: DictConfig, out_dir: Path) -> Logger | bool:
    """The ``logger`` group's logger, its ``save_dir`` relative to the run folder
    (``logger=null``: none)."""
    if cfg.get("logger") is None:
        return False
    if str(cfg.logger._target_).endswith("MLFlowLogger") and not cfg.logger.get("tracking_uri"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: opt in to files
    return instantiate(cfg.logger, save_dir=str(out_dir / str(cfg.logger.get("save_dir") or "")))


def _start(cfg: DictConfig, out_dir: Path) -> None:
    """Run folder, resolved config and seeds: what every run does first."""
    if cfg.get("resume") and str(cfg.data.get("_target_", "")).endswith("FieldDataModule"):
        raise ValueError(f"resume={cfg.resume}: field runs (data={cfg.data._target_}) do not "
                         "resume; start the run again without resume")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True, verbose=False)


def build(cfg: DictConfig, refit: bool, calendar: list[str] | None = None
          ) -> tuple[ForecastDataModule, ForecastModule]:
    """The data module (set up for fitting) and the net, its linear path at the ridge fit
    on the training origins (with ``refit``: train + validation; ``calendar``: these
    cycles, not the config's)."""
    extra = {} if calendar is None else {"calendar": calendar}
    dm: ForecastDataModule = instantiate(cfg.data, seed=cfg.seed, refit=refit, _convert_="all",
                                         **extra)
    spec = dm.load()
    model: ForecastModule = instantiate(
        cfg.model, n_features=spec.n_features, data_spec=spec.to_dict(), _convert_="all"
    )
    dm.set_history(model.receptive_field - 1)
    dm.setup("fit")
    model.fit_linear(dm.arrays, dm.origins["train"])
    return dm, model


def fit(cfg: DictConfig, out_dir: Path) -> tuple[ForecastModule, ForecastDataModule, dict]:
    """Build data and model from ``cfg``, fit, and return the best checkpoint (on
    val/loss), the data module and what the run did; scores nothing."""
    _start(cfg, out_dir)
    if str(cfg.model.get("_target_", "")).endswith("FieldModule"):
        raise ValueError(f"model={cfg.model.name} is a field net: use data=era5_uk or "
                         "data=field data.path=FILE.nc data.variable=NAME")
    resume_from = resume_checkpoint(cfg.get("resume"), out_dir)  # before any data is read

    # early stopping needs validation out of training: the refit (data.refit) comes after
    dm, model = build(cfg, refit=False)
    for line in dm.frame.repairs.lines():
        log.info("repair: %s", line)
    spec = dm.spec
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: causal=%s, receptive field %d steps, %d parameters, %d features",
             model.hparams.name, model.hparams.causal, model.receptive_field, n_params,
             spec.n_features)

    ckpt_dir = out_dir / "checkpoints"
    kept = ckpt_dir / "early_stopped.ckpt"
    logger = make_logger(cfg, out_dir)
    if resume_from is None:
        kept.unlink(missing_ok=True)  # a stale one from an earlier run in this folder
    else:
        check_same_run(resume_from, dict(model.hparams), build_defaults())
        if (cfg.data.get("refit") and kept.is_file() and resume_from.parent == ckpt_dir
                and rank_zero_only.rank == 0):  # an earlier attempt refit: best.ckpt is
            # the refit net; put the early-stopped one back
            check_same_run(kept, dict(model.hparams), build_defaults())
            atomic_write_bytes(ckpt_dir / "best.ckpt", kept.read_bytes())
        if isinstance(logger, CSVLogger):  # it would replace the interrupted attempt's rows
            keep_earlier_log(Path(logger.log_dir) / "metrics.csv")
    checkpoint = RunCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/loss",
                               mode="min", save_last=True, auto_insert_metric_name=False,
                               enable_version_counter=False, save_on_train_epoch_end=False)
    callbacks = [checkpoint, StepCheckpoint(ckpt_dir, cfg.checkpoint_every), RngState(),
                 # decided at validation end, before the checkpoint written there (whole state)
                 EarlyStopping(monitor="val/loss", mode="min", patience=cfg.patience,
                               check_on_train_epoch_end=False),
                 RichModelSummary(max_depth=2)]
    if cfg.ema_decay > 0:  # validate and checkpoint an exponential moving average of the weights
        callbacks.append(EMAWeightAveraging(decay=cfg.ema_decay))
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(RichProgressBar())
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the training loader shards by rank itself
        default_root_dir=str(out_dir), logger=logger,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm, ckpt_path=resume_from)
    train_seconds = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    best_path = Path(checkpoint.best_model_path)
    if not best_path.is_file():
        raise RuntimeError(f"training wrote no best checkpoint under {ckpt_dir}")
    info = {
        "n_parameters": n_params,
        "epochs": int(trainer.current_epoch),
        "best_epoch_val_loss": float(checkpoint.best_model_score),
        "global_steps": int(trainer.global_step),
        "train_seconds": round(train_seconds, 1),
        "best_checkpoint": str(best_path),
    }
    if cfg.data.get("refit"):
        return refit(cfg, out_dir, best_path, info)
    return load_checkpoint(best_path), dm, info


def refit(cfg: DictConfig, out_dir: Path, early_stopped: Path, info: dict
          ) -> tuple[ForecastModule, ForecastDataModule, dict]:
    """``data.refit``: a fresh net (same seed) trained on train + validation for the step
    count early stopping chose, with scalers and the linear path's ridge fit on those rows;
    it becomes ``best.ckpt``, the early-stopped net ``early_stopped.ckpt``."""
    ckpt = read_checkpoint(early_stopped)
    steps = int(ckpt["global_step"])
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # the validated net's inputs: only the scalers change (calendar: null would otherwise
    # pick its cycles from the longer span)
    chosen = DataSpec.from_dict(ckpt["hyper_parameters"]["data_spec"])
    dm, model = build(cfg, refit=True, calendar=list(chosen.calendar))
    log.info("refit: a fresh net on train + validation (to %s) for %d steps, the early-stopped "
             "count", dm.fit_end.strftime("%Y-%m-%d %H:%M"), steps)
    callbacks = [EMAWeightAveraging(decay=cfg.ema_decay)] if cfg.ema_decay > 0 else []
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(RichProgressBar())
    trainer: L.Trainer = instantiate(
        cfg.trainer, max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=callbacks, plugins=[AtomicCheckpointIO()], enable_checkpointing=False,
        use_distributed_sampler=False, default_root_dir=str(out_dir), logger=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    if trainer.interrupted:
        raise KeyboardInterrupt
    ckpt_dir = early_stopped.parent
    kept = ckpt_dir / "early_stopped.ckpt"
    if trainer.is_global_zero:
        atomic_write_bytes(kept, early_stopped.read_bytes())
    # the weight average (EMA copies it in at the end of fit); weights only, so that a
    # resumed run never continues training from it
    trainer.save_checkpoint(early_stopped, weights_only=True)
    info = {**info, "refit_steps": steps, "refit_seconds": round(time.perf_counter() - start, 1),
            "early_stopped_checkpoint": str(kept)}
    return load_checkpoint(early_stopped), dm, info


def train(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Fit, pick the best checkpoint on val/loss, score it on test; return metrics.json."""
    out_dir = Path(out_dir)
    if str(cfg.data.get("_target_", "")).endswith("FieldDataModule"):
        _start(cfg, out_dir)
        return train_field(cfg, out_dir)
    best, dm, info = fit(cfg, out_dir)
    if rank_zero_only.rank != 0:  # DDP: the other processes trained; rank 0 scores and writes
        return {}
    model = best
    test = evaluate_test(best, dm, cfg.eval_batch_size)
    # validation error of the early-stopped net (a refit net has trained on validation)
    early = info.get("early_stopped_checkpoint")
    chosen = load_checkpoint(early) if early else best
    own = DataSpec.from_dict(chosen.hparams.data_spec)
    val = forecast_origins(chosen, series_arrays(dm.frame, own), dm.origins["val"], own,
                           "teacher_forced", dm.span, cfg.eval_batch_size)
    metrics = {
        "model": model.hparams.name,
        "causal": bool(model.hparams.causal),
        "receptive_field": model.receptive_field,
        "n_parameters": info["n_parameters"],
        "seed": int(cfg.seed),
        "horizon": dm.horizon,
        "val_mae": mae(val.target, val.pred),
        "test_teacher_forced_mae": test["teacher_forced"]["all"]["mae"],
        "test_honest_mae": test["honest"]["all"]["mae"],
        "test_honest_rmse": test["honest"]["all"]["rmse"],
        "test_persistence_mae": test["persistence"]["all"]["mae"],
        "test_max_abs_diff_teacher_forced_vs_honest": test["max_abs_diff_tf_honest"],
        "stations": {
            name: {
                "teacher_forced_mae": test["teacher_forced"][name]["mae"],
                "honest_mae": test["honest"][name]["mae"],
                "persistence_mae": test["persistence"][name]["mae"],
                "honest_mae_by_horizon": test["honest"][name]["mae_by_horizon"],
            }
            for name in test["honest"] if name != "all"
        },
        "test_honest_mae_by_horizon": test["honest"]["all"]["mae_by_horizon"],
        "test_teacher_forced_mae_by_horizon": test["teacher_forced"]["all"]["mae_by_horizon"],
        "test_targets": test["honest"]["all"]["n_targets"],
        **{k: info[k] for k in ("epochs", "best_epoch_val_loss", "global_steps",
                                "train_seconds", "best_checkpoint")},
        **{k: info[k] for k in ("refit_steps", "refit_seconds", "early_stopped_checkpoint")
           if k in info},
        "repairs": dm.frame.repairs.to_dict(),
    }
    write_json(out_dir / "metrics.json", metrics)
    log.info("test MAE (%s): teacher-forced %.3f, honest %.3f, persistence %.3f; per series %s",
             metrics["model"], metrics["test_teacher_forced_mae"], metrics["test_honest_mae"],
             metrics["test_persistence_mae"],
             {k: round(v["honest_mae"], 3) for k, v in metrics["stations"].items()})
    return metrics


def train_field(cfg: DictConfig, out_dir: Path) -> dict:
    """Field runs (``data=era5_uk`` or ``data=field``): the 3-D net over (time, y, x)."""
    from forecast.fields.train import fit_field  # xarray only for field runs

    if not str(cfg.model.get("_target_", "")).endswith("FieldModule"):
        raise ValueError(f"data={cfg.data._target_} is a field: use model=causal3d or "
                         f"model=standard3d (not {cfg.model.name})")
    dm = instantiate(cfg.data, _convert_="all")
    spec = dm.load()
    model = instantiate(cfg.model, n_features=dm.n_features, data_spec=spec, _convert_="all")
    checkpoint = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="best",
                                 monitor="val/loss", mode="min", save_last=True,
                                 auto_insert_metric_name=False)
    callbacks = [checkpoint, EarlyStopping(monitor="val/loss", mode="min", patience=cfg.patience)]
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(RichProgressBar())
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, default_root_dir=str(out_dir),
        logger=make_logger(cfg, out_dir),
        max_time=f"00:00:{int(cfg.field_minutes):02d}:{round(cfg.field_minutes % 1 * 60):02d}",
        val_check_interval=1.0,  # a field validation pass costs several training steps
    )
    return fit_field(dm, model, trainer, checkpoint, out_dir, int(cfg.seed))
