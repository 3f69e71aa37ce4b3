"""Which inputs move which outputs on a grid, measured by autograd.

The full Jacobian of a shape-preserving layer or stack, (B=1, C_in, *S) ->
(1, C_out, *S), summed in absolute value over channels, gives an (N, N) matrix,
N = prod(S), positions flattened in raster order (C order). A position with no
path to an output gets an exact zero, so the pattern is exact: it says what the
weights do, not what the layer claims.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.autograd.functional import jacobian


def influence(model: nn.Module | Callable, x: torch.Tensor) -> torch.Tensor:
    """|d out / d x| summed over channels: x (1, C, *S) -> (N_out, N_in)."""
    if isinstance(model, nn.Module):  # a copy in x's dtype and eval mode; the caller's stays
        model = copy.deepcopy(model).to(x.dtype).eval()
    j = jacobian(model, x, vectorize=True)  # [1, C', *S', 1, C, *S]
    n_out = model(x)[0, 0].numel()
    return j.abs().reshape(j.shape[1], n_out, x.shape[1], -1).sum(dim=(0, 2))


def coords(shape: tuple[int, ...]) -> torch.Tensor:
    """Grid positions in raster order: (N, ndim)."""
    return torch.stack(torch.meshgrid(*(torch.arange(s) for s in shape), indexing="ij"),
                       dim=-1).reshape(-1, len(shape))


def offsets(shape: tuple[int, ...]) -> torch.Tensor:
    """Entry [p, q] = position q - position p: (N, N, ndim)."""
    c = coords(shape)
    return c[None, :, :] - c[:, None, :]


def allowed(shape: tuple[int, ...], order: str, present: bool = True) -> torch.Tensor:
    """(N, N) bool: input q may move output p under ``order``.

    "time": q is in an earlier frame (first axis), or the same frame when ``present``;
    "raster": q comes earlier in raster order (first axis, then the next, ...), or is
    p itself when ``present``; "none": every q.
    """
    d = offsets(shape)
    if order == "none":
        return torch.ones(d.shape[:2], dtype=torch.bool)
    if order == "time":
        key = d[..., 0]
    elif order == "raster":
        key = torch.zeros(d.shape[:2], dtype=torch.long)
        for a, size in enumerate(shape):
            key = key * (2 * size) + d[..., a]  # lexicographic: the sign of the mixed radix
    else:
        raise ValueError(f"order={order!r}: expected 'time', 'raster' or 'none'")
    return key <= 0 if present else key < 0


def within(shape: tuple[int, ...], lo: tuple[int, ...], hi: tuple[int, ...]) -> torch.Tensor:
    """(N, N) bool: lo[a] <= (q - p)[a] <= hi[a] on every axis."""
    d = offsets(shape)
    return ((d >= torch.tensor(lo)) & (d <= torch.tensor(hi))).all(dim=-1)


def footprint_support(layer: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """(N, N) bool: q - p is an offset the layer's footprint reads (dilation applied)."""
    taps = layer.footprint().nonzero() - torch.tensor(layer.half)  # [K, ndim]
    taps = taps * torch.tensor(layer.dilation)
    d = offsets(shape)
    return (d[:, :, None, :] == taps[None, None]).all(dim=-1).any(dim=-1)
