"""Training throughput and achieved GFLOP/s against a float32 matmul peak, in one run.

Usage::

    python benchmarks/bench_train.py [--threads 2] [--steps 20] [overrides ...]

On the default task (``python train.py`` with ``overrides``): batches from the real
training loader; one optimiser step = forward, backward (the module's own L1 loss) and
AdamW. Prints:

- supervised positions per second (window positions with at least one observed
  target; each carries H targets);
- FLOPs of one step by ``torch.utils.flop_counter.FlopCounterMode`` (forward and
  backward; the optimiser's element-wise work is not counted), hence achieved GFLOP/s;
- the float32 matmul peak measured now (a square ``torch.mm``, best of several sizes),
  and the ratio, with a profile of the top operators when it falls below half.
"""

from __future__ import annotations

import argparse
import time

import torch
from _task import default_task
from torch.utils.flop_counter import FlopCounterMode


def matmul_peak(seconds: float = 1.0) -> float:
    """Best float32 GFLOP/s of ``torch.mm`` over a few square sizes."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        k, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            torch.mm(a, b)
            k += 1
        best = max(best, 2 * n**3 * k / (time.perf_counter() - start) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dm, model = default_task(args.overrides)
    model.train()
    opt = model.configure_optimizers()
    if isinstance(opt, dict):  # {"optimizer": ..., "lr_scheduler": ...}
        opt = opt["optimizer"]
    batches = []
    for batch in dm.train_dataloader():
        batches.append(batch)
        if len(batches) == args.steps + 1:
            break

    def train_step(batch) -> None:
        opt.zero_grad(set_to_none=True)
        loss, _, _ = model._loss(batch)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        train_step(batches[0])  # also the warm-up
    flops_per_position = counter.get_total_flops() / int(batches[0][2].any(-1).sum())
    positions, start = 0, time.perf_counter()
    for batch in batches[1:]:
        train_step(batch)
        positions += int(batch[2].any(-1).sum())
    elapsed = time.perf_counter() - start
    rate = positions / elapsed
    achieved = rate * flops_per_position / 1e9
    peak = matmul_peak()
    x = batches[0][0]
    print(f"{args.threads} threads; batches of {tuple(x.shape)}, R = {model.receptive_field}, "
          f"members = {model.hparams.members}")
    print(f"training: {rate:,.0f} supervised positions/s ({positions} in {elapsed:.2f} s), "
          f"{flops_per_position / 1e6:.2f} MFLOP per position")
    print(f"achieved {achieved:.1f} GFLOP/s; float32 matmul peak now {peak:.1f} GFLOP/s; "
          f"ratio {achieved / peak:.2f}")
    if achieved < peak / 2:
        with torch.profiler.profile() as prof:
            for batch in batches[1:4]:
                train_step(batch)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    main()
