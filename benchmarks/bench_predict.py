"""Batch forecasting throughput: ``forecast.predict.forecast_files`` against a loop that runs
the model on one window at a time, in the same run, on the same files and model.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_predict.py [--files 1000] [--hours 336]
        [--loop-files 100] [--checkpoint PATH] [--threads 1]

What it does:

- writes ``--files`` CSV files of ``--hours`` hourly rows each (two weeks by default) in a
  temporary folder, with the NYC weather columns (``time_hour``, ``origin``, ``temp`` and
  seven covariates, with the NYC bounds);
- builds the default-size causal model (``ForecastModule`` defaults: 32 channels, kernel 3,
  dilations 1..64, R = 255, H = 24) with a data spec fitted on one of those files, or loads
  ``--checkpoint`` (whose data spec must match those columns). Weights do not change the
  timing, so an untrained default-size model is a fair stand-in;
- ``mode=forecast`` (one origin per file, the next 24 hours) and ``mode=backtest`` (every
  origin with R - 1 steps before it and H after: 336 - 254 - 24 = 58 per file), each:
  batched through ``forecast_files`` over all files, and one window at a time
  (read, validate, one ``model(x[None])`` per origin, write) over the first
  ``--loop-files`` files, all outputs written atomically in both;
- prints files/s, forecasts/s (one forecast = one origin's H values), the speed-up, and the
  peak resident memory of the process (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast.features import DataSpec, fit_spec, series_arrays  # noqa: E402
from forecast.files import atomic_write_text  # noqa: E402
from forecast.frame import FrameSpec, read_frame  # noqa: E402
from forecast.module import ForecastModule  # noqa: E402
from forecast.predict import forecast_files, load_model, output_name  # noqa: E402
from forecast.windows import origins as find_origins  # noqa: E402

COVARIATES = ("dewp", "humid", "pressure", "wind_speed", "wind_dir", "precip", "visib")
BOUNDS = {"temp": (-60.0, 130.0), "dewp": (-80.0, 100.0), "humid": (0.0, 100.0),
          "pressure": (900.0, 1100.0), "wind_speed": (0.0, 150.0), "wind_dir": (0.0, 360.0),
          "precip": (0.0, 10.0), "visib": (0.0, 100.0)}


def make_files(folder: Path, n_files: int, hours: int, seed: int = 0) -> list[Path]:
    """``n_files`` CSVs of ``hours`` hourly NYC-like rows each."""
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n_files):
        t = pd.date_range("2013-01-01", periods=hours, freq="h", tz="UTC") + pd.Timedelta(
            hours=int(rng.integers(0, 8000)))
        day = np.sin(2 * np.pi * np.arange(hours) / 24 + rng.uniform(0, 6))
        temp = 50 + 10 * day + np.cumsum(rng.normal(0, 0.4, hours))
        df = pd.DataFrame({
            "origin": f"S{k:04d}", "time_hour": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temp": temp.round(2), "dewp": (temp - 10 + rng.normal(0, 2, hours)).round(2),
            "humid": rng.uniform(30, 95, hours).round(2),
            "pressure": (1015 + np.cumsum(rng.normal(0, 0.3, hours))).round(1),
            "wind_speed": rng.gamma(2, 5, hours).round(2),
            "wind_dir": rng.uniform(0, 360, hours).round(0),
            "precip": np.where(rng.random(hours) < 0.05, rng.uniform(0, 0.5, hours), 0).round(2),
            "visib": rng.uniform(2, 10, hours).round(1),
        })
        paths.append(folder / f"station_{k:04d}.csv")
        df.to_csv(paths[-1], index=False)
    return paths


def default_model(path: Path) -> ForecastModule:
    """The default-size causal model with a data spec fitted on one generated file."""
    frame = read_frame(path, FrameSpec("time_hour", "temp", COVARIATES, "origin", "1h",
                                       bounds=BOUNDS))
    spec = fit_spec(frame, frame.data["timestamp"].max())
    return ForecastModule(n_features=spec.n_features, data_spec=spec.to_dict()).eval()


def one_window_loop(model: ForecastModule, paths: list[Path], out: Path, mode: str) -> int:
    """Read, validate, forecast each origin with its own forward pass, write; forecasts made."""
    spec = DataSpec.from_dict(model.hparams.data_spec)
    r, h = model.receptive_field, model.hparams.horizon
    steps = np.arange(1, h + 1)
    n = 0
    for path in paths:
        frame = read_frame(path, spec.frame_spec())
        rows = []
        for a in series_arrays(frame, spec):
            if mode == "forecast":
                idx = np.array([len(a) - 1])
            else:
                idx = find_origins(a.times, a.segment, a.times[0], a.times[-1], r - 1, h)
            for t in idx:
                x = torch.from_numpy(a.x[t - r + 1 : t + 1][None])  # [1, R, F]
                y = spec.to_units(model(x)[0, -1].numpy().astype(np.float64))  # [H]
                cutoff = pd.Timestamp(int(a.times[t]), tz="UTC")
                rows += [(a.name, cutoff, cutoff + s * spec.step, s, v)
                         for s, v in zip(steps, y, strict=True)]
                n += 1
        df = pd.DataFrame(rows, columns=["origin", "cutoff", "timestamp", "step", "forecast"])
        atomic_write_text(out / output_name(path), df.to_csv(index=False))
    return n


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--hours", type=int, default=24 * 14)
    ap.add_argument("--loop-files", type=int, default=100)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        t0 = time.perf_counter()
        paths = make_files(tmp / "in", args.files, args.hours)
        print(f"generated {len(paths)} files x {args.hours} hourly rows "
              f"in {time.perf_counter() - t0:.1f} s")
        model = load_model(args.checkpoint)[0] if args.checkpoint else default_model(paths[0])
        n_params = sum(p.numel() for p in model.parameters())
        print(f"model: {'checkpoint ' + str(args.checkpoint) if args.checkpoint else 'default'}"
              f" causal={model.hparams.causal} R={model.receptive_field} "
              f"H={model.hparams.horizon} params={n_params} threads={args.threads}")
        print(f"peak RSS before forecasting: {peak_rss_mb():.0f} MB")
        with torch.inference_mode():  # warm up, so neither way pays first-call costs
            warm = tmp / "warm"
            warm.mkdir()
            forecast_files(model, paths[:8], warm, mode="forecast")
            one_window_loop(model, paths[:8], warm, "forecast")
        loop_paths = paths[: args.loop_files]
        print(f"{'mode':9} {'way':18} {'files':>6} {'seconds':>8} {'files/s':>8} "
              f"{'forecasts':>9} {'forecasts/s':>11}")
        for mode in ("forecast", "backtest"):
            with torch.inference_mode():
                t0 = time.perf_counter()
                res = forecast_files(model, paths, tmp / f"batched_{mode}", mode=mode)
                tb = time.perf_counter() - t0
                if not all(r.ok for r in res):
                    raise SystemExit(f"failed: {[r.reason for r in res if not r.ok][:3]}")
                nb = sum(r.forecasts for r in res)
                (tmp / f"loop_{mode}").mkdir()
                t0 = time.perf_counter()
                nl = one_window_loop(model, loop_paths, tmp / f"loop_{mode}", mode)
                tl = time.perf_counter() - t0
            print(f"{mode:9} {'batched':18} {len(paths):6d} {tb:8.2f} {len(paths) / tb:8.1f} "
                  f"{nb:9d} {nb / tb:11.1f}")
            print(f"{mode:9} {'one window a time':18} {len(loop_paths):6d} {tl:8.2f} "
                  f"{len(loop_paths) / tl:8.1f} {nl:9d} {nl / tl:11.1f}")
            print(f"{mode:9} speed-up (forecasts/s, batched / one window at a time): "
                  f"{(nb / tb) / (nl / tl):.1f}x")
            # the two ways agree on the files both forecast
            a = pd.read_csv(tmp / f"batched_{mode}" / output_name(loop_paths[0]))
            b = pd.read_csv(tmp / f"loop_{mode}" / output_name(loop_paths[0]))
            diff = np.abs(a["forecast"].to_numpy() - b["forecast"].to_numpy()).max()
            print(f"{mode:9} max |batched - one window| on {loop_paths[0].name}: {diff:.2e}")
        print(f"peak RSS of the process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
