"""Quantile checkpoints end to end: training, calibration that reads no training row,
quantile columns in batch and streamed forecast files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, compose_train, csv_overrides, make_series

import train
from forecast.data import ForecastDataModule
from forecast.evaluation.intervals import calibrate, calibration_origins
from forecast.evaluation.protocols import forecast_origins
from forecast.features import DataSpec, FrameSpec, SeriesArrays, fit_spec, series_arrays
from forecast.frame import read_frame
from forecast.module import ForecastModule, load_checkpoint
from forecast.predict import run as predict_run
from forecast.stream.cli import run as stream_run

LEVELS = [0.05, 0.1, 0.5, 0.9, 0.95]
COLUMNS = ["station", "cutoff", "timestamp", "step", "forecast",
           "q0.05", "q0.1", "q0.5", "q0.9", "q0.95"]
H = 4


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """An untrained quantile net (R = 15, a linear path) with a data spec fitted on the
    synthetic series; random head weights so that the quantiles differ."""
    tmp = tmp_path_factory.mktemp("quantiles")
    df = make_series(24 * 6, seed=3)
    df.to_csv(tmp / "fit.csv", index=False)
    fs = FrameSpec("time", "temp", ("hum",), "station", "1h", max_gap=3,
                   bounds={"temp": (-60.0, 130.0)})
    spec = fit_spec(read_frame(tmp / "fit.csv", fs), pd.Timestamp("2030-01-01", tz="UTC"))
    torch.manual_seed(0)
    m = ForecastModule(spec.n_features, H, True, channels=4, skip_channels=4,
                       dilations=[1, 2, 4], members=2, linear_lags=5, feature_lags=3,
                       quantiles=LEVELS, data_spec=spec.to_dict())
    path = tmp / "q.ckpt"
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}, path)
    return path, df


def check_quantile_rows(out: pd.DataFrame) -> None:
    assert list(out.columns) == COLUMNS
    q = out[COLUMNS[5:]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    assert (q[:, -1] > q[:, 0]).all()
    np.testing.assert_allclose(out.forecast, out["q0.5"], rtol=1e-6)


def test_predict_and_stream_write_one_column_per_quantile(tmp_path, ckpt):
    path, df = ckpt
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    assert predict_run(path, src, tmp_path / "p") == 0
    batch = pd.read_csv(tmp_path / "p" / "in.forecast.csv")
    check_quantile_rows(batch)
    assert len(batch) == 2 * H
    # the numbers of the model run by hand on series B's last window
    model = load_checkpoint(path)
    spec = DataSpec.from_dict(model.hparams.data_spec)
    b = series_arrays(read_frame(src, spec.frame_spec()), spec)[1]
    with torch.no_grad():
        q = model.forward_quantiles(torch.from_numpy(b.x[-model.receptive_field:])[None])
    want = spec.to_units(q[0, -1].double().numpy())  # [H, Q]
    np.testing.assert_allclose(batch[batch.station == "B"][COLUMNS[5:]].to_numpy(), want,
                               rtol=1e-5)

    assert stream_run(path, src, tmp_path / "s.csv", follow=False) == 0
    streamed = pd.read_csv(tmp_path / "s.csv")
    check_quantile_rows(streamed)
    last = streamed[streamed.groupby("station").cutoff.transform("max") == streamed.cutoff]
    np.testing.assert_allclose(last[COLUMNS[4:]].to_numpy(), batch[COLUMNS[4:]].to_numpy(),
                               rtol=1e-4)
    # a backtest keeps the actual column after the quantiles
    assert predict_run(path, src, tmp_path / "b", mode="backtest") == 0
    back = pd.read_csv(tmp_path / "b" / "in.forecast.csv")
    assert list(back.columns) == [*COLUMNS, "actual"]


def perturbed(arrays: list[SeriesArrays], before: pd.Timestamp, seed: int) -> list[SeriesArrays]:
    """Copies with every input and target at rows before ``before`` replaced by noise."""
    rng = np.random.default_rng(seed)
    out = []
    for a in arrays:
        rows = a.times < before.value
        x, y = a.x.copy(), a.y.copy()
        x[rows] = rng.normal(size=x[rows].shape).astype(x.dtype)
        y[rows] = rng.normal(size=y[rows].shape).astype(y.dtype)
        out.append(SeriesArrays(a.name, a.times, x, y, a.segment))
    return out


def test_calibration_never_reads_training_rows(tmp_path, ckpt):
    path, _ = ckpt
    model = load_checkpoint(path)
    csv = tmp_path / "long.csv"
    make_series(24 * 30).to_csv(csv, index=False)
    dm = ForecastDataModule(str(csv), time_column="time", target="temp", covariates=["hum"],
                            series_id="station", horizon=H,
                            splits={"train": ["2020-01-01", "2020-01-15"],
                                    "val": ["2020-01-16", "2020-01-23"],
                                    "test": ["2020-01-24", "2020-01-30"]})
    dm.load()
    spec = DataSpec.from_dict(model.hparams.data_spec)
    arrays = series_arrays(dm.frame, spec)
    history = model.receptive_field - 1
    val_start, val_end = dm.splits["val"]

    def offsets(arr: list[SeriesArrays], days: float) -> np.ndarray:
        window = calibration_origins(arr, dm.split_origins("val", history), val_start,
                                     val_end - pd.Timedelta(days=days), history)
        for a, o in zip(arr, window, strict=True):  # every row it reads is in validation
            assert len(o) and (a.times[o - history] >= val_start.value).all()
        fc = forecast_origins(model, arr, window, spec, "honest", quantiles=True)
        return calibrate(fc, LEVELS).offsets

    # a window as long as validation: its first origins' history would reach training,
    # so they are left out
    full = offsets(arrays, 8)
    np.testing.assert_array_equal(offsets(perturbed(arrays, val_start, 1), 8), full)
    # teeth: perturbing validation rows does move the offsets
    assert not np.array_equal(offsets(perturbed(arrays, val_end, 1), 8), full)


def test_online_and_tracked_calibration_never_read_training_rows(tmp_path, ckpt):
    """The moving window and coverage tracking start from the first validation origin
    whose input window lies in validation: noise in every training row (target and
    covariate) leaves their test intervals exactly as they were; noise in validation
    rows moves them."""
    from forecast.report.intervals import quantile_run

    path, _ = ckpt
    model = load_checkpoint(path)
    base = make_series(24 * 30)
    splits = {"train": ["2020-01-01", "2020-01-15"], "val": ["2020-01-16", "2020-01-23"],
              "test": ["2020-01-24", "2020-01-30"]}

    def intervals(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
        frame.to_csv(tmp_path / name, index=False)
        dm = ForecastDataModule(str(tmp_path / name), time_column="time", target="temp",
                                covariates=["hum"], series_id="station", horizon=H,
                                splits=splits)
        dm.load()
        test = dm.split_origins("test", model.receptive_field - 1)
        q = quantile_run(model, dm, test, 4.0, 256, rate=0.2)
        return q.honest_rolling.pred, q.honest_tracked.pred

    def noisy(before: str, seed: int) -> pd.DataFrame:
        out = base.copy()
        rows = pd.to_datetime(out["time"], utc=True) < pd.Timestamp(before, tz="UTC")
        rng = np.random.default_rng(seed)
        out.loc[rows, "temp"] = rng.normal(50, 20, rows.sum())
        out.loc[rows, "hum"] = rng.normal(50, 20, rows.sum())
        return out

    rolling, tracked = intervals(base, "base.csv")
    r2, t2 = intervals(noisy("2020-01-16", 1), "train_noise.csv")
    np.testing.assert_array_equal(r2, rolling)
    np.testing.assert_array_equal(t2, tracked)
    r3, t3 = intervals(noisy("2020-01-22", 2), "val_noise.csv")  # teeth
    assert not np.array_equal(r3, rolling) and not np.array_equal(t3, tracked)


@pytest.mark.slow
def test_train_quantile_model_end_to_end(tmp_path, series_csv):
    cfg = compose_train([*TINY, *csv_overrides(series_csv),
                         "model.quantiles=[0.05,0.1,0.5,0.9,0.95]"])
    metrics = train.train(cfg, tmp_path / "run")
    model = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert model.hparams.quantiles == LEVELS
    assert np.isfinite(metrics["test_honest_mae"])
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        str(tmp_path / "run" / "checkpoints" / "best.ckpt")) == []


@pytest.mark.slow  # two ONNX exports: minutes on a busy 2-core machine
def test_onnx_export_carries_the_quantiles(tmp_path, ckpt):
    pytest.importorskip("onnxscript", reason="ONNX export needs the export extra (.[export])")
    ort = pytest.importorskip("onnxruntime", reason="the parity check needs the export extra")
    from forecast.export import export_onnx
    from forecast.stream import init_state

    model = load_checkpoint(ckpt[0])
    export_onnx(model, tmp_path)
    x = torch.randn(2, 30, model.hparams.n_features)
    with torch.no_grad():
        q = model.forward_quantiles(x)
        state = init_state(model, x[:, :29])
    median, got = ort.InferenceSession(str(tmp_path / "model.onnx")).run(
        None, {"x": x.numpy()})
    np.testing.assert_allclose(got, q.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(median, q[..., 2].numpy(), rtol=0, atol=1e-5)
    step = ort.InferenceSession(str(tmp_path / "step.onnx"))
    feeds = {f"state_{j}": s.numpy() for j, s in enumerate(state)}
    median, got, *_ = step.run(None, {"x_t": x[:, 29].numpy(), **feeds})
    np.testing.assert_allclose(got, q[:, 29].numpy(), rtol=0, atol=1e-5)


def evaluate_quantile_run(tmp_path: Path, ckpt_path: Path, val: list[str],
                          refit: bool = False) -> tuple[dict, Path]:
    """``evaluate``'s report on the quantile checkpoint over a 30-day series whose
    validation split is ``val``; -> (metrics.json, the report folder)."""
    import json

    import yaml

    from forecast.baselines import Persistence
    from forecast.evaluation.runs import load_run
    from forecast.report.comparison import ReportOptions, compare_runs

    csv = tmp_path / "long.csv"
    make_series(24 * 30).to_csv(csv, index=False)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(ckpt_path.read_bytes())
    (run_dir / "metrics.json").write_text("{}")
    data = {"_target_": "forecast.data.ForecastDataModule", "path": str(csv),
            "time_column": "time", "target": "temp", "covariates": ["hum"],
            "series_id": "station", "horizon": H, "refit": refit,
            "splits": {"train": ["2020-01-01", "2020-01-15"], "val": val,
                       "test": ["2020-01-24", "2020-01-30"]}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(
        {"data": data, "model": {"name": "causal", "causal": True}, "seed": 0}))
    out = tmp_path / "eval"
    compare_runs([load_run(run_dir)], {"persistence": Persistence(H)}, out,
                 ReportOptions(station="A", calibration_days=4, audit_rows=8))
    return json.loads((out / "metrics.json").read_text()), out


def test_evaluate_skips_calibration_when_validation_is_shorter_than_the_context(
        tmp_path, ckpt, caplog):
    """No validation origin has its input window (R - 1 = 14 steps) inside a 10-hour
    validation split: the raw intervals are still scored, calibration is skipped with one
    warning that says why, and no calibrated figure is reported."""
    with caplog.at_level("WARNING"):
        metrics, out = evaluate_quantile_run(tmp_path, ckpt[0],
                                             ["2020-01-16T00:00", "2020-01-16T09:00"])
    c = metrics["causal"]
    assert 0 <= c["coverage_90"] <= 1 and 0 <= c["coverage_80"] <= 1
    assert not any(k.startswith("coverage_") and k.endswith(("_calibrated", "_rolling",
                                                             "_tracked")) for k in c)
    assert c["intervals"]["calibration"] == [None]
    assert any("no conformal calibration: no validation origin has its 14 steps of input"
               in r.getMessage() for r in caplog.records)
    report = (out / "report.md").read_text()
    assert "| causal, honest, raw" in report and "calibrated" not in report.split(
        "## Probabilistic forecasts")[1].split("\n\n", 2)[1]


def test_evaluate_skips_calibration_of_a_net_refit_on_validation(tmp_path, ckpt, caplog):
    """data.refit: the net trained on validation, whose residuals would make the offsets
    too small; the raw intervals are scored and one warning says why."""
    with caplog.at_level("WARNING"):
        metrics, _ = evaluate_quantile_run(tmp_path, ckpt[0], ["2020-01-16", "2020-01-23"],
                                           refit=True)
    c = metrics["causal"]
    assert c["intervals"]["calibration"] == [None] and "coverage_90" in c
    assert not any(k.endswith(("_calibrated", "_rolling", "_tracked")) for k in c)
    assert any("no conformal calibration: the net was refit on validation" in r.getMessage()
               for r in caplog.records)


def test_evaluate_reports_coverage_calibration_and_figures(tmp_path, ckpt):
    metrics, out = evaluate_quantile_run(tmp_path, ckpt[0], ["2020-01-16", "2020-01-23"])
    c = metrics["causal"]
    for key in ("coverage_80", "coverage_90", "coverage_80_calibrated", "coverage_90_calibrated",
                "coverage_80_rolling", "coverage_90_rolling", "coverage_80_tracked",
                "coverage_90_tracked"):
        assert 0 <= c[key] <= 1
    offsets = c["intervals"]["calibration"][0]["offsets"]
    assert any(v != 0 for off in offsets.values() for v in off)  # calibration moved them
    cal = c["intervals"]["honest_calibrated"]["intervals"]["90"]["width"]
    assert cal != c["intervals"]["honest"]["intervals"]["90"]["width"]
    assert 0 <= metrics["persistence"]["coverage_90"] <= 1
    honest = c["intervals"]["honest"]
    assert list(honest["pinball"]) == ["q0.05", "q0.1", "q0.5", "q0.9", "q0.95"]
    assert len(honest["intervals"]["80"]["coverage_by_horizon"]) == H
    assert c["intervals"]["calibration"][0]["n_origins"] > 0
    report = (out / "report.md").read_text()
    assert "## Probabilistic forecasts" in report
    for row in ("causal, honest, raw", "causal, honest, calibrated ",
                "causal, honest, calibrated online", "causal, honest, calibrated by tracking",
                "persistence-error interval (baseline)"):
        assert f"| {row}" in report, row
    assert (out / "quantile_fan_chart.png").stat().st_size > 0
    assert (out / "quantile_reliability.png").stat().st_size > 0
