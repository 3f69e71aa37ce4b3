"""Batch forecasting that no input can break: one test per class of defect, not per example."""

from __future__ import annotations

import gzip
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, compose_train, csv_overrides, make_series

import train
from forecast.cli import one_line_errors
from forecast.files import sweep_stale
from forecast.module import _BUILD_KEYS, ForecastModule, load_checkpoint
from forecast.predict import checks, command, forecast_files, run, runner
from forecast.predict.checkpoint import NON_CAUSAL_WARNING

ROOT = Path(train.__file__).resolve().parent
H, R = 6, 19


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("train")
    csv = tmp / "series.csv"
    make_series().to_csv(csv, index=False)
    train.train(compose_train([*TINY, *csv_overrides(csv), "+data.bounds.temp=[-60,130]"]),
                tmp / "run")
    return tmp / "run" / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def model(ckpt) -> ForecastModule:
    return load_checkpoint(ckpt)


@pytest.fixture(autouse=True)
def _deadline():
    """No test may hang: a blocking open fails the test instead of stopping the suite."""
    def stop(*_):
        raise TimeoutError("the test hung")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def save(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def good(seed: int = 1, n: int = 48) -> pd.DataFrame:
    return make_series(n, seed=seed, start="2020-03-01")


def summary(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "summary.csv", keep_default_na=False)


# ---------------------------------------------------------------- outputs never replace others


def test_outputs_never_replace_an_input_or_a_file_the_run_did_not_write(tmp_path, ckpt):
    data = tmp_path / "data"
    data.mkdir()
    save(good(1), data / "a.csv")
    user = [save(good(2), data / "summary.csv"), save(good(3), data / "metrics.csv"),
            save(good(4), data / "b.forecast.csv")]  # the user's own files
    save(good(5), data / "b.csv")
    before = {p: p.read_bytes() for p in user}
    assert run(ckpt, [data / "a.csv", data / "b.csv"], data, mode="backtest") == 0
    assert all(p.read_bytes() == before[p] for p in user)
    (sub,) = [p for p in data.iterdir() if p.is_dir()]
    assert sub.name.startswith("run-") and (sub / "a.forecast.csv").is_file()
    assert set(summary(sub)["file"]) == {str(data / "a.csv"), str(data / "b.csv")}
    # a folder the run owns: outputs go there, and the next run does not read them as inputs
    clean = tmp_path / "clean"
    clean.mkdir()
    save(good(1), clean / "a.csv")
    for _ in range(2):
        assert run(ckpt, clean, clean) == 0
        assert summary(clean)["file"].tolist() == [str(clean / "a.csv")] * 2
    assert not [p for p in clean.iterdir() if p.is_dir()]


# ---------------------------------------------------------------- nothing vanishes


def test_every_file_and_series_appears_in_the_summary_with_a_status(tmp_path, ckpt):
    df = good()
    half = df.assign(temp=np.where(df.station == "B", np.nan, df.temp))  # B: no target at all
    empty_cov = df.assign(hum=np.nan)  # no covariate in any series: the file has nothing
    paths = [save(half, tmp_path / "half.csv"), save(empty_cov, tmp_path / "cov.csv")]
    assert run(ckpt, paths, tmp_path / "o") == 1
    s = summary(tmp_path / "o")
    assert [(Path(f).name, r, st) for f, r, st in zip(s.file, s.series, s.status, strict=True)] \
        == [("half.csv", "B", "failed"), ("half.csv", "A", "ok"),
            ("cov.csv", "A", "failed"), ("cov.csv", "B", "failed")]
    assert s.reason[0].endswith("column 'temp', series 'B': no value in any of its 48 rows "
                                "(all empty or outside the bounds); nothing to forecast from")
    assert "column 'hum', series 'A': no value" in s.reason[2]


@pytest.mark.parametrize("trouble", ["duplicate", "off_grid", "two_hourly"])
def test_a_series_with_bad_timestamps_fails_alone(tmp_path, ckpt, trouble):
    """Series B has a duplicate timestamp, one off the hourly grid, or comes every two
    hours (a step the checkpoint was not trained on, which the hourly series A would
    otherwise make the file's step, B being filled in between): B fails with its reason,
    A is still forecast, and A's forecast is the one A alone gets."""
    df = good()
    b = df.index[df.station == "B"]
    if trouble == "duplicate":
        df = pd.concat([df, df.loc[b[-3:-2]]], ignore_index=True)
    elif trouble == "off_grid":
        df.loc[b[-1], "time"] = (pd.Timestamp(df.loc[b[-1], "time"])
                                 + pd.Timedelta("17min")).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        df = df.drop(b[1::2])
    assert run(ckpt, [save(df, tmp_path / "mixed.csv")], tmp_path / "o") == 1
    s = summary(tmp_path / "o").set_index("series")
    assert s.loc["A", "status"] == "ok" and s.loc["B", "status"] == "failed"
    expected = {"duplicate": r"row \d+ \(line \d+\): duplicate timestamp .* in series 'B'",
                "off_grid": r"row \d+ \(line \d+\): irregular timestamp .*: 77min after",
                "two_hourly": r"series 'B': only 0 of \d+ steps between rows are 1h, the "
                              r"checkpoint's step; the most common is 2h"}[trouble]
    assert re.search(expected, s.loc["B", "reason"]), s.loc["B", "reason"]
    alone = df[df.station == "A"]
    assert run(ckpt, [save(alone, tmp_path / "alone.csv")], tmp_path / "a") == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "o" / "mixed.forecast.csv").drop(columns="station"),
        pd.read_csv(tmp_path / "a" / "alone.forecast.csv").drop(columns="station"))


def test_training_says_which_series_it_leaves_out(tmp_path, caplog):
    from forecast.data import ForecastDataModule

    df = make_series(24 * 20)
    df.loc[df.station == "B", "temp"] = np.nan
    path = save(df, tmp_path / "train.csv")
    dm = ForecastDataModule(str(path), time_column="time", target="temp", covariates=["hum"],
                            series_id="station", horizon=4)
    with caplog.at_level(logging.WARNING):
        dm.load()
    assert [a.name for a in dm.arrays] == ["A"]
    assert any(r.getMessage().startswith("left out of training: ") and "series 'B'" in
               r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- nothing hangs, crashes, starves


def test_no_input_can_hang_crash_or_starve_the_batch(tmp_path, ckpt, monkeypatch):
    ok = save(good(), tmp_path / "ok.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(good().to_csv(index=False).encode() + b"\n" * 3_000_000))
    rows = save(make_series(2000, seed=3), tmp_path / "rows.csv")
    oom = save(good(7), tmp_path / "oom.csv")
    real = checks.prepare_file

    def out_of_memory(i, path, *args):
        if Path(path).name == "oom.csv":
            raise MemoryError
        return real(i, path, *args)

    monkeypatch.setattr(checks, "prepare_file", out_of_memory)
    inputs = [fifo, loop, "/dev/null", str(tmp_path / "dir.csv*"), bomb, rows, oom, ok]
    assert run(ckpt, inputs, tmp_path / "o", max_file_mb=1, max_rows=1000) == 1
    s = summary(tmp_path / "o").set_index("file")
    assert s.loc[str(ok)].status.tolist() == ["ok", "ok"]
    expect = {fifo: r"is a named pipe, not a CSV file", loop: r"a symbolic link that loops",
              "/dev/null": r"is a device", folder: r"is a folder",
              bomb: r"decompresses to more than 1,048,576 bytes, the per-file limit",
              rows: r"more than 1,000 data rows, the per-file limit.*max_rows",
              oom: r"not enough memory to read and check the file"}
    for path, reason in expect.items():
        row = s.loc[str(path)]
        assert row.status == "failed" and row.series == "*", row
        assert pd.Series([row.reason]).str.contains(reason).all(), row.reason


def test_a_model_pass_out_of_memory_fails_its_file_only(tmp_path, model, monkeypatch):
    paths = [save(good(k), tmp_path / f"f{k}.csv") for k in range(3)]
    real = runner.forecast_units

    def oom_for_f1(model, work, *args):
        if any(u.job == 1 for u in work):
            raise MemoryError
        return real(model, work, *args)

    monkeypatch.setattr(runner, "forecast_units", oom_for_f1)
    results = forecast_files(model, paths, tmp_path / "o")
    assert [(Path(r.file).name, r.ok) for r in results] == [
        ("f0.csv", True), ("f0.csv", True), ("f1.csv", False), ("f1.csv", False),
        ("f2.csv", True), ("f2.csv", True)]
    assert "the model pass failed (MemoryError" in results[2].reason
    assert not (tmp_path / "o" / "f1.forecast.csv").exists()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_the_summary_is_written_when_the_run_stops(tmp_path, ckpt, monkeypatch, how):
    """Ctrl-C, or SIGTERM (what ``timeout``, schedulers and ``docker stop`` send) delivered
    to the process: the summary still names every file."""
    paths = [save(good(k), tmp_path / f"f{k}.csv") for k in range(3)]
    real = checks.prepare_file

    def interrupt_at_f2(i, path, *args):
        if Path(path).name == "f2.csv":
            if how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here, at once
        return real(i, path, *args)

    monkeypatch.setattr(checks, "prepare_file", interrupt_at_f2)
    stop = KeyboardInterrupt if how == "ctrl-c" else command.Terminated
    with pytest.raises(stop):
        run(ckpt, paths, tmp_path / "o")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
    s = summary(tmp_path / "o")  # f0 and f1 were queued, not written: nothing half done
    assert s.file.tolist() == [str(p) for p in paths] and set(s.status) == {"failed"}
    why = "KeyboardInterrupt" if how == "ctrl-c" else "Terminated: signal SIGTERM"
    assert s.reason.str.endswith(f": not forecast: the run stopped early ({why})").all()
    assert not list((tmp_path / "o").glob("*.forecast.csv"))
    assert not list((tmp_path / "o").glob(".*cf-tmp*"))


@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt(), 130),
                                            (command.Terminated("signal SIGTERM"), 143)])
def test_an_interrupted_command_prints_one_line_and_the_shells_code(monkeypatch, caplog,
                                                                   capsys, stop, code):
    from forecast.predict import __main__ as entry

    def interrupted(*args, **kwargs):  # the run, inside Hydra, stopped by the signal
        raise stop

    monkeypatch.setattr(entry, "run_hydra", interrupted)
    monkeypatch.setattr(sys, "argv", ["predict", "checkpoint=x.ckpt", "inputs=in"])
    with caplog.at_level(logging.ERROR):
        assert entry.main() == code
    name = "SIGINT" if code == 130 else "SIGTERM"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"stopped by {name}; summary.csv names the files not forecast"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_backtest_streams_chunk_by_chunk_with_the_same_numbers(tmp_path, model, monkeypatch):
    src = save(make_series(200, seed=4, start="2020-03-01"), tmp_path / "long.csv")
    whole = forecast_files(model, [src], tmp_path / "whole", mode="backtest")
    sizes = []
    real = runner.forecast_units

    def spy(model, work, *args):
        sizes.append(sum(len(u.origins) for u in work))
        return real(model, work, *args)

    monkeypatch.setattr(runner, "forecast_units", spy)
    parts = forecast_files(model, [src], tmp_path / "parts", mode="backtest", batch_windows=16)
    assert max(sizes) <= 16 and sum(sizes) == 2 * (200 - (R - 1) - H)  # never more at once
    a = pd.read_csv(tmp_path / "whole" / "long.forecast.csv")
    b = pd.read_csv(tmp_path / "parts" / "long.forecast.csv")
    # the same rows; values equal up to float32 rounding (batches of other sizes)
    numeric = a.select_dtypes("number").columns
    pd.testing.assert_frame_equal(a.drop(columns=numeric), b.drop(columns=numeric))
    np.testing.assert_allclose(a[numeric].to_numpy(), b[numeric].to_numpy(), atol=1e-4)
    for x, y in zip(whole, parts, strict=True):
        assert x.metrics == pytest.approx(y.metrics)


# ---------------------------------------------------------------- arguments, devices


@pytest.mark.parametrize("kwargs,message", [
    ({"output_dir": "FILE"}, r"output_dir=.*a_file: is a file, not a folder"),
    ({"output_dir": "FILE/sub"}, r"output_dir=.*a_file/sub: cannot create the folder"),
    ({"batch_size": 0}, r"batch_size=0: expected a positive whole number"),
    ({"batch_size": -3}, r"batch_size=-3: expected a positive whole number"),
    ({"batch_size": "abc"}, r"batch_size=abc: not a number"),
    ({"batch_size": 2.5}, r"batch_size=2.5: expected a positive whole number"),
    ({"max_rows": 0}, r"max_rows=0: expected a positive whole number"),
    ({"max_file_mb": "big"}, r"max_file_mb=big: not a number"),
    ({"mode": "nowcast"}, r"mode=nowcast: not a mode"),
    ({"device": "tpu"}, r"device=tpu: not a device"),
    ({"device": "cuda:99"}, r"device=cuda:99: (?:CUDA is not available|this machine has)"),
    ({"inputs": "MISSING"}, r"inputs: '.*nope\.csv' names no file"),
])
def test_bad_arguments_exit_2_with_one_line_before_any_work(tmp_path, ckpt, caplog, kwargs,
                                                            message):
    src = save(good(), tmp_path / "in.csv")
    (tmp_path / "a_file").write_text("x")
    args = {"checkpoint": ckpt, "inputs": [src], "output_dir": tmp_path / "out", **kwargs}
    if args["output_dir"] in ("FILE", "FILE/sub"):
        args["output_dir"] = tmp_path / args["output_dir"].replace("FILE", "a_file")
    if args["inputs"] == "MISSING":
        args["inputs"] = [src, tmp_path / "nope.csv"]
    with caplog.at_level(logging.ERROR, logger="forecast.predict"):
        assert run(**args) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert pd.Series(errors).str.contains(message).all(), errors
    assert not (tmp_path / "out" / "in.forecast.csv").exists()


def test_device_is_honoured(tmp_path, ckpt, monkeypatch):
    seen = []
    real = command.forecast_files

    def spy(model, *args, **kwargs):
        seen.append(next(model.parameters()).device.type)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(command, "forecast_files", spy)
    src = save(good(), tmp_path / "in.csv")
    assert run(ckpt, [src], tmp_path / "o", device="cpu") == 0
    assert run(ckpt, [src], tmp_path / "o", device="cuda") == (
        0 if torch.cuda.is_available() else 2)
    assert seen == ["cpu", "cuda"] if torch.cuda.is_available() else seen == ["cpu"]


# ---------------------------------------------------------------- silent wrong results


def test_forecasts_past_the_representable_range_are_refused(tmp_path, model):
    late = make_series(48, start="2262-04-10")  # the 6 steps after 04-11 23:00 overflow
    results = forecast_files(model, [save(late, tmp_path / "late.csv")], tmp_path / "o")
    assert [r.ok for r in results] == [False, False]
    assert "run past 2262-04-11 23:47 UTC, the last time that can be represented" in \
        results[0].reason


def test_a_non_causal_checkpoint_warns_that_it_cannot_forecast_honestly(tmp_path, model, caplog):
    hp = {k: model.hparams[k] for k in _BUILD_KEYS if k in model.hparams}
    standard = ForecastModule(**{**hp, "causal": False}).eval()
    with caplog.at_level(logging.WARNING, logger="forecast.predict"):
        results = forecast_files(standard, [save(good(), tmp_path / "g.csv")], tmp_path / "o")
    assert all(r.ok for r in results)
    assert NON_CAUSAL_WARNING in caplog.text and "cannot forecast honestly" in caplog.text


def test_a_checkpoint_with_the_seasonal_day_cycles_forecasts_files(tmp_path):
    csv = save(make_series(), tmp_path / "series.csv")
    cycles = "[day,day_plus_year,day_minus_year]"
    train.train(compose_train([*TINY, *csv_overrides(csv), f"data.calendar={cycles}"]),
                tmp_path / "run")
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    spec = load_checkpoint(best).hparams.data_spec
    assert spec["calendar"] == ["day", "day_plus_year", "day_minus_year"]
    assert run(best, [save(good(), tmp_path / "in.csv")], tmp_path / "o") == 0
    out = pd.read_csv(tmp_path / "o" / "in.forecast.csv")
    assert len(out) > 0 and np.isfinite(out["forecast"]).all()


@pytest.mark.parametrize("damage,message", [
    ({"freq": "hourly"}, r"freq 'hourly' is not a frequency"),
    ({"std": [0.0, 1.0]}, r"scaler statistics"),
    ({"calendar": ["month"]}, r"calendar \['month'\] names unknown cycles"),
    ({"time_column": 5}, r"time_column and target must be names"),
    ({"bogus": 1}, r"TypeError"),
])
def test_a_damaged_stored_spec_is_blamed_on_the_checkpoint(tmp_path, ckpt, caplog, damage,
                                                          message):
    raw = torch.load(ckpt, weights_only=True)
    raw["hyper_parameters"]["data_spec"].update(damage)
    bad = tmp_path / "damaged.ckpt"
    torch.save(raw, bad)
    src = save(good(), tmp_path / "in.csv")
    with caplog.at_level(logging.ERROR, logger="forecast.predict"):
        assert run(bad, [src], tmp_path / "o") == 2
    assert f"{bad}: the checkpoint's stored data spec is damaged (" in caplog.text
    assert pd.Series([caplog.text]).str.contains(message).all()
    assert str(src) not in caplog.text


# ---------------------------------------------------------------- leftovers, entry points


def test_stale_temporary_files_are_swept_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".x.forecast.csv.cf-tmp-{dead.stdout.strip()}"
    live = tmp_path / f".y.forecast.csv.cf-tmp-{os.getppid()}"
    other = tmp_path / ".notes.cf-tmp-x"
    for p in (stale, live, other):
        p.write_text("partial")
    assert sweep_stale(tmp_path) == [stale]
    assert live.exists() and other.exists() and not stale.exists()


def test_entry_points_print_one_line_and_keep_the_traceback(tmp_path, caplog):
    log = logging.getLogger("test.cli")
    handler = logging.FileHandler(tmp_path / "run.log")
    logging.getLogger().addHandler(handler)
    try:
        with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as stop:
            with one_line_errors(log, verbose=False):
                raise ValueError("f.csv: column 'temp', row 2 (line 3): bad\nsecond line")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert stop.value.code == 1
    assert [r.getMessage() for r in caplog.records][0] == \
        "f.csv: column 'temp', row 2 (line 3): bad"
    assert "Traceback" not in caplog.text and "run.log" in caplog.text
    assert "Traceback (most recent call last)" in (tmp_path / "run.log").read_text()
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit):
        with one_line_errors(log, verbose=True):
            raise KeyError("x")
    assert "KeyError: 'x'" in caplog.text and "Traceback" in caplog.text


def test_train_entry_point_prints_one_line_for_a_data_error(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("station,time,temp,hum\n")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), *csv_overrides(bad),
                                      f"hydra.run.dir={tmp_path / 'run'}"])
    # as `python train.py`: Hydra finds configs/ beside the script it runs
    monkeypatch.setattr(train.main.__wrapped__, "__module__", "__main__")
    try:
        code = train.cli()  # the real Hydra entry point and its exit code, in this process
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    out = capsys.readouterr()
    assert code == 1  # the settings passed, the run failed: not 2, an argument error
    assert f"{bad}: header only, no data rows" in out.out + out.err
    assert "Traceback" not in out.out + out.err
    assert "Traceback" in (tmp_path / "run" / "train.log").read_text()
