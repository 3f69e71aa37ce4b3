"""The field net's time-dilated 3-D convolution: torch's Conv3d with a time dilation
against the same kernel applied as one 2-D convolution over the stacked time taps
(``forecast.fields.net.TimeConv3d``), forward and backward, on CPU.

Usage::

    python benchmarks/bench_field_conv.py [--threads 2] [--repeats 3] [--dilation 4]

Inputs: 4 windows of 78 frames on the ERA5 grid (33 x 49), 8 -> 16 channels, kernel
3 x 3 x 3 (the default field net's gated layer). Prints the best time of each and their
ratio, after checking that both give the same output.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from forecast.fields.net import TimeConv3d


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dilation", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    conv = TimeConv3d(8, 16, 3, 3, a.dilation, causal=True)
    x = torch.randn(4, 8, 78, 33, 49, requires_grad=True)

    def native() -> torch.Tensor:
        return F.conv3d(F.pad(x, conv.pad), conv.weight, conv.bias, dilation=(a.dilation, 1, 1))

    torch.testing.assert_close(conv(x), native(), rtol=1e-4, atol=1e-4)
    t_native = best_time(lambda: native().square().mean().backward(), a.repeats)
    t_taps = best_time(lambda: conv(x).square().mean().backward(), a.repeats)
    print(f"threads {a.threads}, dilation {a.dilation}: Conv3d {t_native:.3f} s, "
          f"stacked taps {t_taps:.3f} s, ratio {t_native / t_taps:.2f}")


if __name__ == "__main__":
    main()
