"""Quantile forecasts: the non-crossing head, the pinball loss, CRPS, interval scores and
split-conformal calibration.

A quantile net emits, per horizon step, a median and positive increments on each side
(softplus), summed outward from the median, so its quantiles cannot cross whatever the
weights. Torch pieces (:func:`monotone`, :func:`pinball_loss`) train it; numpy pieces
(:func:`pinball`, :func:`crps`, :func:`coverage`, :func:`winkler`, :func:`conformal_offsets`)
score it, like :mod:`forecast.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from forecast.levels import check_levels  # noqa: F401  (re-exported: the model's rule)


def central_pairs(levels: Sequence[float]) -> list[tuple[int, int, float]]:
    """(lower index, upper index, nominal coverage) of each central interval, widest
    first: levels tau and 1 - tau around the median, e.g. (0, 4, 0.9) for 0.05 / 0.95."""
    levels = [float(q) for q in levels]
    out = []
    for i, q in enumerate(levels):
        if q >= 0.5:
            break
        j = next((j for j, p in enumerate(levels) if abs(p - (1 - q)) < 1e-9), None)
        if j is not None:
            out.append((i, j, round(1 - 2 * q, 10)))
    return out


def level_name(coverage: float) -> str:
    """'80' for 0.8, '97.5' for 0.975: the key suffix of a central interval."""
    return f"{100 * coverage:g}"


def level_key(level: float) -> str:
    """'q0.05' for 0.05: a quantile's column in forecast files and its key in metrics."""
    return f"q{float(level):g}"


def monotone(raw: torch.Tensor, median: int, dim: int) -> torch.Tensor:
    """Non-crossing quantiles from raw head outputs along ``dim`` (Q entries).

    Entry ``median`` is the median; the others are increments, made positive by softplus
    and summed outward: q_i = q_m - sum_{i <= j < m} softplus(raw_j) below, and
    q_i = q_m + sum_{m < j <= i} softplus(raw_j) above. Same shape as ``raw``.
    """
    n = raw.shape[dim]
    med = raw.narrow(dim, median, 1)
    below = F.softplus(raw.narrow(dim, 0, median)).flip(dim).cumsum(dim).flip(dim)
    above = F.softplus(raw.narrow(dim, median + 1, n - median - 1)).cumsum(dim)
    return torch.cat([med - below, med, med + above], dim=dim)


def inverse_softplus(gap: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """The raw value whose softplus is ``gap`` (gaps below ``floor`` raised to it)."""
    g = np.maximum(np.asarray(gap, dtype=np.float64), floor)
    return g + np.log(-np.expm1(-g))


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss: pred [..., Q], target [...], levels [Q] -> scalar."""
    diff = target[..., None] - pred  # [..., Q]
    return torch.maximum(levels * diff, (levels - 1) * diff).mean()


def pinball(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Mean pinball loss per level over finite targets: y [...], q [..., Q] -> [Q]."""
    tau = np.asarray(levels, dtype=np.float64)
    keep = np.isfinite(y)
    diff = y[keep][:, None] - q[keep]  # [N, Q]
    return np.maximum(tau * diff, (tau - 1) * diff).mean(axis=0)


def level_weights(levels: Sequence[float]) -> np.ndarray:
    """Width of each level's cell of (0, 1), cut at the midpoints between levels: [Q]."""
    tau = np.asarray(levels, dtype=np.float64)
    edges = np.concatenate([[0.0], (tau[1:] + tau[:-1]) / 2, [1.0]])
    return np.diff(edges)


def crps(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> float:
    """CRPS from quantiles, mean over finite targets: y [...], q [..., Q].

    CRPS = 2 * integral over tau of the pinball loss; the integral is taken as a sum
    over the levels, each weighted by its cell of (0, 1) (:func:`level_weights`), which
    converges to the exact CRPS as the levels fill (0, 1).
    """
    return float(2 * (pinball(y, q, levels) * level_weights(levels)).sum())


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, axis: int | None = None
             ) -> np.ndarray:
    """Share of finite targets inside [lower, upper] (over ``axis``, or all)."""
    keep = np.isfinite(y)
    inside = ((y >= lower) & (y <= upper) & keep).sum(axis=axis)
    return inside / np.maximum(keep.sum(axis=axis), 1)


def winkler(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, nominal: float) -> float:
    """Mean Winkler (interval) score of central ``nominal`` intervals over finite targets:
    width plus 2 / alpha times the distance by which the target falls outside."""
    keep = np.isfinite(y)
    y, lo, hi = y[keep], lower[keep], upper[keep]
    alpha = 1 - nominal
    score = (hi - lo) + 2 / alpha * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))
    return float(score.mean())


def conformal_offsets(y: np.ndarray, q: np.ndarray, levels: Sequence[float],
                      scaled: bool = False, cover: np.ndarray | None = None) -> np.ndarray:
    """Split-conformal offsets of the central intervals, per horizon step.

    y [N, H] calibration targets (NaN: missing), q [N, H, Q] their quantile forecasts ->
    [P, H] for the P :func:`central_pairs`: the ceil((n + 1)(1 - alpha)) / n empirical
    quantile of the conformity score max(lower - y, y - upper) (conformalised quantile
    regression); adding it to both ends gives coverage >= nominal on exchangeable data.
    ``scaled``: the score divided by the interval's width, so the offset is a share of
    each interval's own width (wide intervals move more than narrow ones). ``cover``
    [P, H]: the coverage asked of each pair and step instead of its nominal level (adaptive
    conformal inference); a level of n / (n + 1) or more takes the largest of the n
    scores, 0 or less the smallest.
    """
    pairs = central_pairs(levels)
    out = np.zeros((len(pairs), y.shape[1]))
    for p, (i, j, nominal) in enumerate(pairs):
        for h in range(y.shape[1]):
            keep = np.isfinite(y[:, h])
            score = np.maximum(q[keep, h, i] - y[keep, h], y[keep, h] - q[keep, h, j])
            if scaled:
                score = score / (q[keep, h, j] - q[keep, h, i])
            n = len(score)
            if n == 0:
                raise ValueError(f"conformal calibration: no observed target at step {h + 1}")
            level = nominal if cover is None else float(cover[p, h])
            rank = min(max(int(np.ceil((n + 1) * level)), 1), n)
            out[p, h] = np.sort(score)[rank - 1]
    return out


def apply_offsets(q: np.ndarray, levels: Sequence[float], offsets: np.ndarray,
                  scaled: bool = False) -> np.ndarray:
    """Quantiles [N, H, Q] with each central pair widened by its offset [P, H] (narrowed
    when negative; ``scaled``: by that share of its width), then sorted along Q so that
    they still do not cross."""
    out = q.copy()
    for (i, j, _), off in zip(central_pairs(levels), offsets, strict=True):
        shift = off * (q[..., j] - q[..., i]) if scaled else off
        out[..., i] -= shift
        out[..., j] += shift
    return np.sort(out, axis=-1)
