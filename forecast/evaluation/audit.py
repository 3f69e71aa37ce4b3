"""Leakage audit: which input steps move the output at step t, measured by autograd.

Works on any ``nn.Module`` that maps (batch, T, n_features) to (batch, T, H). The
influence of input step j on output step t is ``sum_h sum_f |d out[t, h] / d x[j, f]|``
averaged over a few random inputs. A step with no path to the output gets an exact
zero gradient, so the measured extents are exact, not thresholded guesses; they
say what the weights do, not what the config claims.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class Audit:
    """Measured receptive field of one output position of a window."""

    position: int  # the output step t audited
    length: int  # window length T
    influence: np.ndarray  # (T,) influence of each input step on output t, max 1
    past: int  # farthest step before t that moves the output (0 if none)
    future: int  # farthest step after t that moves the output (0 if none)

    @property
    def bounded(self) -> bool:
        """False when an extent reaches the window edge (the true extent may be larger)."""
        return self.past < self.position and self.future < self.length - 1 - self.position

    @property
    def leaks(self) -> bool:
        return self.future > 0


def influence(
    model: nn.Module, x: torch.Tensor, positions: list[int] | np.ndarray, chunk: int = 64,
    project: bool = False,
) -> np.ndarray:
    """Influence of every input step on each output position: (B, T, F) -> (P, T).

    Entry [p, j] is ``sum_h |d out[:, positions[p], h] / d x[:, j, :]|`` summed over
    features and averaged over the batch. Each position gets its own copy of the
    batch, so one backward pass per horizon step serves ``chunk`` positions at once.
    ``project=True`` takes one backward pass of a fixed random combination of the H
    outputs instead: H times cheaper, the same zero pattern (a cancellation to exactly
    zero has probability zero), for pictures of many positions.
    """
    positions = [int(p) for p in positions]
    b, t, _ = x.shape
    if not positions or min(positions) < 0 or max(positions) >= t:
        raise ValueError(f"positions {positions[:3]}...: each must be in 0 .. {t - 1}")
    was_training = model.training
    model.eval()
    out = np.zeros((len(positions), t))
    try:
        with torch.enable_grad():
            for c in range(0, len(positions), chunk):
                pos = torch.tensor(positions[c : c + chunk])
                n = len(pos)
                xs = x.detach().repeat(n, 1, 1).requires_grad_(True)  # [n * B, T, F]
                y = model(xs)  # [n * B, T, H]
                if y.dim() != 3 or y.shape[:2] != (n * b, t):
                    raise ValueError(
                        f"model output shape {tuple(y.shape)}: expected (batch, {t}, horizon)"
                    )
                rows = torch.arange(n * b)
                picked = y[rows, pos.repeat_interleave(b)]  # [n * B, H]
                acc = torch.zeros(n * b, t, dtype=torch.float64)
                if project:
                    gen = torch.Generator().manual_seed(0)
                    w = torch.randn(picked.shape[1], generator=gen, dtype=picked.dtype)
                    terms = [picked @ w]
                else:
                    terms = list(picked.unbind(dim=1))
                for i, term in enumerate(terms):
                    (g,) = torch.autograd.grad(term.sum(), xs, retain_graph=i < len(terms) - 1)
                    acc += g.abs().sum(dim=2).double()  # [n * B, T, F] -> [n * B, T]
                out[c : c + n] = acc.view(n, b, t).mean(dim=1).numpy()
    finally:
        model.train(was_training)
    return out


def audit(
    model: nn.Module, n_features: int, length: int, position: int | None = None,
    batch: int = 4, seed: int = 0,
) -> Audit:
    """Measure the past and future extent of ``model``'s receptive field at one position.

    ``length`` should exceed twice the expected extent so that neither side is cut by
    the window edge (check :attr:`Audit.bounded`); the position defaults to the middle.
    Inputs are standard normal draws, the scale of the scaled features a net sees.
    """
    position = length // 2 if position is None else position
    gen = torch.Generator().manual_seed(seed)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    x = torch.randn(batch, length, n_features, generator=gen, dtype=dtype)
    row = influence(model, x, [position])[0]
    moved = np.flatnonzero(row > 0)
    if moved.size == 0:
        raise ValueError(f"no input moves the output at step {position}: are all weights zero?")
    result = Audit(position=position, length=length, influence=row / row.max(),
                   past=max(int(position - moved.min()), 0),
                    future=max(int(moved.max() - position), 0))
    log.info("audit: output step %d of %d moved by %d past and %d future steps",
             position, length, result.past, result.future)
    return result


def expected_extents(receptive_field: int, causal: bool) -> tuple[int, int]:
    """Configured (past, future) extents: (R - 1, 0) causal, ((R - 1) / 2, (R - 1) / 2) not."""
    if causal:
        return receptive_field - 1, 0
    return (receptive_field - 1) // 2, (receptive_field - 1) // 2
