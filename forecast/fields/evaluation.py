"""Teacher-forced and honest forecasts of fields on the same origins, and their scores.

Teacher-forced: dense windows tiled over the origins, every step scored, as in
training. Honest: for each origin t a window of R frames ending at t, only its last
step's H maps used. Scores are over all grid points, in the field's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from forecast.evaluation import dense_windows, honest_windows
from forecast.fields.data import field_inputs
from forecast.fields.reading import Field
from forecast.metrics import score
from forecast.windows import Window


@dataclass
class FieldForecasts:
    """Forecasts at N origins in the field's units."""

    origin: np.ndarray  # (N,) frame indices of the origins
    pred: np.ndarray  # (N, H, Y, X)
    target: np.ndarray  # (N, H, Y, X)

    def flat(self, what: str) -> np.ndarray:
        """(N, H, Y, X) -> (N * Y * X, H), the layout of ``forecast.metrics``."""
        a = getattr(self, what)
        return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def targets(field: Field, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(N,) origins -> (N, H, Y, X) observed maps at t + 1 .. t + H (reads only those)."""
    a = int(origins.min()) + 1
    frames = field.frames(a, int(origins.max()) + horizon + 1)
    steps = np.arange(1, horizon + 1)
    return frames[origins[:, None] + steps[None, :] - a].astype(np.float64)


def last_frames(field: Field, origins: np.ndarray) -> np.ndarray:
    """(N,) origins -> (N, Y, X) the maps at the origins (reads only those)."""
    a = int(origins.min())
    return field.frames(a, int(origins.max()) + 1)[origins - a].astype(np.float64)


@torch.no_grad()
def predict_windows(model: torch.nn.Module, field: Field, spec: dict,
                    windows: list[Window]) -> dict[int, np.ndarray]:
    """Scaled outputs (H, Y, X) per scored frame index of every window."""
    out: dict[int, np.ndarray] = {}
    device = next(model.parameters()).device
    by_len: dict[int, list[Window]] = {}
    for w in windows:
        by_len.setdefault(w.length, []).append(w)
    batch = max(1, 4096 // max(by_len, default=1))  # about 4096 frames a forward pass
    for length, group in by_len.items():
        for j in range(0, len(group), batch):
            chunk = group[j : j + batch]
            x = np.stack([
                field_inputs((field.frames(w.start, w.start + length) - spec["mean"]) / spec["std"],
                             field.times[w.start : w.start + length], spec["calendar"])
                for w in chunk])
            y = model(torch.from_numpy(x).to(device)).float().cpu().numpy()  # [B, L, H, Y, X]
            for w, yw in zip(chunk, y, strict=True):
                for i in range(w.first, length):
                    out[w.start + i] = yw[i]
    return out


def field_forecasts(model: torch.nn.Module, field: Field, spec: dict, origins: np.ndarray,
                    protocol: str, span: int = 48) -> FieldForecasts:
    """Forecasts at ``origins`` under ``protocol`` 'honest' or 'teacher_forced'."""
    history = model.receptive_field - 1
    if protocol == "honest":
        windows = honest_windows([origins], history)
    elif protocol == "teacher_forced":
        windows = dense_windows([origins], history, span)
    else:
        raise ValueError(f"protocol={protocol!r}: expected 'honest' or 'teacher_forced'")
    out = predict_windows(model, field, spec, windows)
    pred = np.stack([out[int(t)] for t in origins]).astype(np.float64) * spec["std"] + spec["mean"]
    return FieldForecasts(origins, pred, targets(field, origins, spec["horizon"]))


def field_scores(fc: FieldForecasts, reference: FieldForecasts | None = None) -> dict:
    """MAE, RMSE (mean and per lead time) over all grid points; skill against ``reference``."""
    ref = reference.flat("pred") if reference is not None else None
    return score(fc.flat("target"), fc.flat("pred"), ref)
