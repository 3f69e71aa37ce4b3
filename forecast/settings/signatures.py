"""Constructor arguments of the classes the config groups name, written out so that a bad
setting is refused before torch and Lightning are imported (seconds of start-up).

Each list must equal the class's real signature; a test compares them. A key missing
here is looked up in the real class (:func:`forecast.settings.rules.arguments`), so a
newer Lightning's extra arguments are still accepted, only later.
"""

from __future__ import annotations

ARGUMENTS: dict[str, tuple[str, ...]] = {
    "forecast.module.ForecastModule": (
        "n_features", "horizon", "causal", "channels", "skip_channels", "kernel_size",
        "dilations", "dropout", "members", "lr", "weight_decay", "linear_lags",
        "feature_lags", "linear_alpha", "linear_only", "linear_lr", "warmup_steps", "cosine",
        "impl", "quantiles", "level_window", "level_features", "level_scale",
        "horizon_weights", "data_spec", "name"),
    "forecast.data.ForecastDataModule": (
        "path", "time_column", "target", "covariates", "series_id", "freq", "time_format",
        "max_gap", "bounds", "splits", "fractions", "horizon", "span", "train_stride",
        "batch_size", "num_workers", "checksum", "calendar", "angular", "refit", "seed"),
    "forecast.fields.module.FieldModule": (
        "n_features", "horizon", "causal", "channels", "kernel_time", "kernel_space",
        "dilations", "lr", "weight_decay", "data_spec", "name"),
    "forecast.fields.data.FieldDataModule": (
        "path", "variable", "time", "y", "x", "checksum", "splits", "fractions", "horizon",
        "span", "train_stride", "crop", "batch_size", "chunk_steps", "max_memory_mb",
        "calendar", "num_workers"),
    "lightning.pytorch.Trainer": (
        "accelerator", "strategy", "devices", "num_nodes", "precision", "logger", "callbacks",
        "fast_dev_run", "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time",
        "limit_train_batches", "limit_val_batches", "limit_test_batches",
        "limit_predict_batches", "overfit_batches", "val_check_interval",
        "check_val_every_n_epoch", "num_sanity_val_steps", "log_every_n_steps",
        "enable_checkpointing", "enable_progress_bar", "enable_model_summary",
        "accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm",
        "deterministic", "benchmark", "inference_mode", "use_distributed_sampler", "profiler",
        "detect_anomaly", "barebones", "plugins", "sync_batchnorm",
        "reload_dataloaders_every_n_epochs", "default_root_dir", "enable_autolog_hparams",
        "model_registry"),
    "lightning.pytorch.loggers.CSVLogger": (
        "save_dir", "name", "version", "prefix", "flush_logs_every_n_steps"),
    "lightning.pytorch.loggers.TensorBoardLogger": (
        "save_dir", "name", "version", "log_graph", "default_hp_metric", "prefix", "sub_dir"),
    "lightning.pytorch.loggers.MLFlowLogger": (
        "experiment_name", "run_name", "tracking_uri", "tags", "save_dir", "log_model",
        "prefix", "artifact_location", "run_id", "synchronous"),
}

# Lightning's registered strategy names (a name not here is looked up in the registry)
STRATEGIES: tuple[str, ...] = (
    "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "ddp_find_unused_parameters_false",
    "ddp_find_unused_parameters_true", "ddp_spawn_find_unused_parameters_false",
    "ddp_spawn_find_unused_parameters_true", "ddp_fork_find_unused_parameters_false",
    "ddp_fork_find_unused_parameters_true", "ddp_notebook_find_unused_parameters_false",
    "ddp_notebook_find_unused_parameters_true", "deepspeed", "deepspeed_stage_1",
    "deepspeed_stage_2", "deepspeed_stage_2_offload", "deepspeed_stage_3",
    "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme", "fsdp", "fsdp_cpu_offload",
    "single_device", "single_xla", "xla_debug", "xla", "single_tpu")
