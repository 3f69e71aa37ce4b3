"""Windows from many files and series through the model together, in bounded chunks.

The work is cut into :class:`Unit` s: up to ``chunk`` origins of one series of one file.
Units of several files are forecast in one pass (forecast mode: one window per file), and a
long backtest is many units, so no pass holds more than a chunk of forecasts.

A causal model scores a backtest with dense windows (one pass over each stretch), which
gives the numbers of one window per origin because nothing after an origin reaches it; a
non-causal model, and every forecast-mode origin, gets one window ending at the origin, of
which only the last position is computed (:func:`forecast.models.last_outputs`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from forecast.features import SeriesArrays
from forecast.models import last_outputs
from forecast.windows import tile

DENSE_SPAN = 256  # scored positions per dense backtest window


@dataclass
class Unit:
    """Up to a chunk of sorted origins of one series of one queued file."""

    job: int  # the queued file
    series: int  # index of the series in that file's good series
    origins: np.ndarray
    last: bool  # the file's last unit


def units(job: int, origins: list[np.ndarray], chunk: int) -> list[Unit]:
    """A file's origins cut into units of at most ``chunk`` origins."""
    out = [Unit(job, s, o[i:i + chunk], False)
           for s, o in enumerate(origins) for i in range(0, len(o), chunk)]
    if out:
        out[-1].last = True
    return out


@torch.inference_mode()
def forecast_units(model: torch.nn.Module, work: list[Unit], arrays: list[SeriesArrays],
                   horizon: int, dense: bool, batch_size: int) -> list[np.ndarray]:
    """Scaled forecasts (n origins, H) of each unit; ``arrays[k]`` is unit k's series.
    A quantile model's are its quantiles, (n origins, H, Q)."""
    history = model.receptive_field - 1
    levels = model.hparams.get("quantiles")
    shape = (horizon, len(levels)) if levels else (horizon,)
    outs = [np.empty((len(u.origins), *shape), np.float32) for u in work]
    # (window length, first scored position) -> [(unit, window start, first output row)]
    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for k, u in enumerate(work):
        if dense:
            for w in tile(0, u.origins, history, history + DENSE_SPAN):
                row = int(np.searchsorted(u.origins, w.start + w.first))
                groups[(w.length, w.first)].append((k, w.start, row))
        else:
            starts = (u.origins - history).tolist()
            groups[(history + 1, history)] += [(k, s, r) for r, s in enumerate(starts)]
    device = next(model.parameters()).device
    for (length, first), group in groups.items():
        for j in range(0, len(group), batch_size):
            chunk = group[j:j + batch_size]
            x = torch.from_numpy(np.stack([arrays[k].x[s:s + length] for k, s, _ in chunk]))
            x = x.to(device)  # [B, L, F]
            if first == length - 1:
                y = last_outputs(model, x, bool(levels))[:, None]  # [B, 1, H (, Q)]
            else:
                y = (model.forward_quantiles(x) if levels else model(x))[:, first:]
            y = y.float().cpu().numpy()
            n = length - first
            for (k, _, row), yk in zip(chunk, y, strict=True):
                outs[k][row:row + n] = yk
    return outs
