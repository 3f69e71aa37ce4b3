"""Shared fixtures: tiny synthetic series and the real config tree, shrunk by overrides."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import train  # registers the ${project_root:} resolver

CONFIGS = Path(train.__file__).resolve().parent / "configs"

# A small net (R = 1 + 2 * (1 + 2 + 4) = 15, and a 15-lag linear path) and short windows.
TINY_MODEL = ["model.channels=8", "model.skip_channels=8", "model.dilations=[1,2,4]",
              "model.linear_lags=15", "model.feature_lags=3", "model.level_window=5"]
TINY = ["trainer=tiny", "horizon=6", "data.span=32", "data.train_stride=16",
        "eval_batch_size=64", *TINY_MODEL]


def make_series(n: int = 24 * 40, ids: tuple[str, ...] = ("A", "B"), seed: int = 0,
                start: str = "2020-01-01") -> pd.DataFrame:
    """Hourly temperature-like series: daily cycle + AR noise, one covariate."""
    rng = np.random.default_rng(seed)
    frames = []
    t = pd.date_range(start, periods=n, freq="h", tz="UTC")
    for k, name in enumerate(ids):
        noise = np.cumsum(rng.normal(0, 0.3, n)) * 0.2
        daily = 8 * np.sin(2 * np.pi * (np.arange(n) % 24) / 24 + k)
        temp = 50 + daily + noise
        frames.append(pd.DataFrame({
            "station": name,
            "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temp": np.round(temp, 3),
            "hum": np.round(60 + 10 * np.cos(2 * np.pi * np.arange(n) / 24), 3),
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def series_csv(tmp_path: Path) -> Path:
    path = tmp_path / "series.csv"
    make_series().to_csv(path, index=False)
    return path


def csv_overrides(path: Path) -> list[str]:
    return ["data=csv", f"data.path={path}", "data.time_column=time", "data.target=temp",
            "data.covariates=[hum]", "data.series_id=station"]


def compose_train(overrides: list[str]) -> DictConfig:
    """The real training config tree with overrides, as `python train.py ...` composes it."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.fixture
def tiny_run(tmp_path: Path, series_csv: Path):
    """Train a tiny model on the synthetic CSV; returns (run_dir, metrics)."""
    def run(model: str = "causal", seed: int = 0, name: str | None = None) -> tuple[Path, dict]:
        out = tmp_path / (name or f"run_{model}_{seed}")
        cfg = compose_train([f"model={model}", f"seed={seed}", *TINY, *csv_overrides(series_csv)])
        return out, train.train(cfg, out)
    return run


@pytest.fixture(autouse=True)
def _quiet_lightning():
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    yield
