"""Batch forecasting: throughput against a one-window-at-a-time loop measured in the same run,
and peak memory for a 1,000-file batch and a one-million-row backtest.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_predict.py [--files 1000] [--hours 336]
        [--loop-files 100] [--backtest-files 100] [--backtest-rows 1000000]
        [--checkpoint PATH] [--threads 1] [--repeat 5] [--profile DIR] [--tmp-root DIR]

What it does:

- writes ``--files`` CSV files of ``--hours`` hourly rows each (two weeks by default) with the
  NYC weather columns (``time_hour``, ``origin``, ``temp`` and seven covariates);
- builds the causal model of ``configs/model/causal.yaml`` (untrained, seeded, H = 24: the
  layers, linear path and level inputs of a default run, R = 279) with a data spec fitted
  on one of those files, or loads ``--checkpoint``;
- ``mode=forecast`` (one window per file, the next 24 hours): ``forecast_files`` over all
  files, then, in the same run, a loop over the first ``--loop-files`` that reads, validates,
  runs ``model(x[None])`` on one window and writes each file; prints files/s of both and
  their ratio. ``mode=backtest`` the same over ``--backtest-files`` (forecasts/s). The two
  ways take turns ``--repeat`` times and each keeps its best time: on a shared machine the
  least disturbed run, so that a burst of other work during one way does not skew the ratio.
  The loop is what a program does one file at a time: ``read_frame`` (with its own fast
  path for plain files), ``series_arrays``, the full forward pass, and a pandas CSV written
  by ``atomic_write_text`` (temporary file, fsync, rename); ``forecast_files`` reads 64
  plain files at a time in one pass, runs only the positions the last output reads, and
  flushes the folder once per batch;
- peak memory, each in a fresh process so that one does not inherit the other's peak:
  the ``--files`` batch in forecast mode, and a backtest of one file of ``--backtest-rows``
  hourly rows (every origin, 24 values each, streamed to disk); it prints the resident
  memory after loading (interpreter, torch, the model) and the peak, and their difference;
- ``--profile DIR``: profiles one more batched forecast-mode run (cProfile) into DIR;
- ``--tmp-root DIR``: inputs and outputs go there instead of the system's temporary folder
  (a tmpfs such as /dev/shm takes the disk's file-creation time out of both ways);
- a fixed reference workload is timed before and after the throughput runs, and so is
  creating one small file (create, write, rename): on a shared host they tell a quiet
  machine and disk from slowed ones when ``uptime`` does not.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import create_ms, current_rss_mb, reference_ms, rss_mb  # noqa: E402
from _stations import default_model, make_files, station  # noqa: E402

from forecast.features import DataSpec, series_arrays  # noqa: E402
from forecast.files import atomic_write_text  # noqa: E402
from forecast.frame import read_frame  # noqa: E402
from forecast.module import ForecastModule  # noqa: E402
from forecast.predict import forecast_files, load_model, output_name  # noqa: E402
from forecast.windows import origins as find_origins  # noqa: E402


def get_model(args: argparse.Namespace, sample: Path) -> ForecastModule:
    return load_model(args.checkpoint)[0] if args.checkpoint else default_model(sample)


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


def child(args: argparse.Namespace) -> None:
    """Peak memory of one job in this fresh process; prints a JSON line."""
    paths = sorted(Path(args.child_inputs).glob("*.csv"))
    model = get_model(args, Path(args.sample))
    torch.set_num_threads(args.threads)
    base = current_rss_mb()
    t0 = time.perf_counter()
    with torch.inference_mode():
        res = forecast_files(model, paths, Path(args.child_out), mode=args.child)
    seconds = time.perf_counter() - t0
    if not all(r.ok for r in res):
        raise SystemExit(f"failed: {[r.reason for r in res if not r.ok][:3]}")
    print(json.dumps({"files": len(paths), "forecasts": sum(r.forecasts for r in res),
                      "seconds": seconds, "rss_loaded_mb": base, "rss_peak_mb": rss_mb()}))


def measure_memory(args: argparse.Namespace, inputs: Path, out: Path, mode: str,
                   sample: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--child-inputs", str(inputs),
           "--child-out", str(out), "--sample", str(sample), "--threads", str(args.threads)]
    if args.checkpoint:
        cmd += ["--checkpoint", str(args.checkpoint)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def throughput(model: ForecastModule, paths: list[Path], loop_paths: list[Path], tmp: Path,
               mode: str, profile: Path | None = None, repeat: int = 1) -> None:
    """Both ways ``repeat`` times, taking turns, each into a new folder; the best time of
    each (on a shared machine, the run least disturbed by other work)."""
    tb = tl = np.inf
    with torch.inference_mode():
        for k in range(repeat):
            t0 = time.perf_counter()
            res = forecast_files(model, paths, tmp / f"batched_{mode}_{k}", mode=mode)
            tb = min(tb, time.perf_counter() - t0)
            if not all(r.ok for r in res):
                raise SystemExit(f"failed: {[r.reason for r in res if not r.ok][:3]}")
            nb = sum(r.forecasts for r in res)
            (tmp / f"loop_{mode}_{k}").mkdir()
            t0 = time.perf_counter()
            nl = one_window_loop(model, loop_paths, tmp / f"loop_{mode}_{k}", mode)
            tl = min(tl, time.perf_counter() - t0)
    print(f"{mode:9} {'batched':18} {len(paths):6d} {tb:8.2f} {len(paths) / tb:8.1f} "
          f"{nb:9d} {nb / tb:11.1f}")
    print(f"{mode:9} {'one window a time':18} {len(loop_paths):6d} {tl:8.2f} "
          f"{len(loop_paths) / tl:8.1f} {nl:9d} {nl / tl:11.1f}")
    print(f"{mode:9} ratio (batched / one window at a time): {(nb / tb) / (nl / tl):.1f}x")
    a = pd.read_csv(tmp / f"batched_{mode}_0" / output_name(loop_paths[0]))
    b = pd.read_csv(tmp / f"loop_{mode}_0" / output_name(loop_paths[0]))
    diff = np.abs(a["forecast"].to_numpy() - b["forecast"].to_numpy()).max()
    print(f"{mode:9} max |batched - one window| on {loop_paths[0].name}: {diff:.2e}")
    if profile:  # a separate pass: the profiler's overhead stays out of the timings above
        prof = cProfile.Profile()
        with torch.inference_mode():
            prof.runcall(forecast_files, model, paths, tmp / f"profiled_{mode}", mode=mode)
        profile.mkdir(parents=True, exist_ok=True)
        prof.dump_stats(str(profile / f"{mode}.prof"))
        with open(profile / f"{mode}.txt", "w") as f:
            pstats.Stats(prof, stream=f).sort_stats("cumulative").print_stats(40)
        print(f"{mode:9} profile: {profile / (mode + '.txt')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--hours", type=int, default=24 * 14)
    ap.add_argument("--loop-files", type=int, default=100)
    ap.add_argument("--backtest-files", type=int, default=100)
    ap.add_argument("--backtest-rows", type=int, default=1_000_000)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tmp-root", type=Path, help="where the inputs and outputs go (default: "
                    "the system's temporary folder), e.g. a tmpfs such as /dev/shm to take "
                    "the disk's file-creation time out of the comparison")
    ap.add_argument("--child", choices=["forecast", "backtest"], help=argparse.SUPPRESS)
    ap.add_argument("--child-inputs", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--sample", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tmp_root is not None and not args.tmp_root.is_dir():
        ap.error(f"--tmp-root {args.tmp_root}: not a folder")
    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(dir=args.tmp_root) as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        t0 = time.perf_counter()
        paths = make_files(tmp / "in", args.files, args.hours)
        print(f"generated {len(paths)} files x {args.hours} hourly rows "
              f"in {time.perf_counter() - t0:.1f} s")
        model = get_model(args, paths[0])
        n_params = sum(p.numel() for p in model.parameters())
        print(f"model: {'checkpoint ' + str(args.checkpoint) if args.checkpoint else 'default'}"
              f" causal={model.hparams.causal} R={model.receptive_field} "
              f"H={model.hparams.horizon} params={n_params} threads={args.threads} "
              f"forecast_last={hasattr(model, 'forecast_last')}")
        with torch.inference_mode():  # warm up, so neither way pays first-call costs
            (tmp / "warm").mkdir()
            forecast_files(model, paths[:8], tmp / "warm", mode="forecast")
            one_window_loop(model, paths[:8], tmp / "warm", "forecast")
        print(f"reference workload before: {reference_ms():.1f} ms (lower: a quieter machine); "
              f"creating a file: {create_ms(tmp):.3f} ms")
        print(f"{'mode':9} {'way':18} {'files':>6} {'seconds':>8} {'files/s':>8} "
              f"{'forecasts':>9} {'forecasts/s':>11}")
        throughput(model, paths, paths[: args.loop_files], tmp, "forecast", args.profile,
                   args.repeat)
        if args.backtest_files:
            bt = paths[: args.backtest_files]
            throughput(model, bt, bt[: max(1, args.backtest_files // 10)], tmp, "backtest",
                       repeat=args.repeat)
        print(f"reference workload after: {reference_ms():.1f} ms; creating a file: "
              f"{create_ms(tmp):.3f} ms")
        m = measure_memory(args, tmp / "in", tmp / "mem_batch", "forecast", paths[0])
        print(f"memory, forecast batch of {m['files']} files: {m['rss_loaded_mb']:.0f} MB "
              f"resident after loading, peak {m['rss_peak_mb']:.0f} MB: +"
              f"{m['rss_peak_mb'] - m['rss_loaded_mb']:.0f} MB ({m['seconds']:.1f} s)")
        if args.backtest_rows:
            (tmp / "big").mkdir()
            t0 = time.perf_counter()
            station(0, args.backtest_rows, np.random.default_rng(1)).to_csv(
                tmp / "big" / "big.csv", index=False)
            mb = (tmp / "big" / "big.csv").stat().st_size / 2**20
            print(f"generated one file of {args.backtest_rows} rows ({mb:.0f} MB) in "
                  f"{time.perf_counter() - t0:.1f} s")
            m = measure_memory(args, tmp / "big", tmp / "mem_big", "backtest", paths[0])
            out_mb = (tmp / "mem_big" / "big.forecast.csv").stat().st_size / 2**20
            print(f"memory, backtest of {args.backtest_rows} rows ({m['forecasts']} origins, "
                  f"{out_mb:.0f} MB written): {m['rss_loaded_mb']:.0f} MB resident after "
                  f"loading, peak {m['rss_peak_mb']:.0f} MB: +"
                  f"{m['rss_peak_mb'] - m['rss_loaded_mb']:.0f} MB ({m['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
