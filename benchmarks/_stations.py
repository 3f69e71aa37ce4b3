"""Generated hourly CSV files of NYC-like weather for the batch benchmarks, and the
product's default causal model (``configs/model/causal.yaml``) with a data spec fitted on
one of them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast.features import fit_spec  # noqa: E402
from forecast.frame import FrameSpec, read_frame  # noqa: E402
from forecast.module import ForecastModule  # noqa: E402

MODEL_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "model" / "causal.yaml"

COVARIATES = ("dewp", "humid", "pressure", "wind_speed", "wind_dir", "precip", "visib")
BOUNDS = {"temp": (-60.0, 130.0), "dewp": (-80.0, 100.0), "humid": (0.0, 100.0),
          "pressure": (900.0, 1100.0), "wind_speed": (0.0, 150.0), "wind_dir": (0.0, 360.0),
          "precip": (0.0, 10.0), "visib": (0.0, 100.0)}


def station(k: int, hours: int, rng: np.random.Generator) -> pd.DataFrame:
    """``hours`` hourly NYC-like rows of one station."""
    t = pd.date_range("2013-01-01", periods=hours, freq="h", tz="UTC") + pd.Timedelta(
        hours=int(rng.integers(0, 8000)))
    hour = np.arange(hours)
    day = np.sin(2 * np.pi * hour / 24 + rng.uniform(0, 6))
    year = np.sin(2 * np.pi * hour / (24 * 365.25) + rng.uniform(0, 6))
    temp = 50 + 10 * day + 15 * year + rng.normal(0, 1.5, hours)  # bounded, however long
    return pd.DataFrame({
        "origin": f"S{k:04d}", "time_hour": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "temp": temp.round(2), "dewp": (temp - 10 + rng.normal(0, 2, hours)).round(2),
        "humid": rng.uniform(30, 95, hours).round(2),
        "pressure": (1015 + 5 * np.sin(hour / 500)).round(1),
        "wind_speed": rng.gamma(2, 5, hours).round(2),
        "wind_dir": rng.uniform(0, 360, hours).round(0),
        "precip": np.where(rng.random(hours) < 0.05, rng.uniform(0, 0.5, hours), 0).round(2),
        "visib": rng.uniform(2, 10, hours).round(1),
    })


def make_files(folder: Path, n_files: int, hours: int, seed: int = 0) -> list[Path]:
    """``n_files`` CSVs of ``hours`` hourly rows each."""
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n_files):
        paths.append(folder / f"station_{k:04d}.csv")
        station(k, hours, rng).to_csv(paths[-1], index=False)
    return paths


def default_model(path: Path) -> ForecastModule:
    """The default causal model of ``configs/model/causal.yaml`` (seeded, untrained: the
    same layers, lags and level inputs as a default run, so the same work per forecast),
    H = 24, with a data spec fitted on one generated file."""
    frame = read_frame(path, FrameSpec("time_hour", "temp", COVARIATES, "origin", "1h",
                                       bounds=BOUNDS))
    spec = fit_spec(frame, frame.data["timestamp"].max())
    torch.manual_seed(0)
    settings = yaml.safe_load(MODEL_CONFIG.read_text())
    for key in ("_target_", "name", "horizon"):
        settings.pop(key)
    return ForecastModule(n_features=spec.n_features, horizon=24, data_spec=spec.to_dict(),
                          name="causal", **settings).eval()
