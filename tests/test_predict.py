"""Batch forecasting: long-format outputs, bad input file by file, atomic writes, safe loading."""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, compose_train, csv_overrides, make_series

import train
from forecast import predict
from forecast.features import DataSpec, series_arrays
from forecast.frame import read_frame
from forecast.module import CheckpointError, ForecastModule, load_checkpoint
from forecast.predict import checks, forecast_files, outputs, run, runner
from forecast.predict.batching import Unit, forecast_units
from forecast.predict.outputs import ForecastWriter

ROOT = Path(train.__file__).resolve().parent
H, R = 6, 19  # the tiny model's horizon and receptive field
BOUNDS = "+data.bounds.temp=[-60,130]"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny causal model trained on two synthetic hourly series (temp bounded)."""
    tmp = tmp_path_factory.mktemp("train")
    csv = tmp / "series.csv"
    make_series().to_csv(csv, index=False)
    out = tmp / "run"
    train.train(compose_train([*TINY, *csv_overrides(csv), BOUNDS]), out)
    return out / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def model(ckpt) -> ForecastModule:
    return load_checkpoint(ckpt)


def good_frame(n: int = 48, seed: int = 1, start: str = "2020-03-01") -> pd.DataFrame:
    return make_series(n, seed=seed, start=start)


def save(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def read_out(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, parse_dates=["cutoff", "timestamp"])


# ---------------------------------------------------------------- forecasts


def test_forecast_long_format_matches_the_model(tmp_path, model):
    src = save(good_frame(), tmp_path / "in.csv")
    results = forecast_files(model, [src], tmp_path / "out")
    assert [(r.series, r.status, r.forecasts) for r in results] == [("A", "ok", 1), ("B", "ok", 1)]
    out = read_out(tmp_path / "out" / "in.forecast.csv")
    assert list(out.columns) == ["station", "cutoff", "timestamp", "step", "forecast"]
    assert len(out) == 2 * H
    last = pd.Timestamp("2020-03-01", tz="UTC") + pd.Timedelta(hours=47)
    assert (out["cutoff"] == last).all()
    assert (out["timestamp"] == last + pd.to_timedelta(out["step"], unit="h")).all()
    # the same numbers as the model run by hand on the last R steps of series B
    spec = DataSpec.from_dict(model.hparams.data_spec)
    b = series_arrays(read_frame(src, spec.frame_spec()), spec)[1]
    with torch.no_grad():
        y = model(torch.from_numpy(b.x[None, -R:]))[0, -1].numpy()
    np.testing.assert_allclose(out[out.station == "B"]["forecast"], spec.to_units(y), rtol=1e-5)


def test_batches_across_files_equal_one_file_at_a_time(tmp_path, model):
    paths = [save(good_frame(40 + 7 * k, seed=k), tmp_path / f"f{k}.csv") for k in range(4)]
    forecast_files(model, paths, tmp_path / "together")
    forecast_files(model, paths, tmp_path / "apart", batch_windows=1)
    for p in paths:
        a = read_out(tmp_path / "together" / f"{p.stem}.forecast.csv")
        b = read_out(tmp_path / "apart" / f"{p.stem}.forecast.csv")
        pd.testing.assert_frame_equal(a, b)


def test_backtest_actuals_metrics_and_dense_equals_honest(tmp_path, model):
    src = save(good_frame(80), tmp_path / "bt.csv")
    assert run(model_path := tmp_path / "m.ckpt", [src], tmp_path / "x") == 2  # no such ckpt
    assert not model_path.exists()
    results = forecast_files(model, [src], tmp_path / "dense", mode="backtest")
    n_origins = 80 - (R - 1) - H  # every origin with R - 1 steps before it and H after
    assert [r.forecasts for r in results] == [n_origins, n_origins]
    out = read_out(tmp_path / "dense" / "bt.forecast.csv")
    truth = good_frame(80).assign(timestamp=lambda d: pd.to_datetime(d.time, utc=True))
    merged = out.merge(truth, left_on=["station", "timestamp"], right_on=["station", "timestamp"])
    np.testing.assert_allclose(merged["actual"], merged["temp"], rtol=1e-5)
    # a causal model scored densely gives the one-window-per-origin numbers
    spec = DataSpec.from_dict(model.hparams.data_spec)
    arrays = series_arrays(read_frame(src, spec.frame_spec()), spec)
    o = np.arange(R - 1, 80 - H)
    work = [Unit(0, s, o, s == 1) for s in range(2)]
    dense = forecast_units(model, work, arrays, H, dense=True, batch_size=7)
    honest = forecast_units(model, work, arrays, H, dense=False, batch_size=7)
    np.testing.assert_allclose(np.concatenate(dense), np.concatenate(honest), rtol=1e-4,
                               atol=1e-4)
    assert np.allclose(spec.to_units(np.concatenate(dense).astype(np.float64)).ravel(),
                       out["forecast"], rtol=1e-5, atol=1e-4)
    predict.write_summary(results, tmp_path / "dense", "backtest")
    metrics = pd.read_csv(tmp_path / "dense" / "metrics.csv")
    assert list(metrics["series"]) == ["A", "B", "*"]
    assert metrics["mae"].iloc[-1] == pytest.approx(
        (out["forecast"] - out["actual"]).abs().mean(), rel=1e-4)


def test_series_names_with_commas_and_quotes_survive(tmp_path, model):
    name = 'New York, "JFK"'
    src = save(make_series(48, ids=(name, "B"), start="2020-03-01"), tmp_path / "q.csv")
    assert all(r.ok for r in forecast_files(model, [src], tmp_path / "o"))
    out = read_out(tmp_path / "o" / "q.forecast.csv")
    assert out["station"].unique().tolist() == [name, "B"] and len(out) == 2 * H


def test_repairs_unsorted_rows_bom_and_out_of_bounds_are_accepted(tmp_path, model):
    df = good_frame()
    ref = forecast_files(model, [save(df, tmp_path / "ref.csv")], tmp_path / "o")
    shuffled = df.sample(frac=1.0, random_state=0)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode())
    oob = df.copy()
    oob.loc[len(oob) - 5, "temp"] = 1048.0  # outside bounds: missing, carried forward
    paths = [save(shuffled, tmp_path / "shuffled.csv"), bom, save(oob, tmp_path / "oob.csv")]
    results = forecast_files(model, paths, tmp_path / "o")
    assert all(r.ok for r in ref + results), [r.reason for r in results]
    first = read_out(tmp_path / "o" / "ref.forecast.csv")
    for name in ("shuffled", "bom"):
        pd.testing.assert_frame_equal(read_out(tmp_path / "o" / f"{name}.forecast.csv"), first)
    assert np.isfinite(read_out(tmp_path / "o" / "oob.forecast.csv")["forecast"]).all()


# ---------------------------------------------------------------- bad input, file by file


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _set(col: str, row: int, value: object) -> Callable[[pd.DataFrame], bytes]:
    def make(df: pd.DataFrame) -> bytes:
        df = df.astype({col: object})
        df.loc[row, col] = value
        return _csv(df)
    return make


def _nan_run(df: pd.DataFrame) -> bytes:
    df = df.copy()
    a = df.index[df.station == "A"]
    df.loc[a[-20:-3], "temp"] = np.nan  # 17 > max_gap = 12, inside the last R steps
    return _csv(df)


def _duplicate(df: pd.DataFrame) -> bytes:
    return _csv(pd.concat([df, df.iloc[[5]]], ignore_index=True))


def _irregular(df: pd.DataFrame) -> bytes:
    df = df.copy()
    df.loc[3, "time"] = "2020-03-01T03:17:00Z"
    return _csv(df)


def _ambiguous(df: pd.DataFrame) -> bytes:
    return _csv(df[np.isin(df.index % 6, [0, 1, 3])])  # steps of 1h, 2h, 3h in turn


def _regrid(freq: str) -> Callable[[pd.DataFrame], bytes]:
    def make(df: pd.DataFrame) -> bytes:
        n = int((df.station == "A").sum())
        t = pd.date_range("2020-03-01", periods=n, freq=freq, tz="UTC")
        return _csv(df.assign(time=np.tile(t.strftime("%Y-%m-%dT%H:%M:%SZ"), 2)))
    return make


BAD_CASES: dict[str, tuple[Callable[[pd.DataFrame], bytes], str, str]] = {
    # name: (make file from a good frame, series of the failed row, reason regex)
    "empty": (lambda df: b"", "*", r"empty file; expected a header line"),
    "header_only": (lambda df: b"station,time,temp,hum\n", "*", r"header only, no data rows"),
    "missing_time": (lambda df: _csv(df.drop(columns="time")), "*",
                     r"column 'time' not found; expected columns \['time', 'temp', 'hum', "
                     r"'station'\]"),
    "missing_target": (lambda df: _csv(df.rename(columns={"temp": "tmp"})), "*",
                       r"column 'temp' not found.*did you mean 'temp' -> 'tmp'"),
    "missing_covariate": (lambda df: _csv(df.drop(columns="hum")), "*",
                          r"column 'hum' not found; expected columns"),
    "other_checkpoint_columns": (
        lambda df: _csv(df.rename(columns={"time": "Date Time", "temp": "T (degC)",
                                           "hum": "rh (%)"})),
        "*", r"columns 'time', 'temp', 'hum' not found; expected columns \['time', 'temp', "
             r"'hum', 'station'\], the header has \['station', 'Date Time'.*the checkpoint was "
             r"trained on those columns: rename the file's columns to match"),
    "non_numeric": (_set("hum", 7, "n/a?"), "A",
                    r"column 'hum', row 8 \(line 9\): value 'n/a\?' is not a number"),
    "duplicate_timestamps": (_duplicate, "A",
                             r"column 'time', row 97.*duplicate timestamp 2020-03-01 05:00:00"
                             r"\+00:00 in series 'A' \(also row 6\)"),
    "unparseable_time": (_set("time", 3, "03/01/2020 03:00 PM"), "A",
                         r"column 'time', row 4.*cannot read timestamp '03/01/2020 03:00 PM'"),
    "irregular": (_irregular, "A", r"row 4.*irregular timestamp 2020-03-01 03:17:00"),
    "ambiguous_frequency": (_ambiguous, "*",
                            r"column 'time': only 16 of 46 steps between rows are 1h, the "
                            r"checkpoint's step; the most common is 1h.*irregular or ambiguous"),
    "finer_frequency": (_regrid("10min"), "*", r"column 'time', row 2 \(line 3\): irregular "
                        r"timestamp.*10min after the previous row, not a multiple of the step 1h"),
    "coarser_frequency": (_regrid("1D"), "*", r"only 0 of 94 steps between rows are 1h, the "
                          r"checkpoint's step; the most common is 24h \(94 of 94\)"),
    "short_history": (lambda df: _csv(df[(df.station == "B") | (df.time < "2020-03-01T10")]),
                      "A", r"series 'A': history too short: 10 steps of 1h up to the cutoff "
                      r"2020-03-01T09:00:00\+00:00, the model needs 19 \(its receptive field\)"),
    "long_nan_run": (_nan_run, "A",
                     r"column 'temp', series 'A': 17 missing steps from 2020-03-02 04:00:00\+00:00"
                     r" to 2020-03-02 20:00:00\+00:00, more than max_gap=12, within the 19 steps"),
    "inf": (_set("temp", 30, "inf"), "A", r"column 'temp', row 31.*'inf' is infinite"),
    "impossible_value": (_set("hum", 40, 1e12), "A",
                         r"column 'hum', 2020-03-02T16:00:00\+00:00: impossible value 1e\+12"),
    "wrong_delimiter": (lambda df: df.to_csv(index=False, sep=";").encode(), "*",
                        r"semicolon-delimited; save it comma-separated"),
    "non_utf8": (lambda df: _csv(df).replace(b"A,", "\u00c4,".encode("latin-1"), 1), "*",
                 r"line 2: byte 0xc4 is not UTF-8; re-save the file as UTF-8"),
    "not_a_csv": (lambda df: pickle.dumps(df), "*", r"binary data|not UTF-8"),
    "gzip_damaged": (lambda df: b"\x1f\x8b\x08\x00\x00", "*", r"damaged gzip file"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_file_fails_alone_with_one_line_reason(tmp_path, model, case):
    make, series, match = BAD_CASES[case]
    bad = tmp_path / f"bad_{case}.csv"
    bad.write_bytes(make(good_frame()))
    good = save(good_frame(seed=2), tmp_path / "good.csv")
    results = forecast_files(model, [bad, good], tmp_path / "out")
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1, [(r.series, r.reason) for r in results]
    row = failed[0]
    assert (row.file, row.series) == (str(bad), series)
    assert row.reason.startswith(str(bad)) and "\n" not in row.reason
    assert pd.Series([row.reason]).str.contains(match).all(), row.reason
    assert all(r.ok for r in results if r.file == str(good))
    assert (tmp_path / "out" / "good.forecast.csv").is_file()
    if series == "*":  # a bad file leaves no output; a bad series leaves only the good ones
        assert not (tmp_path / "out" / f"{bad.stem}.forecast.csv").exists()
    else:
        out = read_out(tmp_path / "out" / f"{bad.stem}.forecast.csv")
        assert set(out["station"]) == {"B"}


def test_long_gap_before_the_history_is_fine(tmp_path, model):
    df = good_frame(80)
    a = df.index[df.station == "A"]
    df.loc[a[10:30], "temp"] = np.nan  # 20 missing steps, then 50 > R clean ones
    results = forecast_files(model, [save(df, tmp_path / "g.csv")], tmp_path / "o")
    assert all(r.ok for r in results)


def test_output_name_clash_fails_the_second(tmp_path, model):
    (tmp_path / "x").mkdir()
    a = save(good_frame(), tmp_path / "f.csv")
    b = save(good_frame(), tmp_path / "x" / "f.csv")
    results = forecast_files(model, [a, b], tmp_path / "o")
    assert [r.ok for r in results] == [True, True, False]
    assert "would overwrite that of" in results[-1].reason


def test_inputs_glob_folder_list_and_unmatched(tmp_path):
    for name in ("a.csv", "b.csv", "a.forecast.csv", "notes.txt"):
        (tmp_path / name).write_text("x")
    files = predict.resolve_inputs(str(tmp_path))
    assert [f.name for f in files] == ["a.csv", "b.csv"]
    files = predict.resolve_inputs([str(tmp_path / "a*.csv"), str(tmp_path / "b.csv")])
    assert [f.name for f in files] == ["a.csv", "a.forecast.csv", "b.csv"]
    for missing in (str(tmp_path / "z*.csv"), str(tmp_path / "z.csv")):
        with pytest.raises(predict.ArgumentError, match=r"names no file.*check the path or glob"):
            predict.resolve_inputs([str(tmp_path / "a.csv"), missing])


# ---------------------------------------------------------------- exit codes, summary


def test_run_exit_codes_and_summary(tmp_path, ckpt):
    good = save(good_frame(), tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    assert run(ckpt, [good], tmp_path / "ok") == 0
    assert run(ckpt, [good, bad], tmp_path / "some") == 1
    summary = pd.read_csv(tmp_path / "some" / "summary.csv", keep_default_na=False)
    assert list(summary.columns) == predict.SUMMARY_COLUMNS
    assert summary[summary.status == "failed"]["file"].tolist() == [str(bad)]
    assert run(ckpt, [good], tmp_path / "m", mode="nowcast") == 2
    assert run(ckpt, [str(tmp_path / "none*.csv")], tmp_path / "n") == 2
    assert run(good, [good], tmp_path / "c") == 2  # a CSV is not a checkpoint
    for d in ("m", "n", "c"):
        assert not (tmp_path / d / "summary.csv").exists()


# ---------------------------------------------------------------- nothing lost


def test_crash_while_writing_leaves_no_partial_output(tmp_path, model, monkeypatch):
    paths = [save(good_frame(seed=k), tmp_path / f"f{k}.csv") for k in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "f1.forecast.csv").write_text("old complete forecast\n")
    real = ForecastWriter.write
    calls = {"n": 0}

    def crash_on_second_file(self, *args, **kwargs) -> None:
        real(self, *args, **kwargs)
        calls["n"] += 1  # one call per series, two series per file
        if calls["n"] == 3:  # the second file's first rows are in its temporary file: die now
            raise KeyboardInterrupt

    monkeypatch.setattr(ForecastWriter, "write", crash_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        forecast_files(model, paths, out, batch_windows=1)
    assert len(read_out(out / "f0.forecast.csv")) == 2 * H  # complete
    assert (out / "f1.forecast.csv").read_text() == "old complete forecast\n"  # kept
    assert not (out / "f2.forecast.csv").exists()
    assert sorted(p.name for p in out.iterdir()) == ["f0.forecast.csv", "f1.forecast.csv"]


def test_sigkill_mid_batch_leaves_only_complete_outputs_and_the_next_run_sweeps(tmp_path, ckpt):
    src = tmp_path / "in"
    src.mkdir()
    text = good_frame().to_csv(index=False)
    for k in range(400):
        (src / f"f{k:03d}.csv").write_text(text)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "forecast.predict", f"checkpoint={ckpt}", f"inputs={src}",
           f"output_dir={out}", f"hydra.run.dir={tmp_path / 'run'}", "batch_size=1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and any(out.glob("*.forecast.csv"))):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    written = sorted(out.glob("*.forecast.csv"))
    assert 0 < len(written) < 400 and not (out / "summary.csv").exists()
    for path in written:  # every visible output is whole; leftovers are hidden temporaries
        assert len(read_out(path)) == 2 * H
    hidden = [p for p in out.iterdir() if p not in written]
    assert all(p.name == ".forecast-outputs" or re.fullmatch(
        rf"\.f\d{{3}}\.forecast\.csv\.cf-tmp-{proc.pid}", p.name) for p in hidden), hidden
    # a stale temporary file (its process is gone) is removed by the next run
    stale = out / f".f000.forecast.csv.cf-tmp-{proc.pid}"
    stale.write_text("half a forecast")
    assert run(ckpt, [src / "f000.csv"], out) == 0
    assert not stale.exists() and not list(out.glob(".*cf-tmp-*"))


def test_write_failure_fails_that_file_only(tmp_path, model, monkeypatch):
    paths = [save(good_frame(seed=k), tmp_path / f"f{k}.csv") for k in range(2)]

    class FullDisk(ForecastWriter):
        def __init__(self, path, *args) -> None:
            if Path(path).name == "f0.forecast.csv":
                raise OSError(28, "No space left on device")
            super().__init__(path, *args)

    monkeypatch.setattr(runner, "ForecastWriter", FullDisk)
    results = forecast_files(model, paths, tmp_path / "o")
    assert [r.ok for r in results] == [False, False, True, True]
    assert "cannot write the forecast ([Errno 28] No space left on device)" in results[0].reason
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["f1.forecast.csv"]


# ---------------------------------------------------------------- checkpoints


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # must not re-open the hole
    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Evil(marker)}}, zipped)
    legacy = tmp_path / "evil_legacy.ckpt"
    legacy.write_bytes(pickle.dumps({"state_dict": _Evil(marker)}))
    for path, expected in ((zipped, r"evil\.ckpt: refused: the file holds objects that "
                                    r"loading would have to execute \(posix\.mkdir\); only "
                                    r"checkpoints of tensors and plain values are read$"),
                           (legacy, r"evil_legacy\.ckpt: not a readable checkpoint \(not a "
                                    r"zip-format PyTorch checkpoint")):
        with pytest.raises(CheckpointError, match=expected):
            load_checkpoint(path)
        assert run(path, [tmp_path], tmp_path / "out") == 2
        assert not marker.exists()
    # the craft has teeth: an unsafe load would have run it
    torch.load(zipped, weights_only=False)
    assert marker.is_dir()


@pytest.mark.parametrize("content", [b"time,temp\n2020-01-01,1\n", b"", b"PK\x03\x04junk"])
def test_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"x\.ckpt: not a readable checkpoint") as err:
        predict.load_model(path)
    assert "weights_only" not in str(err.value)  # no advice to load it unsafely
    with pytest.raises(CheckpointError, match=r"nope\.ckpt: checkpoint not found"):
        predict.load_model(tmp_path / "nope.ckpt")


def test_checkpoint_without_data_spec_is_refused(tmp_path):
    m = ForecastModule(n_features=4, horizon=2, dilations=[1])
    with pytest.raises(CheckpointError, match=r"carries no data spec"):
        predict.model_spec(m, "m.ckpt")
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}, "epoch": 1}, path)
    with pytest.raises(CheckpointError, match=r"not a forecast checkpoint"):
        load_checkpoint(path)


# ---------------------------------------------------------------- the real entry point


def test_cli_subprocess_end_to_end(tmp_path, ckpt):
    good = save(good_frame(), tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("station,time,temp,hum\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "forecast.predict", f"checkpoint={ckpt}",
           f"inputs=['{good}','{bad}']", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    logs = proc.stdout + proc.stderr
    assert "summary: 2 ok, 1 failed" in logs and "header only, no data rows" in logs
    assert len(read_out(out / "good.forecast.csv")) == 2 * H
    assert (out / "summary.csv").is_file() and (tmp_path / "run" / "predict.log").is_file()
    typo = subprocess.run([*cmd[:3], f"inputs={good}", "modee=backtest"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)
    assert typo.returncode == 2, typo.stderr[-2000:]
    assert "modee" in typo.stderr


def test_angular_covariate_checkpoint_forecasts_and_checks_the_right_columns(tmp_path):
    """Wind direction as sin/cos shifts feature columns: checks must index them by name."""
    def with_wind(df: pd.DataFrame, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        df = df.copy()
        df["wdir"] = np.round(rng.uniform(120, 240, len(df)), 1)  # mostly southerly: cos < 0
        return df[["station", "time", "temp", "wdir", "hum"]]

    csv = save(with_wind(make_series(), 0), tmp_path / "train.csv")
    out = tmp_path / "run"
    overrides = [*TINY, *csv_overrides(csv), "data.covariates=[wdir,hum]", "data.angular=[wdir]"]
    train.train(compose_train(overrides), out)
    model = load_checkpoint(out / "checkpoints" / "best.ckpt")
    assert model.hparams.data_spec["angular"] == ["wdir"]
    (tmp_path / "in").mkdir()
    good = save(with_wind(good_frame(), 1), tmp_path / "in" / "good.csv")
    bad_df = with_wind(good_frame(), 2)
    bad_df.loc[40, "hum"] = 1e9
    bad = save(bad_df, tmp_path / "in" / "bad.csv")
    results = forecast_files(model, [good, bad], tmp_path / "fc")
    status = {(Path(r.file).name, r.status) for r in results}
    assert ("good.csv", "ok") in status
    reasons = " ".join(r.reason for r in results if Path(r.file).name == "bad.csv")
    assert "column 'hum'" in reasons and "impossible value 1e+09" in reasons


# ---------------------------------------------------------------- files read together


def test_files_read_together_are_prepared_and_forecast_as_one_by_one(tmp_path, model,
                                                                      monkeypatch):
    """The batch reads, checks and featurises plain one-series files together; every
    file must come out exactly as when it is read on its own, refusals included."""
    def one(n: int, seed: int, start: str = "2020-03-01", hum: dict | None = None) -> pd.DataFrame:
        df = make_series(n, ids=("A",), seed=seed, start=start)
        for i, v in (hum or {}).items():
            df.loc[i, "hum"] = v
        return df

    last = pd.Timestamp("2262-04-11T23:00", tz="UTC") - pd.Timedelta(hours=30)
    files = {"good": one(48, 1), "good2": one(30, 2, "2021-07-01"), "short": one(R - 1, 3),
             "absurd_late": one(48, 4, hum={47: 1e12}), "absurd_early": one(48, 5, hum={2: 1e12}),
             "end_of_time": one(31, 6, f"{last:%Y-%m-%d %H:%M}"),
             "two_series": make_series(30, seed=7), "gap": one(48, 8).drop(index=[20, 21])}
    paths = [save(df, tmp_path / f"{name}.csv") for name, df in files.items()]
    spec = DataSpec.from_dict(model.hparams.data_spec)
    for mode in ("forecast", "backtest"):
        jobs = [(i, p, tmp_path / f"{i}.out") for i, p in enumerate(paths)]
        together = checks.prepare_files(jobs, spec, R, H, mode)
        # 2262, two series and a gap are read one by one; the rest together, refusals too
        assert sorted(together) == [0, 1, 2, 3, 4], mode
        for i, path, output in jobs:
            alone = checks.prepare_one(i, path, output, spec, R, H, mode, None)
            if i not in together:
                continue
            prep = together[i]
            assert (prep.failures, [a.name for a in prep.arrays]) == (
                alone.failures, [a.name for a in alone.arrays])
            for a, b, oa, ob in zip(prep.arrays, alone.arrays, prep.origins, alone.origins,
                                    strict=True):
                for f in ("times", "x", "y", "segment"):
                    np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
                np.testing.assert_array_equal(oa, ob)
    def outcome(folder: str) -> list[tuple]:
        return [(r.file, r.series, r.status, r.reason, r.forecasts, Path(r.output).name)
                for r in forecast_files(model, paths, tmp_path / folder)]

    results = outcome("together")
    monkeypatch.setattr(checks, "prepare_files", lambda *a, **k: {})
    assert outcome("alone") == results
    assert [r[2] for r in results].count("failed") == 3  # short, absurd_late, end_of_time
    for p in paths:
        name = predict.output_name(p)
        assert (tmp_path / "together" / name).exists() == (tmp_path / "alone" / name).exists()
        if (tmp_path / "alone" / name).exists():
            assert (tmp_path / "together" / name).read_bytes() == (
                tmp_path / "alone" / name).read_bytes()


def test_a_long_output_goes_to_disk_chunk_by_chunk_with_the_same_text(tmp_path, model,
                                                                       monkeypatch):
    src = save(good_frame(120), tmp_path / "in.csv")
    forecast_files(model, [src], tmp_path / "memory", mode="backtest", batch_windows=16)
    opened = []
    real = outputs.atomic_open

    def spy(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(outputs, "BUFFER_CHARS", 2000)
    monkeypatch.setattr(outputs, "atomic_open", spy)
    forecast_files(model, [src], tmp_path / "chunks", mode="backtest", batch_windows=16)
    assert opened == ["in.forecast.csv"]  # spilled to its temporary file, then renamed
    assert (tmp_path / "chunks" / "in.forecast.csv").read_bytes() == (
        tmp_path / "memory" / "in.forecast.csv").read_bytes()
