"""The per-origin honest backtest of the test origins, three ways, in one run.

Usage::

    python benchmarks/bench_backtest.py [--checkpoint PATH] [--threads 2] [overrides ...]

On the default task (three stations, the test split: 5,400 origins), each origin gets
its own window ending at it and only the window's last forecast is used:

- ``full window``: the window's dense forward, every position of every layer (the path
  before the fast path, still the only one for a non-causal net);
- ``fast path``: ``forecast_origins(..., "honest")``, i.e. ``forecast_last``, the dilated
  tree only;
- ``teacher-forced``: one dense pass over the same origins (the lower bound, not honest
  for a non-causal net).

Prints seconds, ratios, and the largest difference between the first two (degF).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _task import default_task

from forecast.evaluation import collect, forecast_origins, honest_windows


@torch.no_grad()
def full_window_honest(model, arrays, origins, batch_size: int) -> list[np.ndarray]:
    """One full window per origin through ``forward``; only its last position kept."""
    out = [np.full((len(a), model.hparams.horizon), np.nan, np.float32) for a in arrays]
    windows = honest_windows(origins, model.receptive_field - 1)
    for j in range(0, len(windows), batch_size):
        chunk = windows[j : j + batch_size]
        x = np.stack([arrays[w.series].x[w.start : w.start + w.length] for w in chunk])
        y = model(torch.from_numpy(x))[:, -1].numpy()  # [B, H]
        for w, yw in zip(chunk, y, strict=True):
            out[w.series][w.start + w.length - 1] = yw
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dm, model = default_task(args.overrides, args.checkpoint)
    origins, spec, bs = dm.origins["test"], dm.spec, args.batch_size
    n = sum(len(o) for o in origins)
    print(f"{n} test origins over {len(origins)} series, R = {model.receptive_field}, "
          f"members = {model.hparams.members}, {args.threads} threads, batch {bs}")
    t_full, full = timed(lambda: full_window_honest(model, dm.arrays, origins, bs), 1)
    full = collect(dm.arrays, origins, full, spec)
    t_fast, fast = timed(lambda: forecast_origins(model, dm.arrays, origins, spec, "honest",
                                                  dm.span, bs), args.repeats)
    t_tf, _ = timed(lambda: forecast_origins(model, dm.arrays, origins, spec, "teacher_forced",
                                             dm.span, bs), args.repeats)
    diff = float(np.max(np.abs(fast.pred - full.pred)))
    print(f"full window per origin : {t_full:8.3f} s")
    print(f"fast path per origin   : {t_fast:8.3f} s   {t_full / t_fast:6.1f}x faster")
    print(f"teacher-forced dense   : {t_tf:8.3f} s   fast path is {t_fast / t_tf:.1f}x it")
    print(f"max |fast - full| = {diff:.2e} degF over {fast.pred.size} forecasts")


if __name__ == "__main__":
    main()
