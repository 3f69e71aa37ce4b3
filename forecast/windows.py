"""Forecast origins and dense windows over them (numpy only).

An origin t is a step whose forecast the model makes from inputs up to t; its
targets are t + 1 .. t + H. A window of ``length`` steps starting at ``a`` scores
positions ``a + first .. a + length - 1``, each an origin with at least
``history`` steps of the same segment before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """Steps ``start .. start + length - 1`` of one series; positions >= ``first`` scored."""

    series: int
    start: int
    length: int
    first: int


def origins(
    times: np.ndarray, segment: np.ndarray, start: int, end: int, history: int, horizon: int
) -> np.ndarray:
    """Indices t whose targets t+1..t+horizon all lie in [start, end], with ``history``
    earlier steps, all in t's segment (times in int64 ns).

    An origin belongs to a split by its targets alone: t itself may lie just before
    ``start`` (its input is history, like every earlier step).
    """
    n = len(times)
    t = np.arange(history, n - horizon)
    if t.size == 0:
        return t
    ok = (
        (times[t + 1] >= start)
        & (times[t + horizon] <= end)
        & (segment[t - history] == segment[t + horizon])
    )
    return t[ok]


def runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs [first, last] of sorted indices."""
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    firsts = np.concatenate([[idx[0]], idx[breaks + 1]])
    lasts = np.concatenate([idx[breaks], [idx[-1]]])
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def tile(series: int, idx: np.ndarray, history: int, length: int) -> list[Window]:
    """Windows that score every origin in ``idx`` exactly once (evaluation)."""
    span = length - history
    out = []
    for o0, o1 in runs(idx):
        n = o1 - o0 + 1
        if n < span:
            out.append(Window(series, o0 - history, history + n, history))
            continue
        full = n // span
        out += [Window(series, o0 - history + j * span, length, history) for j in range(full)]
        rest = n - full * span
        if rest:
            out.append(Window(series, o1 - length + 1, length, length - rest))
    return out


def slide(series: int, idx: np.ndarray, history: int, length: int, stride: int) -> list[Window]:
    """Overlapping full-length windows every ``stride`` steps (training)."""
    out = []
    for o0, o1 in runs(idx):
        last_start = o1 - length + 1
        out += [Window(series, a, length, history)
                for a in range(o0 - history, last_start + 1, stride)]
    return out
