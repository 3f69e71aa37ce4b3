"""Leakage audit of a field net in time and space, measured by autograd.

The influence of input frame j at grid point (r, c) on the output at step t and
grid point (r0, c0) is ``sum_h sum_ch |d out[t, h, r0, c0] / d x[j, ch, r, c]|``,
averaged over a few random inputs. A cell with no path to the output gets an exact
zero, so the extents are exact: how far into the past and the future, and how
many grid cells away, the forecast at one point really reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class FieldAudit:
    """Measured receptive field of the output at (t, r0, c0) of a (T, Y, X) window."""

    position: tuple[int, int, int]
    influence: np.ndarray  # (T, Y, X) influence on that output, max 1
    past: int  # farthest frame before t that moves the output
    future: int  # farthest frame after t that moves the output (0: causal)
    radius: int  # farthest grid cell (Chebyshev distance) that moves it

    @property
    def leaks(self) -> bool:
        return self.future > 0

    def to_dict(self) -> dict:
        return {"position": list(self.position), "past": self.past, "future": self.future,
                "radius": self.radius, "leaks": self.leaks}


def audit_field(model: nn.Module, x: torch.Tensor, t: int, r0: int | None = None,
                c0: int | None = None) -> FieldAudit:
    """Audit output step ``t`` at grid point (r0, c0) (default: the centre) for inputs
    x of shape (B, T, C, Y, X)."""
    _, n, _, ny, nx = x.shape
    r0 = ny // 2 if r0 is None else r0
    c0 = nx // 2 if c0 is None else c0
    was_training = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        out = model(x)  # [B, T, H, Y, X]
        out[:, t, :, r0, c0].abs().sum().backward()
        grad = x.grad.abs().sum(dim=(0, 2)).double().numpy()  # [T, Y, X]
    finally:
        model.train(was_training)
    infl = grad / grad.max() if grad.max() > 0 else grad
    steps = np.flatnonzero(infl.sum(axis=(1, 2)) > 0)
    rows, cols = np.nonzero(infl.sum(axis=0) > 0)
    radius = int(max(np.abs(rows - r0).max(), np.abs(cols - c0).max())) if rows.size else 0
    return FieldAudit((t, r0, c0), infl, past=int(max(t - steps.min(), 0)),
                      future=int(max(steps.max() - t, 0)), radius=radius)
