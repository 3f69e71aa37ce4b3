"""A new user's own CSV: train with `data=csv` overrides only, then forecast files like it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, compose_train

import train
from forecast.data import ForecastDataModule
from forecast.features import DataSpec
from forecast.frame import DataError
from forecast.predict import forecast_files, load_model

ROOT = Path(train.__file__).resolve().parent


def jena_like(n: int, start: str = "2009-01-01 00:10", seed: int = 0) -> pd.DataFrame:
    """10-minute climate data as the Jena file has it: day-first stamps, its own column names
    in its own order, a covariate the NYC data lacks, and columns nobody asked for."""
    rng = np.random.default_rng(seed)
    t = pd.date_range(start, periods=n, freq="10min")
    day = np.sin(2 * np.pi * (t.hour * 60 + t.minute) / 1440)
    temp = 5 + 6 * day + np.cumsum(rng.normal(0, 0.05, n))
    return pd.DataFrame({
        "p (mbar)": np.round(996 + np.cumsum(rng.normal(0, 0.02, n)), 2),
        "T (degC)": np.round(temp, 2),
        "Tpot (K)": np.round(temp + 273.15, 2),  # extra: ignored
        "VPdef (mbar)": np.round(np.clip(3 + 2 * day + rng.normal(0, 0.2, n), 0, None), 2),
        "Date Time": t.strftime("%d.%m.%Y %H:%M:%S"),
        "wd (deg)": np.round(rng.uniform(0, 360, n), 1),  # extra: ignored
    })


JENA = ["data=csv", "data.time_column=Date Time", "data.target='T (degC)'",
        "data.covariates=['p (mbar)','VPdef (mbar)']"]


def test_new_user_csv_trains_from_the_command_line_and_forecasts(tmp_path):
    src = tmp_path / "jena_2009.csv"
    jena_like(6 * 24 * 12).to_csv(src, index=False)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *TINY, *JENA,
           f"data.path={src}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["test_honest_mae"] > 0

    model, spec = load_model(run_dir / "checkpoints" / "best.ckpt")
    # 10-minute steps; training spans days, not two weeks: only the daily cycle repeats
    assert spec.freq == "600s" and spec.calendar == ["day"]
    assert spec.value_columns == ["T (degC)", "p (mbar)", "VPdef (mbar)"]
    # other files of that format, columns shuffled once more, forecast through predict
    later = [jena_like(200, start=f"2010-0{k}-01 00:00", seed=k) for k in (1, 2)]
    paths = []
    for k, df in enumerate(later):
        paths.append(tmp_path / f"jena_2010_{k}.csv")
        df[df.columns[::-1]].to_csv(paths[-1], index=False)
    results = forecast_files(model, paths, tmp_path / "out")
    assert all(r.ok for r in results), [r.reason for r in results]
    out = pd.read_csv(tmp_path / "out" / "jena_2010_1.forecast.csv", parse_dates=["timestamp"])
    assert list(out.columns) == ["series", "cutoff", "timestamp", "step", "forecast"]
    assert out["series"].unique().tolist() == ["jena_2010_1"]
    last = pd.Timestamp("2010-02-01", tz="UTC") + pd.Timedelta(minutes=10 * 199)
    assert out["timestamp"].iloc[0] == last + pd.Timedelta(minutes=10)
    assert out["timestamp"].diff().dropna().eq(pd.Timedelta(minutes=10)).all()
    assert out["forecast"].between(-30, 40).all()  # degC, not scaled units


EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def daily_epoch(days: int = 200) -> pd.DataFrame:
    t = pd.date_range("2015-01-01", periods=days, freq="D", tz="UTC")
    rows = []
    for k, site in enumerate(("north", "south")):
        season = 10 * np.sin(2 * np.pi * np.arange(days) / 365 + k)
        rows.append(pd.DataFrame({"value": np.round(15 + season, 3), "site": site,
                                  "epoch": ((t - EPOCH) // pd.Timedelta(seconds=1)).astype(str)}))
    return pd.concat(rows, ignore_index=True)


def test_daily_epoch_seconds_with_series_id_and_timestamp_splits(tmp_path):
    src = tmp_path / "daily.csv"
    daily_epoch().to_csv(src, index=False)
    base = ["data=csv", f"data.path={src}", "data.time_column=epoch", "data.target=value",
            "data.series_id=site"]
    splits = "data.splits={train:[2015-01-01,2015-05-10],val:[2015-05-11,2015-06-10]," \
             "test:[2015-06-11,2015-07-19]}"
    out, metrics = tmp_path / "run", None
    metrics = train.train(compose_train([*TINY, *base, splits]), out)
    assert set(metrics["stations"]) == {"north", "south"}
    spec = DataSpec.from_dict(load_model(out / "checkpoints" / "best.ckpt")[0].hparams.data_spec)
    # daily steps over four months of training: weekly cycle yes, time of year no
    assert spec.freq == "86400s" and spec.calendar == ["week"]
    # default splits: fractions 70/15/15 of the time span; timestamps when given
    dm = ForecastDataModule(str(src), "epoch", "value", series_id="site")
    dm.load()
    t0, t1 = pd.Timestamp("2015-01-01", tz="UTC"), pd.Timestamp("2015-07-19", tz="UTC")
    assert dm.splits["train"] == (t0, t0 + (t1 - t0) * 0.7)
    assert dm.splits["test"][1] == t1
    cfg = compose_train([*TINY, *base, splits])
    assert list(cfg.data.splits.val) == ["2015-05-11", "2015-06-10"]


def test_refusals_name_the_split_and_the_fix(tmp_path):
    src = tmp_path / "daily.csv"
    daily_epoch(40).to_csv(src, index=False)
    # validation holds 6 days: no origin has its 7 targets in it
    dm = ForecastDataModule(str(src), "epoch", "value", series_id="site", horizon=7, span=4)
    dm.set_history(14)
    with pytest.raises(DataError, match=r"daily\.csv: no val windows: .*14 steps of history and "
                                        r"7 targets.*widen the split or shrink the model"):
        dm.setup()
    bad = ForecastDataModule(str(src), "epoch", "value", series_id="site",
                             fractions=(0.5, 0.6, 0.1))
    with pytest.raises(DataError, match=r"split fractions \[0\.5, 0\.6, 0\.1\] must be 3 "
                                        r"positive numbers summing to 1"):
        bad.load()
    with pytest.raises(DataError, match=r"column 'epoch', row 41 .*duplicate timestamp 2015-01-01 "
                                        r"00:00:00\+00:00 \(also row 1\).*name their id column "
                                        r"in data\.series_id"):
        ForecastDataModule(str(src), "epoch", "value").load()
