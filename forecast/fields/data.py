"""LightningDataModule for fields: NetCDF -> train-only scaler -> dense (time, y, x) windows.

Inputs at step i are the scaled field, the hour of day (sin, cos) and the grid
position (y, x in -1 .. 1) as planes: (C, Y, X) with C = 5. Targets at step i are
the scaled maps at i + 1 .. i + H. Splits are chronological and a window belongs
to a split by the timestamps of its targets, as for series.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from forecast.data import SPLITS, resolve_splits, verify_checksum
from forecast.features import calendar_features
from forecast.fields.reading import Field, load_into_memory, open_field
from forecast.frame import DataError
from forecast.windows import Window, origins, slide, tile

log = logging.getLogger(__name__)


def field_inputs(scaled: np.ndarray, times: np.ndarray, calendar: Sequence[str]) -> np.ndarray:
    """Scaled frames (n, Y, X) and int64 ns times (n,) -> inputs (n, C, Y, X), float32."""
    n, ny, nx = scaled.shape
    cal = calendar_features(pd.DatetimeIndex(times, tz="UTC"), list(calendar))  # [n, 2k]
    gy, gx = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    planes = [scaled[:, None]]
    planes.append(np.broadcast_to(cal[:, :, None, None], (n, cal.shape[1], ny, nx)))
    planes.append(np.broadcast_to(np.stack([gy, gx])[None], (n, 2, ny, nx)))
    return np.concatenate(planes, axis=1).astype(np.float32)


def n_inputs(calendar: Sequence[str]) -> int:
    return 1 + 2 * len(calendar) + 2


class FieldWindows(Dataset):
    """Items ``(x, y, mask)``: x (L, C, Y', X'), y (L, H, Y', X'), mask (L,) scored steps.

    ``crop`` > 0 cuts a random crop x crop square (training: more steps per second);
    0 serves the whole map.
    """

    def __init__(self, field: Field, mean: float, std: float, calendar: Sequence[str],
                 windows: list[Window], horizon: int, crop: int = 0) -> None:
        self.field, self.mean, self.std, self.calendar = field, mean, std, list(calendar)
        self.windows, self.horizon, self.crop = windows, horizon, crop

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = self.windows[i]
        a, n = w.start, w.length
        frames = (self.field.frames(a, a + n + self.horizon) - self.mean) / self.std
        x = field_inputs(frames[:n], self.field.times[a : a + n], self.calendar)
        y = np.lib.stride_tricks.sliding_window_view(frames[1:], self.horizon, axis=0)
        y = np.moveaxis(y, -1, 1)  # [L, Y, X, H] -> [L, H, Y, X]
        if self.crop:
            ny, nx = frames.shape[1:]
            r = int(torch.randint(0, max(ny - self.crop, 0) + 1, ()))
            c = int(torch.randint(0, max(nx - self.crop, 0) + 1, ()))
            x = x[..., r : r + self.crop, c : c + self.crop]
            y = y[..., r : r + self.crop, c : c + self.crop]
        mask = np.arange(n) >= w.first
        return (torch.from_numpy(np.ascontiguousarray(x)),
                torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
                torch.from_numpy(mask))


class FieldDataModule(L.LightningDataModule):
    """Reads one field, fits the scaler on training frames, serves dense windows."""

    def __init__(
        self,
        path: str,
        variable: str,
        time: str | None = None,
        y: str | None = None,
        x: str | None = None,
        checksum: str | None = None,
        splits: dict[str, Sequence[str] | None] | None = None,
        fractions: Sequence[float] = (0.7, 0.15, 0.15),
        horizon: int = 6,
        span: int = 48,
        train_stride: int = 6,
        crop: int = 16,
        batch_size: int = 4,
        chunk_steps: int | None = None,
        max_memory_mb: float = 1024,
        calendar: Sequence[str] = ("day",),
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.path, self.variable, self.axes = path, variable, (time, y, x)
        self.checksum, self.splits_cfg, self.fractions = checksum, splits, tuple(fractions)
        self.horizon, self.span, self.train_stride, self.crop = horizon, span, train_stride, crop
        self.batch_size, self.chunk_steps = batch_size, chunk_steps
        self.max_memory_mb = max_memory_mb
        self.calendar, self.num_workers = list(calendar), num_workers
        self.field: Field | None = None
        self.spec: dict | None = None
        self.history: int | None = None
        self.origins: dict[str, np.ndarray] = {}
        self.datasets: dict[str, FieldWindows] = {}

    def load(self) -> dict:
        """Open and validate the field, resolve splits, fit the scaler on train (once)."""
        if self.spec is None:
            if self.checksum is not None:
                verify_checksum(self.path, self.checksum)
            field = open_field(self.path, self.variable, *self.axes, chunk_steps=self.chunk_steps)
            self.field = load_into_memory(field, int(self.max_memory_mb * 2**20))
            stamps = pd.DatetimeIndex(field.times, tz="UTC")
            # resolve_splits reads only the frame's timestamp column
            self.splits = resolve_splits(SimpleNamespace(data={"timestamp": stamps}),
                                         self.splits_cfg, self.fractions)
            n_train = int(np.searchsorted(field.times, self.splits["train"][1].value, "right"))
            mean, std = field.stats(n_train)
            self.spec = {
                "kind": "field", "variable": field.variable, "units": field.units,
                "dims": list(field.dims), "y": field.y.tolist(), "x": field.x.tolist(),
                "step_ns": int(field.step.value), "mean": mean, "std": std,
                "calendar": self.calendar, "horizon": self.horizon,
            }
            log.info("field scaler on %d training frames: mean %.3f, std %.3f %s",
                     n_train, mean, std, field.units)
        return self.spec

    @property
    def n_features(self) -> int:
        return n_inputs(self.calendar)

    def set_history(self, history: int) -> None:
        """Frames of context every scored position needs: the model's R - 1."""
        self.history = history

    def split_origins(self, split: str, history: int) -> np.ndarray:
        """Origins of ``split`` with ``history`` earlier frames and H targets in the split."""
        self.load()
        start, end = self.splits[split]
        times = self.field.times
        return origins(times, np.zeros(len(times), np.int64), start.value, end.value, history,
                       self.horizon)

    def dataset(self, windows: list[Window], crop: int = 0) -> FieldWindows:
        return FieldWindows(self.field, self.spec["mean"], self.spec["std"], self.calendar,
                            windows, self.horizon, crop)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.load()
        if self.history is None:
            raise RuntimeError("call set_history(receptive_field - 1) before setup()")
        length = self.history + self.span
        for split in SPLITS:
            o = self.origins[split] = self.split_origins(split, self.history)
            if split == "train":
                windows = slide(0, o, self.history, length, self.train_stride)
            else:
                windows = tile(0, o, self.history, length)
            if not windows:
                start, end = self.splits[split]
                raise DataError(
                    f"{self.path}: variable '{self.variable}': no {split} windows: split {start} "
                    f".. {end} needs {self.history} frames of history, {self.span} scored steps "
                    f"and {self.horizon} targets ({len(self.field)} frames); widen the split, "
                    "lower data.span or shrink the model"
                )
            self.datasets[split] = self.dataset(windows, self.crop if split == "train" else 0)
            log.info("%s: %d origins, %d windows", split, len(o), len(windows))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True,
                          num_workers=self.num_workers)

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=1, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
