"""Grids of cells to PNG and animated GIF (matplotlib draws, Pillow animates)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

WHITE = np.array([1.0, 1.0, 1.0])
LATER = np.array([0.94, 0.85, 0.85])  # later in the layer's order: must stay unread
READ = np.array([0.10, 0.33, 0.70])
OUTPUT = np.array([0.85, 0.10, 0.10])
BLIND = np.array([1.00, 0.62, 0.05])
LEGEND = "blue: read by the red output (darker = stronger, log scale)  ·  pink: later in order"
BLIND_LEGEND = "  ·  orange: earlier, in reach, never read"
LEVELS = 6  # shades of blue: few colours keep the GIFs small


@dataclass
class Cells:
    """One panel: per-cell influence (0 = not read) and boolean overlays, all (rows, cols)."""

    title: str
    strength: np.ndarray
    later: np.ndarray
    output: np.ndarray
    blind: np.ndarray | None = None
    mark: tuple[int, int] | None = None  # cell outlined in red: where the output sits
    rows: list[str] | None = None  # row labels, top to bottom

    def rgb(self) -> np.ndarray:
        """(rows, cols) -> (rows, cols, 3) colours."""
        img = np.where(self.later[..., None], LATER, WHITE)
        g = self.strength
        if (g > 0).any():
            lg = np.log10(np.where(g > 0, g, 1.0))
            lo, hi = lg[g > 0].min(), lg[g > 0].max()
            s = (lg - lo) / (hi - lo) if hi > lo else np.ones_like(lg)
            s = 0.3 + 0.7 * np.round(s * (LEVELS - 1)) / (LEVELS - 1)
            img = np.where((g > 0)[..., None], (1 - s[..., None]) * WHITE + s[..., None] * READ,
                           img)
        if self.blind is not None:
            img = np.where(self.blind[..., None], BLIND, img)
        return np.where(self.output[..., None], OUTPUT, img)


class Board:
    """A row of panels drawn once; ``show`` swaps the cells for each animation frame."""

    def __init__(self, panels: Sequence[Cells], title: str, width: float, height: float,
                 dpi: int) -> None:
        self.fig = Figure(figsize=(width, height), dpi=dpi)
        FigureCanvasAgg(self.fig)
        self.fig.suptitle(title, fontsize=10)
        blind = any(cells.blind is not None for cells in panels)
        self.fig.text(0.5, 0.01, LEGEND + (BLIND_LEGEND if blind else ""), ha="center",
                      fontsize=6.5, color="0.3")
        axes = self.fig.subplots(1, len(panels), squeeze=False)[0]
        self.images, self.axes, self.marks = [], axes, []
        for ax, cells in zip(axes, panels, strict=True):
            rows, cols = cells.strength.shape
            self.images.append(ax.imshow(cells.rgb(), interpolation="nearest", aspect="equal"))
            ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
            ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
            ax.grid(which="minor", color="0.75", linewidth=0.4)
            ax.tick_params(which="both", length=0, labelsize=6)
            ax.set_xticks([])
            ax.set_yticks(range(rows) if cells.rows else [], labels=cells.rows or [], fontsize=7)
            ax.set_title(cells.title, fontsize=8)
            mark = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=OUTPUT, linewidth=1.5)
            ax.add_patch(mark)
            self.marks.append(mark)
            self._place(mark, cells.mark)
        left = 0.09 if panels[0].rows else 0.02
        self.fig.subplots_adjust(left=left, right=0.98, bottom=0.1, top=1 - 0.55 / height,
                                 wspace=0.08)

    @staticmethod
    def _place(mark: Rectangle, cell: tuple[int, int] | None) -> None:
        mark.set_visible(cell is not None)
        if cell is not None:
            mark.set_xy((cell[1] - 0.5, cell[0] - 0.5))

    def show(self, panels: Sequence[Cells]) -> None:
        for img, ax, mark, cells in zip(self.images, self.axes, self.marks, panels, strict=True):
            img.set_data(cells.rgb())
            ax.set_title(cells.title, fontsize=8)
            self._place(mark, cells.mark)

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        return buf.getvalue()

    def frame(self) -> Image.Image:
        canvas = self.fig.canvas
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        return Image.fromarray(rgba[..., :3]).quantize(colors=32, method=Image.Quantize.MEDIANCUT)


def gif(frames: Sequence[Image.Image], ms: int) -> bytes:
    """Frames -> looping GIF bytes, ``ms`` milliseconds per frame."""
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=list(frames[1:]),
                   duration=ms, loop=0, optimize=True)
    return buf.getvalue()
