"""Field runs end to end: train.py, evaluate.py field mode, forecast.predict on NetCDF."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import compose_train
from fieldfiles import field_overrides, make_field, write_field
from hydra import compose, initialize_config_dir

import evaluate
import forecast
import train
from forecast.fields.data import field_inputs
from forecast.fields.module import load_field_checkpoint
from forecast.module import CheckpointError
from forecast.predict import run


@pytest.fixture(scope="module")
def field_runs(tmp_path_factory):
    """Tiny causal3d and standard3d runs on a synthetic field: {name: (run_dir, metrics)}."""
    tmp = tmp_path_factory.mktemp("field")
    path = write_field(tmp / "f.nc")
    out = {}
    for model in ("causal3d", "standard3d"):
        cfg = compose_train([f"model={model}", *field_overrides(path)])
        out[model] = (tmp / model, train.train(cfg, tmp / model))
    return out


def test_metrics_and_weights_only_checkpoint(field_runs, tmp_path):
    run_dir, m = field_runs["causal3d"]
    assert json.loads((run_dir / "metrics.json").read_text()) == m
    for key in ("model", "causal", "receptive_field", "val_mae", "test_teacher_forced_mae",
                "test_honest_mae", "test_persistence_mae", "epochs", "train_seconds",
                "test_honest_mae_by_horizon"):
        assert key in m
    assert m["receptive_field"] == 7 and len(m["test_honest_mae_by_horizon"]) == 6
    # causal: teacher-forced and honest are the same forecasts; standard: they differ
    assert m["test_max_abs_diff_teacher_forced_vs_honest"] < 1e-3
    assert field_runs["standard3d"][1]["test_max_abs_diff_teacher_forced_vs_honest"] > 1e-2
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    loaded = load_field_checkpoint(ckpt)
    assert isinstance(forecast.load_checkpoint(str(ckpt)), type(loaded))
    assert loaded.hparams.causal and loaded.hparams.data_spec["variable"] == "tas"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match=r"x\.ckpt: not a field checkpoint"):
        load_field_checkpoint(tmp_path / "x.ckpt")


def test_evaluate_field_report(field_runs, tmp_path):
    runs = [str(field_runs[m][0]) for m in ("causal3d", "standard3d")]
    with initialize_config_dir(config_dir=str(train.ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[f"runs=[{','.join(runs)}]",
                                                                "gif_hours=3"])
    result = evaluate.evaluate(cfg, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"report.md", "metrics.json", "maps.png",
                                                    "lead_mae.png", "day.gif"}
    models = result["models"]
    assert set(models) == {"causal3d", "standard3d", "persistence", "seasonal_naive",
                           "grid_linear"}
    c, p = models["causal3d"], models["persistence"]
    assert c["teacher_forced_mae"] == pytest.approx(c["honest_mae"], abs=1e-4)
    assert c["honest_mae"] == pytest.approx(field_runs["causal3d"][1]["test_honest_mae"])
    assert p["honest_mae"] == pytest.approx(field_runs["causal3d"][1]["test_persistence_mae"])
    assert result["audit"]["causal3d"]["future"] == 0
    assert result["audit"]["standard3d"]["future"] == 3  # (R - 1) / 2 with R = 7
    assert "| grid_linear |" in (tmp_path / "report.md").read_text()


def test_predict_netcdf_round_trip(field_runs, tmp_path):
    ckpt = field_runs["causal3d"][0] / "checkpoints" / "best.ckpt"
    good = write_field(tmp_path / "in" / "good.nc", make_field(n=40, seed=3))
    bad_ds = make_field(n=40)
    bad_ds["tas"][5, 0, 0] = np.nan
    write_field(tmp_path / "in" / "bad.nc", bad_ds)
    code = run(ckpt, str(tmp_path / "in"), tmp_path / "out")
    assert code == 1  # one file failed, the good one was still written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.forecast.nc",
                                                                     "summary.csv"]
    assert "bad.nc: variable 'tas', axis 'time' index 5" in (tmp_path / "out" /
                                                              "summary.csv").read_text()
    out = xr.open_dataset(tmp_path / "out" / "good.forecast.nc")
    src = xr.open_dataset(good)
    assert out["tas"].dims == ("lead_time", "lat", "lon") and out["tas"].shape == (6, 6, 7)
    assert out["forecast_reference_time"].values == src["time"].values[-1]
    assert out["forecast_reference_time"].attrs["standard_name"] == "forecast_reference_time"
    assert out["lead_time"].attrs["standard_name"] == "forecast_period"
    np.testing.assert_array_equal(out["time"].values - out["forecast_reference_time"].values,
                                  out["lead_time"].values)
    # the file holds exactly the model's last-step forecast of the last R frames
    model = load_field_checkpoint(ckpt)
    spec, r = model.hparams.data_spec, model.receptive_field
    frames = src["tas"].values[-r:]
    x = field_inputs((frames - spec["mean"]) / spec["std"], src["time"].values[-r:]
                     .astype("datetime64[ns]").astype(np.int64), spec["calendar"])
    with torch.no_grad():
        want = model(torch.from_numpy(x)[None])[0, -1].double().numpy()
    np.testing.assert_allclose(out["tas"].values, want * spec["std"] + spec["mean"], atol=1e-4)
