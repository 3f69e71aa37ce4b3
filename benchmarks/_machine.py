"""The state of the machine a benchmark runs on: a reference workload, the cost of creating
a file, and resident memory."""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def reference_ms(repeat: int = 5) -> float:
    """Best time of a fixed CPU and memory workload (sort and sum 2**20 random floats, a
    float32 matrix product): printed with every run, so that runs made while the host was
    slower (other machines on it show neither in ``uptime`` nor as steal time) can be told
    from runs on a quiet machine."""
    x = np.random.default_rng(0).random(2**20)
    a = torch.randn(256, 256)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.sort(x).sum()
        for _ in range(20):
            a @ a
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def create_ms(folder: Path, n: int = 300) -> float:
    """Mean time to create, fill (1.5 kB) and rename one file into a new subfolder of
    ``folder``: the disk's part of each output, which no batching removes."""
    sub = Path(tempfile.mkdtemp(dir=folder))
    data = b"x" * 1500
    t0 = time.perf_counter()
    for i in range(n):
        tmp, final = sub / f".f{i}.tmp", sub / f"f{i}.csv"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.write(fd, data)
        os.close(fd)
        os.replace(tmp, final)
    seconds = time.perf_counter() - t0
    shutil.rmtree(sub)
    return seconds / n * 1e3


def rss_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    """Resident memory of this process now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return rss_mb()
