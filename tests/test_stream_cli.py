"""The streaming command: follows a growing CSV, repairs rows, equals forecast.predict."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_series

import train
from forecast.features import fit_spec
from forecast.frame import FrameSpec, read_frame
from forecast.module import ForecastModule
from forecast.predict import run as predict_run
from forecast.stream.cli import run

ROOT = Path(train.__file__).resolve().parent
H = 4


def write_ckpt(path: Path, source: Path, causal: bool = True) -> Path:
    """An untrained ensemble (R = 15 + 4: temp read minus its mean over 5 steps) with a data
    spec fitted on ``source``."""
    fs = FrameSpec("time", "temp", ("hum",), "station", "1h", max_gap=3,
                   bounds={"temp": (-60.0, 130.0)})
    spec = fit_spec(read_frame(source, fs), pd.Timestamp("2030-01-01", tz="UTC"))
    torch.manual_seed(0)
    m = ForecastModule(spec.n_features, H, causal, channels=4, skip_channels=4,
                       dilations=[1, 2, 4], members=2, level_window=5,
                       level_features=["temp"], data_spec=spec.to_dict())
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}, path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("stream")
    df = make_series(24 * 6, seed=3)
    df.to_csv(tmp / "fit.csv", index=False)
    return write_ckpt(tmp / "m.ckpt", tmp / "fit.csv"), df


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def with_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Short gaps (carried forward), a long one in B (reset), a missing row, a bounds repair."""
    df = df.copy()
    a, b = df.index[df.station == "A"], df.index[df.station == "B"]
    df.loc[a[40:42], "hum"] = np.nan
    df.loc[a[60], "temp"] = 999.0  # outside the bounds: missing
    df.loc[b[50:58], "temp"] = np.nan  # longer than max_gap=3: B resets
    return df.drop(index=a[80])  # a missing timestamp, carried forward


def test_follow_false_last_cutoff_equals_predict(tmp_path, setup):
    ckpt, df = setup
    src = tmp_path / "in.csv"
    with_gaps(df).to_csv(src, index=False)
    assert run(ckpt, src, tmp_path / "s.csv", follow=False) == 0
    streamed = read(tmp_path / "s.csv")
    assert list(streamed.columns) == ["station", "cutoff", "timestamp", "step", "forecast"]
    assert predict_run(ckpt, src, tmp_path / "p") == 0
    batch = read(tmp_path / "p" / "in.forecast.csv")
    last = streamed.groupby("station").cutoff.transform("max") == streamed.cutoff
    got = streamed[last].reset_index(drop=True)
    assert got[["station", "cutoff", "timestamp", "step"]].equals(
        batch[["station", "cutoff", "timestamp", "step"]])
    np.testing.assert_allclose(got.forecast, batch.forecast, rtol=1e-5)
    # B reset after its long gap: no forecast until R = 19 fresh steps after it
    b_cut = pd.to_datetime(streamed[streamed.station == "B"].cutoff.unique())
    gap_end = pd.Timestamp(df[df.station == "B"].time.iloc[57])
    after = b_cut[b_cut > gap_end]
    assert after.min() == gap_end + pd.Timedelta(hours=19)


def test_every_cutoff_equals_a_backtest_window(tmp_path, setup):
    """Forecasts of every cutoff equal predict's backtest (one window per origin)."""
    ckpt, df = setup
    src = tmp_path / "in.csv"
    with_gaps(df).to_csv(src, index=False)
    run(ckpt, src, tmp_path / "s.csv", follow=False)
    predict_run(ckpt, src, tmp_path / "p", mode="backtest")
    streamed = read(tmp_path / "s.csv").set_index(["station", "cutoff", "step"])
    batch = read(tmp_path / "p" / "in.forecast.csv").set_index(["station", "cutoff", "step"])
    common = batch.index.intersection(streamed.index)
    assert len(common) == len(batch)  # the stream forecasts every backtest origin
    np.testing.assert_allclose(streamed.loc[common].forecast, batch.loc[common].forecast,
                               rtol=1e-5)


def test_bad_rows_are_reported_and_skipped(tmp_path, setup, caplog):
    ckpt, df = setup
    good = tmp_path / "good.csv"
    df.to_csv(good, index=False)
    run(ckpt, good, tmp_path / "good_out.csv", follow=False)
    lines = good.read_text().splitlines()
    bad = list(lines)
    bad[31] = lines[31].rsplit(",", 1)[0] + ",abc"  # row 31: 'hum' is not a number
    bad.append(lines[5])  # a repeated timestamp at the end
    src = tmp_path / "bad.csv"
    src.write_text("\n".join(bad) + "\n")
    assert run(ckpt, src, tmp_path / "bad_out.csv", follow=False) == 0
    assert "bad.csv: column 'hum', row 31 (line 32): value 'abc' is not a number" in caplog.text
    assert "bad.csv: column 'time', row 289 (line 290): timestamp" in caplog.text
    # a skipped row is a missing step: both values carried forward, indicators set
    ref = df.copy()
    ref.loc[30, ["temp", "hum"]] = np.nan
    ref.to_csv(tmp_path / "ref.csv", index=False)
    run(ckpt, tmp_path / "ref.csv", tmp_path / "ref_out.csv", follow=False)
    assert read(tmp_path / "bad_out.csv").equals(read(tmp_path / "ref_out.csv"))


def test_restart_resumes_or_rewarms_with_the_same_forecasts(tmp_path, setup):
    ckpt, df = setup
    full = tmp_path / "full.csv"
    df.to_csv(full, index=False)
    run(ckpt, full, tmp_path / "once.csv", follow=False)
    text = full.read_text()
    cut = text.index("\n", len(text) // 2) + 1
    part = tmp_path / "part.csv"
    part.write_text(text[:cut - 10])  # ends inside a line: that line waits
    run(ckpt, part, tmp_path / "twice.csv", follow=False)
    part.write_text(text)
    run(ckpt, part, tmp_path / "twice.csv", follow=False)  # resumes from the saved state
    same_forecasts(tmp_path / "twice.csv", tmp_path / "once.csv")
    (tmp_path / "twice.csv.state").unlink()
    run(ckpt, part, tmp_path / "twice.csv", follow=False)  # re-warms from the start
    same_forecasts(tmp_path / "twice.csv", tmp_path / "once.csv")


def same_forecasts(got: Path, want: Path) -> None:
    """The same rows, keys and steps; forecasts equal up to float32 rounding (one pass over
    a backlog and steps one at a time add in another order on some CPUs)."""
    a, b = read(got), read(want)
    pd.testing.assert_frame_equal(a.drop(columns="forecast"), b.drop(columns="forecast"))
    np.testing.assert_allclose(a.forecast, b.forecast, rtol=1e-6, atol=0)


def test_bad_files_are_refused_in_one_line_without_output(tmp_path, setup, caplog):
    ckpt, _ = setup
    (tmp_path / "empty.csv").write_text("")
    assert run(ckpt, tmp_path / "empty.csv", tmp_path / "o.csv", follow=False) == 2
    assert "empty.csv: empty file" in caplog.text
    (tmp_path / "cols.csv").write_text("station,time,temp\nA,2020-01-01T00:00:00Z,1\n")
    assert run(ckpt, tmp_path / "cols.csv", tmp_path / "o.csv", follow=False) == 2
    assert "cols.csv: column 'hum' not found" in caplog.text
    assert not (tmp_path / "o.csv").exists()


def test_non_causal_checkpoint_is_refused_in_one_line(tmp_path, setup, caplog):
    _, df = setup
    df.to_csv(tmp_path / "in.csv", index=False)
    ckpt = write_ckpt(tmp_path / "std.ckpt", tmp_path / "in.csv", causal=False)
    assert run(ckpt, tmp_path / "in.csv", tmp_path / "o.csv", follow=False) == 2
    assert "is not causal" in caplog.text
    assert not (tmp_path / "o.csv").exists()


def test_command_follows_a_file_another_process_appends_to(tmp_path, setup):
    ckpt, _ = setup
    df = make_series(50, seed=4)
    src, out = tmp_path / "live.csv", tmp_path / "live_out.csv"
    lines = df.sort_values(["time", "station"]).to_csv(index=False).splitlines()
    src.write_text("\n".join(lines[:41]) + "\n")  # header and 20 steps of both series
    writer = (
        "import sys, time\n"
        "lines = open(sys.argv[1]).read().splitlines()\n"
        "with open(sys.argv[2], 'a') as f:\n"
        "    for i in range(41, len(lines), 2):\n"
        "        f.write(lines[i] + '\\n' + lines[i + 1] + '\\n'); f.flush(); time.sleep(0.01)\n"
    )
    (tmp_path / "all.csv").write_text("\n".join(lines) + "\n")
    stream = subprocess.Popen(
        [sys.executable, "-m", "forecast.stream", f"checkpoint={ckpt}", f"input={src}",
         f"output={out}", "poll_seconds=0.05", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        subprocess.run([sys.executable, "-c", writer, str(tmp_path / "all.csv"), str(src)],
                       check=True, timeout=60)
        expected = 2 * (len(df) // 2 - 18) * H  # every cutoff from the R-th step on
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) - 1 >= expected:
                break
            time.sleep(0.1)
    finally:
        stream.terminate()
        log = stream.communicate(timeout=30)[0]
    assert stream.returncode == 0, log
    got = read(out)
    assert len(got) == expected
    run(ckpt, tmp_path / "all.csv", tmp_path / "ref.csv", follow=False)
    ref = read(tmp_path / "ref.csv")
    key = ["station", "cutoff", "step"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  ref.sort_values(key).reset_index(drop=True))
