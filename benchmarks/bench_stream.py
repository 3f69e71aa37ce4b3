"""Streaming step against recomputing the receptive field, side by side in one run.

Usage::

    python benchmarks/bench_stream.py [--threads 2] [--members 4] [--min-seconds 1]

For R = 255, 1023 and 4095 (default-size nets: 32 channels, kernel 3, dilations 1, 2,
4, ... doubling, H = 24) and batch 1 and 256 (series forecast together), one new
observation per series is forecast by:

- ``step``: :func:`forecast.stream.step` on the per-block states;
- ``recompute``: ``forward`` over the last R steps (the dense window), 32 series per
  call to bound memory;
- ``fast path``: ``forecast_last`` over the last R steps (the dilated tree), likewise.

Prints latency per call, throughput (series-steps per second) and the ratios.
Weights are random: timings do not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast.module import ForecastModule  # noqa: E402
from forecast.stream import init_state, step  # noqa: E402

CHUNK = 32  # series per recompute call


def latency(fn, min_seconds: float) -> float:
    """Mean seconds per call over at least ``min_seconds`` after one warm-up call (a call
    that alone lasts 5 x ``min_seconds`` is its own measure)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first >= 5 * min_seconds:
        return first
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / n


@torch.no_grad()
def measure(model: ForecastModule, x: torch.Tensor, min_seconds: float
            ) -> tuple[float, float, float]:
    """Seconds per call: step (state warmed on all but the last step), recompute, fast path."""
    state = init_state(model, x[:, :-1])
    parts = x.split(CHUNK)  # recompute in bounded memory (a 4095-step dense pass is large)
    return (latency(lambda: step(model, x[:, -1], state), min_seconds),
            latency(lambda: [model(p)[:, -1] for p in parts], min_seconds),
            latency(lambda: [model.forecast_last(p) for p in parts], min_seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--features", type=int, default=27)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--layers", default="7,9,11",
                        help="stack depths: R = 2 ** (layers + 1) - 1")
    parser.add_argument("--batches", default="1,256", help="series stepped together")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads, members {args.members}, {args.features} features")
    print(f"{'R':>5} {'batch':>5} | {'step ms':>9} {'recompute ms':>12} {'fast ms':>9} | "
          f"{'step/s (series)':>15} | {'vs recompute':>12} {'vs fast':>8}")
    for layers in (int(v) for v in args.layers.split(",")):
        torch.manual_seed(0)
        model = ForecastModule(args.features, 24, dilations=[2**i for i in range(layers)],
                               members=args.members).eval()
        r = model.receptive_field
        for batch in (int(v) for v in args.batches.split(",")):
            x = torch.randn(batch, r, args.features)
            t_step, t_full, t_fast = measure(model, x, args.min_seconds)
            print(f"{r:>5} {batch:>5} | {t_step * 1e3:9.3f} {t_full * 1e3:12.2f} "
                  f"{t_fast * 1e3:9.2f} | {batch / t_step:15.0f} | "
                  f"{t_full / t_step:11.1f}x {t_fast / t_step:7.1f}x", flush=True)


if __name__ == "__main__":
    main()
