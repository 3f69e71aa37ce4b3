"""Teacher-forced and honest (rolling-origin) forecasts on the same origins.

Teacher-forced: dense windows tiled over the origins, every position scored, as
in training. Honest: for each origin t a window ending at t, only its last
position's H outputs used, so nothing after t can reach the forecast.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from forecast.features import DataSpec, SeriesArrays
from forecast.metrics import score
from forecast.models import last_outputs
from forecast.windows import Window, tile


@dataclass
class Forecasts:
    """Forecasts for N origins, in the target's own units."""

    series: np.ndarray  # (N,) series names
    origin: np.ndarray  # (N,) int64 ns timestamps of the origins
    pred: np.ndarray  # (N, H), or (N, H, Q) quantiles
    target: np.ndarray  # (N, H), NaN where the target was missing
    last: np.ndarray  # (N,) last observed target at the origin (carried forward)

    def select(self, keep: np.ndarray) -> Forecasts:
        return Forecasts(self.series[keep], self.origin[keep], self.pred[keep],
                         self.target[keep], self.last[keep])


def mean_forecasts(forecasts: list[Forecasts]) -> Forecasts:
    """The mean of several models' forecasts of the same origins and targets (an ensemble
    of seeds): pred is averaged, the rest taken from the first."""
    first = forecasts[0]
    for fc in forecasts[1:]:
        if not (np.array_equal(fc.origin, first.origin) and np.array_equal(fc.series, first.series)
                and fc.pred.shape == first.pred.shape):
            raise ValueError("forecasts to average must be of the same origins and series")
    pred = np.mean([fc.pred for fc in forecasts], axis=0).astype(first.pred.dtype)
    return Forecasts(first.series, first.origin, pred, first.target, first.last)


@torch.no_grad()
def predict_windows(
    model: torch.nn.Module, arrays: list[SeriesArrays], windows: list[Window], horizon: int,
    batch_size: int = 256, quantiles: bool = False,
) -> list[np.ndarray]:
    """(T, H) scaled outputs per series, filled at every window's scored positions
    (``quantiles=True``: (T, H, Q) from a quantile model's ``forward_quantiles``)."""
    shape = (horizon, len(model.hparams.quantiles)) if quantiles else (horizon,)
    out = [np.full((len(a), *shape), np.nan, np.float32) for a in arrays]
    dense = model.forward_quantiles if quantiles else model
    by_len: dict[int, list[Window]] = defaultdict(list)
    for w in windows:
        by_len[w.length].append(w)
    device = next(model.parameters()).device
    fast = callable(getattr(model, "forecast_last", None)) and model.hparams.causal
    for length, group in by_len.items():
        last_only = fast and all(w.first == length - 1 for w in group)
        # the last-position path keeps well under half the activations of a window
        size = 4 * batch_size if last_only else batch_size
        for j in range(0, len(group), size):
            chunk = group[j : j + size]
            x = torch.from_numpy(
                np.stack([arrays[w.series].x[w.start : w.start + length] for w in chunk])
            ).to(device)
            if last_only:
                # honest windows: only the last position is scored, so only the positions
                # it reads are computed
                y = last_outputs(model, x, quantiles)[:, None]  # [B, 1, H (, Q)]
                y = y.float().cpu().numpy()
            else:
                y = dense(x).float().cpu().numpy()  # [B, L, H (, Q)]
            for w, yw in zip(chunk, y, strict=True):
                out[w.series][w.start + w.first : w.start + length] = yw[w.first - length:]
    return out


def honest_windows(origins: list[np.ndarray], history: int) -> list[Window]:
    """One window per origin t, ending at t, scoring only its last position."""
    return [Window(s, int(t) - history, history + 1, history)
            for s, o in enumerate(origins) for t in o]


def dense_windows(origins: list[np.ndarray], history: int, span: int) -> list[Window]:
    """Training-style dense windows of history + span steps scoring each origin once."""
    return [w for s, o in enumerate(origins) for w in tile(s, o, history, history + span)]


def collect(
    arrays: list[SeriesArrays], origins: list[np.ndarray], outputs: list[np.ndarray],
    spec: DataSpec,
) -> Forecasts:
    """Gather outputs and targets at the origins and convert to the target's units."""
    horizon = outputs[0].shape[1]
    steps = np.arange(1, horizon + 1)
    parts = []
    for a, o, p in zip(arrays, origins, outputs, strict=True):
        parts.append((
            np.full(len(o), a.name, dtype=object), a.times[o], p[o],
            a.y[o[:, None] + steps[None, :]], a.x[o, 0],
        ))
    series, origin, pred, target, last = (np.concatenate(z) for z in zip(*parts, strict=True))
    return Forecasts(series, origin, spec.to_units(pred.astype(np.float64)),
                     spec.to_units(target.astype(np.float64)),
                     spec.to_units(last.astype(np.float64)))


def forecast_origins(
    model: torch.nn.Module, arrays: list[SeriesArrays], origins: list[np.ndarray],
    spec: DataSpec, protocol: str, span: int = 256, batch_size: int = 256,
    quantiles: bool = False,
) -> Forecasts:
    """Forecasts at the origins under ``protocol`` 'honest' or 'teacher_forced'
    (``quantiles=True``: a quantile model's quantiles, ``pred`` (N, H, Q))."""
    history = model.receptive_field - 1
    if protocol == "honest":
        windows = honest_windows(origins, history)
    elif protocol == "teacher_forced":
        windows = dense_windows(origins, history, span)
    else:
        raise ValueError(f"protocol={protocol!r}: expected 'honest' or 'teacher_forced'")
    horizon = model.hparams.horizon
    outputs = predict_windows(model, arrays, windows, horizon, batch_size, quantiles)
    return collect(arrays, origins, outputs, spec)


def station_scores(fc: Forecasts, reference: Forecasts) -> dict:
    """Scores overall and per series against the reference's predictions."""
    out = {"all": score(fc.target, fc.pred, reference.pred)}
    for name in dict.fromkeys(fc.series):
        keep = fc.series == name
        out[str(name)] = score(fc.target[keep], fc.pred[keep], reference.pred[keep])
    return out
