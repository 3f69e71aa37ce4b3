"""Simple structure on any file: a smooth periodic series and a series with level shifts.

The fast checks score the ridge-initialised (untrained) net; the slow ones train the
default model with a short step budget on one year of hourly data and score it
honestly on the test split next to the baselines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compose_train
from hydra.utils import instantiate

import train
from forecast.baselines import Persistence, RidgeLags, SeasonalNaive
from forecast.evaluation import collect, forecast_origins
from forecast.metrics import mae


def periodic(n: int, seed: int = 0) -> np.ndarray:
    """A 24-step cycle plus a little noise."""
    rng = np.random.default_rng(seed)
    return 10 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 0.5, n)


def level_shifts(n: int, seed: int = 0) -> np.ndarray:
    """A level that jumps about every 300 steps, plus noise."""
    rng = np.random.default_rng(seed)
    jumps = np.where(rng.random(n) < 1 / 300, rng.normal(0, 5, n), 0.0)
    return np.cumsum(jumps) + rng.normal(0, 1, n)


def write(path: Path, values: np.ndarray) -> Path:
    t = pd.date_range("2021-01-01", periods=len(values), freq="h", tz="UTC")
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "value": np.round(values, 4)}).to_csv(path, index=False)
    return path


def overrides(path: Path) -> list[str]:
    return ["data=csv", f"data.path={path}", "data.time_column=time", "data.target=value",
            "trainer.enable_progress_bar=false"]


def scores(model, dm) -> dict[str, float]:
    """Honest test MAE of ``model`` and the baselines on the same origins."""
    arrays, origins, spec, h = dm.arrays, dm.origins["test"], dm.spec, dm.horizon
    train_origins = dm.fit_origins(168)  # as the net (data.refit: train + validation)
    out = {"net": forecast_origins(model, arrays, origins, spec, "honest", dm.span, 256)}
    for base in (Persistence(h), SeasonalNaive(h, 24), RidgeLags(h, 168)):
        base.fit(arrays, train_origins)
        out[base.name] = collect(arrays, origins, base.predict(arrays, origins), spec)
    return {k: mae(v.target, v.pred) for k, v in out.items()}


def untrained(path: Path):
    """The default model with its linear path fitted by ridge, before any step."""
    cfg = compose_train(overrides(path))
    dm = instantiate(cfg.data, _convert_="all")
    spec = dm.load()
    model = instantiate(cfg.model, n_features=spec.n_features, data_spec=spec.to_dict(),
                        _convert_="all")
    dm.set_history(model.receptive_field - 1)
    dm.setup("fit")
    model.fit_linear(dm.arrays, dm.origins["train"])
    return model.eval(), dm


def test_untrained_net_fits_a_periodic_series_like_ridge(tmp_path):
    model, dm = untrained(write(tmp_path / "p.csv", periodic(24 * 90)))
    s = scores(model, dm)
    assert s["net"] < s["seasonal_naive"]
    assert s["net"] < 1.10 * s["ridge"]


def test_untrained_net_beats_persistence_on_level_shifts(tmp_path):
    model, dm = untrained(write(tmp_path / "s.csv", level_shifts(24 * 90)))
    s = scores(model, dm)
    assert s["net"] < s["persistence"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["periodic", "level_shifts"])
def test_trained_default_model_fits_simple_structure(tmp_path, kind):
    values = periodic(24 * 365) if kind == "periodic" else level_shifts(24 * 365)
    path = write(tmp_path / f"{kind}.csv", values)
    cfg = compose_train([*overrides(path), "trainer.max_steps=150"])
    best, dm, info = train.fit(cfg, tmp_path / "run")
    s = scores(best, dm)
    if kind == "periodic":
        assert s["net"] < s["seasonal_naive"]
        assert s["net"] < 1.10 * s["ridge"]
    else:
        assert s["net"] < s["persistence"]


def test_univariate_file_with_a_720_step_horizon_trains_scores_and_forecasts(tmp_path):
    """No covariates, horizon 720 (a month of hours): train, honest test score, predict."""
    from conftest import TINY

    from forecast.predict import forecast_files, load_model

    path = write(tmp_path / "u.csv", level_shifts(24 * 250))
    metrics = train.train(compose_train([*overrides(path), *TINY, "horizon=720"]),
                          tmp_path / "run")
    assert len(metrics["test_honest_mae_by_horizon"]) == 720
    assert metrics["test_max_abs_diff_teacher_forced_vs_honest"] < 1e-3
    model, spec = load_model(metrics["best_checkpoint"])
    assert spec.value_columns == ["value"] and model.hparams.horizon == 720
    results = forecast_files(model, [path], tmp_path / "out")
    assert all(r.ok for r in results), [r.reason for r in results]
    out = pd.read_csv(tmp_path / "out" / "u.forecast.csv")
    assert len(out) == 720 and out["step"].tolist() == list(range(1, 721))
