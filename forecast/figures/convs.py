"""Receptive fields of the convolutions, measured by autograd on the real layers.

For each of the six convolutions (same and causal, 1-D, 2-D, 3-D), the raster-order
3-D conv and the blind-spot pair (naive masked stack vs gated stack), a small
stack with random weights is built, one output is picked, and the gradient of that
output with respect to the input of every stage says which cells it reads. Nothing
is drawn by hand: a cell is blue exactly when its gradient is non-zero. Each
figure is written as a PNG (one output) and a GIF (the output sweeping the grid),
plus ``measured.json`` with the extents and blind-spot counts the README quotes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from forecast.conv import (
    CausalConv1d,
    CausalConv2d,
    CausalConv3d,
    SameConv1d,
    SameConv2d,
    SameConv3d,
)
from forecast.figures.draw import Board, Cells, gif
from forecast.files import atomic_write_bytes, write_json
from forecast.raster import GatedStack2d, MaskedStack2d

log = logging.getLogger(__name__)

Pos = tuple[int, ...]


@dataclass
class Spec:
    """A figure: models (label, stages) on a grid, the output drawn, and the sweep."""

    name: str
    title: str
    models: list[tuple[str, list[nn.Module]]]
    shape: tuple[int, ...]
    order: str  # "time" or "raster": what the pink cells mean
    position: Pos
    sweep: list[Pos]
    layout: str  # "rows" (1-D stages), "stages" (2-D stages), "frames" (3-D), "models"
    box: tuple[Pos, Pos] | None = None  # reach (lo, hi offsets) where a blind spot is counted
    size: tuple[float, float] = (7.0, 2.6)
    ms: int = 250
    reads: dict = field(default_factory=dict)


def reach(stages: list[nn.Module], x: torch.Tensor, position: Pos) -> list[np.ndarray]:
    """|d out[position] / d input of each stage|, summed over channels: S-shaped maps."""
    acts = [x.clone().requires_grad_(True)]
    for stage in stages:
        acts.append(stage(acts[-1]))
    out = acts[-1][(0, slice(None), *position)]  # [C]
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype)  # no cancellation
    grads = torch.autograd.grad((out * weights).sum(), acts[:-1])
    return [g[0].abs().sum(dim=0).numpy() for g in grads]


def later(shape: tuple[int, ...], position: Pos, order: str) -> np.ndarray:
    """Bool grid: cells after ``position`` in time (first axis) or in raster order."""
    if order == "time":
        return np.broadcast_to(
            (np.arange(shape[0]) > position[0]).reshape(-1, *(1,) * (len(shape) - 1)), shape)
    flat = np.arange(int(np.prod(shape))).reshape(shape)  # C order is raster order
    return flat > np.ravel_multi_index(position, shape)


def in_box(shape: tuple[int, ...], position: Pos, lo: Pos, hi: Pos) -> np.ndarray:
    grids = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    return np.all([(g - p >= a) & (g - p <= b) for g, p, a, b in
                   zip(grids, position, lo, hi, strict=True)], axis=0)


def extents(read: np.ndarray, position: Pos) -> list[list[int]]:
    """[lo, hi] offsets of the read cells along each axis ([] when nothing is read)."""
    idx = np.argwhere(read > 0) - np.array(position)
    if not len(idx):
        return []
    return [[int(idx[:, a].min()), int(idx[:, a].max())] for a in range(idx.shape[1])]


AXES = {1: ("t",), 2: ("i", "j"), 3: ("t", "i", "j")}


def describe(reads: list[list[int]]) -> str:
    """[[-14, 0]] -> 't-14..t'; [] -> 'nothing'."""
    if not reads:
        return "nothing"
    names = AXES[len(reads)]
    return ", ".join(f"{n}{lo:+d}..{n}{hi:+d}".replace("+0", "").replace("-0", "")
                     for n, (lo, hi) in zip(names, reads, strict=True))


def panels(spec: Spec, position: Pos) -> tuple[list[Cells], dict]:
    torch.manual_seed(0)
    x = torch.randn(1, 2, *spec.shape, dtype=torch.float64)
    tint = later(spec.shape, position, spec.order)
    one = np.zeros(spec.shape, dtype=bool)
    one[position] = True
    cells: list[Cells] = []
    facts: dict = {}
    for label, stages in spec.models:
        maps = reach(stages, x, position)
        facts[label] = {"reads": extents(maps[0], position)}
        blind = None
        if spec.box is not None:
            blind = ~tint & ~one & in_box(spec.shape, position, *spec.box) & (maps[0] == 0)
            facts[label]["blind"] = int(blind.sum())
        if spec.layout == "rows":  # [stages + output, T], output on top
            names = ["output"] + [f"layer {i}" for i in range(len(maps) - 1, 0, -1)] + ["input"]
            grid = np.stack([np.zeros(spec.shape)] + maps[::-1])
            cells.append(Cells(f"output at t = {position[0]}", grid,
                               np.broadcast_to(tint, grid.shape),
                               np.pad(one[None], ((0, len(maps)), (0, 0))), rows=names))
        elif spec.layout == "stages":
            for i, m in enumerate(maps):
                cells.append(Cells("input" if i == 0 else f"layer {i}", m, tint,
                                   np.zeros_like(one), mark=position))
            cells.append(Cells(f"output {position}", np.zeros(spec.shape), tint, one))
        elif spec.layout == "frames":
            for t in range(spec.shape[0]):
                now = t == position[0]
                cells.append(Cells(f"frame {t}" + (" (output)" if now else ""), maps[0][t],
                                   tint[t], np.zeros_like(one[t]),
                                   mark=position[1:] if now else None))
        else:
            cells.append(Cells(f"{label}, output {position}: {facts[label]['blind']} blind",
                               maps[0], tint,
                               np.zeros_like(one), blind=blind, mark=position))
    return cells, facts


def stack(*layers: nn.Module) -> list[nn.Module]:
    """Stages: every layer but the last followed by tanh (so gradients never vanish)."""
    return [nn.Sequential(layer, nn.Tanh()) for layer in layers[:-1]] + [layers[-1]]


def d124(cls: type[nn.Module]) -> list[nn.Module]:
    """Three 1-D layers, k = 3, dilations 1, 2, 4 (R = 15)."""
    return stack(cls(2, 3, 3), cls(3, 3, 3, dilation=2), cls(3, 3, 3, dilation=4))


def specs() -> list[Spec]:
    torch.manual_seed(0)
    t24 = [(t,) for t in range(24)]
    px9 = [(i, j) for i in range(0, 9, 2) for j in range(9)]  # every other row: small GIFs
    diag = [(t, i, i) for t in range(8) for i in (1, 3, 4)]
    return [
        Spec("same1d", "SameConv1d x 3 (k = 3, dilations 1, 2, 4)",
             [("same", d124(SameConv1d))], (24,), "time", (16,), t24, "rows", size=(7, 2.3)),
        Spec("causal1d", "CausalConv1d x 3 (k = 3, dilations 1, 2, 4)",
             [("causal", d124(CausalConv1d))], (24,), "time", (16,), t24, "rows", size=(7, 2.3)),
        Spec("same2d", "SameConv2d x 2 (3 x 3)",
             [("same", stack(SameConv2d(2, 3, 3), SameConv2d(3, 3, 3)))], (9, 9), "raster",
             (5, 4), px9, "stages", ms=150),
        Spec("causal2d", "CausalConv2d x 2 (3 x 3, mask A then B)",
             [("causal", stack(CausalConv2d(2, 3, 3, mask="A"), CausalConv2d(3, 3, 3)))],
             (9, 9), "raster", (5, 4), px9, "stages", ms=150),
        Spec("same3d", "SameConv3d x 2 (3 x 3 x 3)",
             [("same", stack(SameConv3d(2, 3, 3), SameConv3d(3, 3, 3)))], (8, 6, 6), "time",
             (5, 3, 3), diag, "frames", size=(9, 2.2), ms=300),
        Spec("causal3d", "CausalConv3d x 2 (time-causal, k = 2 x 3 x 3, time dilations 1, 2)",
             [("causal", stack(CausalConv3d(2, 3, (2, 3, 3)),
                               CausalConv3d(3, 3, (2, 3, 3), dilation=(2, 1, 1))))],
             (8, 6, 6), "time", (5, 3, 3), diag, "frames", size=(9, 2.2), ms=300),
        Spec("causal3d_raster", "CausalConv3d x 2 (raster order, 2 x 3 x 3, mask A then B)",
             [("raster", stack(CausalConv3d(2, 3, (2, 3, 3), order="raster", mask="A"),
                               CausalConv3d(3, 3, (2, 3, 3), order="raster")))],
             (5, 6, 6), "raster", (3, 3, 3), [(3, i, j) for i in range(6) for j in range(6)],
             "frames", size=(7, 2.2), ms=150),
        Spec("blindspot", "Four raster-causal 3 x 3 layers: naive masked stack vs gated stack",
             [("naive", [MaskedStack2d(2, 3, 4)]), ("gated", [GatedStack2d(2, 3, 4)])],
             (11, 13), "raster", (7, 6), [(i, j) for i in (4, 7, 10) for j in range(13)],
             "models", box=((-4, -4), (0, 4)), size=(7, 3.6), ms=150),
    ]


def write_all(out: str | Path, names: list[str] | None = None) -> dict:
    """Write ``NAME.png`` and ``NAME.gif`` per figure and ``measured.json`` into ``out``."""
    out = Path(out)
    measured = {}
    for spec in specs():
        if names is not None and spec.name not in names:
            continue
        for _, stages in spec.models:
            for stage in stages:
                stage.double().eval()
        first, facts = panels(spec, spec.position)
        measured[spec.name] = {"position": list(spec.position), **facts}
        title = spec.title + "\nmeasured: the output reads " + "; ".join(
            (f"{label} " if len(facts) > 1 else "") + describe(f["reads"])
            for label, f in facts.items())
        atomic_write_bytes(out / f"{spec.name}.png",
                           Board(first, title, *spec.size, dpi=110).png())
        board = Board(first, spec.title, *spec.size, dpi=72)  # the sweep: no one-position line
        frames = []
        for pos in spec.sweep:
            board.show(panels(spec, pos)[0])
            frames.append(board.frame())
        atomic_write_bytes(out / f"{spec.name}.gif", gif(frames, spec.ms))
        log.info("%s: %s", spec.name, facts)
    write_json(out / "measured.json", measured)
    log.info("wrote %d figures into %s", len(measured), out)
    return measured
