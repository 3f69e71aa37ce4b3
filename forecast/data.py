"""LightningDataModule: CSV -> frame -> train-only scalers -> dense windows -> loaders."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate, get_worker_info

from forecast.features import DataSpec, SeriesArrays, fit_spec, series_arrays
from forecast.frame import DataError, Frame, FrameSpec, read_frame
from forecast.loader import ResumableLoader
from forecast.windows import Window, origins, slide, tile

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class WindowDataset(Dataset):
    """Items ``(x, y, mask)``: x (L, n_features), y and mask (L, H).

    y[i, h - 1] is the scaled target at window step i + h; mask is True where that
    target was observed and step i is a scored position.
    """

    def __init__(self, arrays: list[SeriesArrays], windows: list[Window], horizon: int) -> None:
        self.arrays, self.windows, self.horizon = arrays, windows, horizon

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = self.windows[i]
        a = self.arrays[w.series]
        x = a.x[w.start : w.start + w.length]
        ahead = a.y[w.start + 1 : w.start + w.length + self.horizon]
        y = np.lib.stride_tricks.sliding_window_view(ahead, self.horizon)  # [L, H]
        mask = ~np.isnan(y)
        mask[: w.first] = False
        return torch.from_numpy(x), torch.from_numpy(np.nan_to_num(y)), torch.from_numpy(mask)

    def length_batches(self, batch_size: int) -> list[list[int]]:
        """Batches of equal-length windows (evaluation windows vary in length)."""
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, w in enumerate(self.windows):
            by_len[w.length].append(i)
        return [idx[j : j + batch_size] for idx in by_len.values()
                for j in range(0, len(idx), batch_size)]


class EvalBatches(IterableDataset):
    """The fixed batches of an evaluation split, as an iterable: Lightning shards no
    iterable dataset, so under DDP every process validates on the whole split, sees the
    same val/loss and takes the same early-stopping and checkpoint decisions."""

    def __init__(self, ds: WindowDataset, batches: list[list[int]]) -> None:
        self.ds, self.batches = ds, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        worker = get_worker_info()
        n, k = (worker.num_workers, worker.id) if worker else (1, 0)
        for idx in self.batches[k::n]:  # loader workers share the batches out
            yield default_collate([self.ds[i] for i in idx])


def verify_checksum(path: str | Path, sha256: str) -> None:
    """Refuse a file whose SHA-256 is not the expected one."""
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if digest != sha256:
        raise DataError(f"{path}: SHA-256 {digest} != expected {sha256}; the file is damaged "
                        "or was replaced (data/prepare.py rebuilds it)")


def _bound(value: str, end: bool) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end and len(str(value).strip()) <= 10:  # a date alone: the whole day is included
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return ts


def resolve_splits(
    frame: Frame, bounds: dict[str, Sequence[str] | None] | None, fractions: Sequence[float],
) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Inclusive (start, end) per split: given timestamps, else fractions of the time span.

    Timestamps are all or nothing: a ``splits`` that names some splits and not others
    is an error naming the missing ones, never a silent fall-back to fractions.
    """
    given = [s for s in SPLITS if bounds and bounds.get(s)]
    if given and len(given) < len(SPLITS):
        missing = [s for s in SPLITS if s not in given]
        raise DataError(
            f"data.splits gives {', '.join(given)} but not {', '.join(missing)}; give all "
            f"three as [start, end] (or set data.splits=null to split by data.fractions)"
        )
    if given:
        out = {s: (_bound(bounds[s][0], False), _bound(bounds[s][1], True)) for s in SPLITS}
    else:
        t0, t1 = frame.data["timestamp"].min(), frame.data["timestamp"].max()
        if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
            raise DataError(
                f"split fractions {list(fractions)} must be 3 positive numbers summing to 1"
            )
        span = t1 - t0
        c1 = t0 + span * fractions[0]
        c2 = c1 + span * fractions[1]
        one = pd.Timedelta(1, "ns")
        out = {"train": (t0, c1), "val": (c1 + one, c2), "test": (c2 + one, t1)}
    for a, b in zip(SPLITS, SPLITS[1:], strict=False):
        if out[b][0] <= out[a][1]:
            raise DataError(f"split '{b}' starts {out[b][0]}, before '{a}' ends {out[a][1]}")
    return out


class ForecastDataModule(L.LightningDataModule):
    """Reads one CSV, fits scalers on train, and serves dense windows for each split."""

    def __init__(
        self,
        path: str,
        time_column: str,
        target: str,
        covariates: Sequence[str] = (),
        series_id: str | None = None,
        freq: str | None = None,
        time_format: str | None = None,
        max_gap: int = 12,
        bounds: dict[str, Sequence[float]] | None = None,
        splits: dict[str, Sequence[str] | None] | None = None,
        fractions: Sequence[float] = (0.7, 0.15, 0.15),
        horizon: int = 24,
        span: int = 256,
        train_stride: int = 8,
        batch_size: int = 32,
        num_workers: int = 0,
        checksum: str | None = None,
        calendar: Sequence[str] | None = None,
        angular: Sequence[str] = (),
        refit: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.seed = int(seed)  # the training order is a function of (seed, epoch) alone
        self.path, self.checksum = path, checksum
        self.calendar = list(calendar) if calendar is not None else None
        self.angular = list(angular)
        self.refit = bool(refit)  # fit on train + validation: scalers, training windows
        self.frame_spec = FrameSpec(
            time_column=time_column, target=target, covariates=tuple(covariates),
            series_id=series_id, freq=freq, time_format=time_format, max_gap=max_gap,
            bounds={k: (float(v[0]), float(v[1])) for k, v in (bounds or {}).items()},
        )
        self.splits_cfg, self.fractions = splits, tuple(fractions)
        self.horizon, self.span, self.train_stride = horizon, span, train_stride
        self.batch_size, self.num_workers = batch_size, num_workers
        self.history: int | None = None
        self.frame: Frame | None = None
        self.spec: DataSpec | None = None
        self.arrays: list[SeriesArrays] = []
        self.splits: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
        self.origins: dict[str, list[np.ndarray]] = {}
        self.datasets: dict[str, WindowDataset] = {}

    def load(self) -> DataSpec:
        """Read and repair the file, resolve splits, fit scalers on train (once)."""
        if self.spec is None:
            if self.checksum is not None:
                verify_checksum(self.path, self.checksum)
            self.frame = read_frame(self.path, self.frame_spec)
            for reason in self.frame.dropped.values():  # trained without it, and said so
                log.warning("left out of training: %s", reason)
            self.splits = resolve_splits(self.frame, self.splits_cfg, self.fractions)
            self.spec = fit_spec(self.frame, self.fit_end, self.calendar, self.angular)
            self.arrays = series_arrays(self.frame, self.spec)
        return self.spec

    @property
    def fit_end(self) -> pd.Timestamp:
        """The last timestamp fitting reads: the end of train, or of validation with
        ``refit``."""
        return self.splits["val" if self.refit else "train"][1]

    def fit_origins(self, history: int) -> list[np.ndarray]:
        """Per series, the origins models and baselines are fitted on: those of the train
        split, or with ``refit`` of train and validation (targets up to :attr:`fit_end`)."""
        self.load()
        return self._origins(self.splits["train"][0], self.fit_end, history)

    @property
    def n_features(self) -> int:
        return self.load().n_features

    def split_origins(self, split: str, history: int) -> list[np.ndarray]:
        """Per series, the origins of ``split`` that have ``history`` steps of context."""
        self.load()
        return self._origins(*self.splits[split], history)

    def _origins(self, start: pd.Timestamp, end: pd.Timestamp, history: int) -> list[np.ndarray]:
        return [origins(a.times, a.segment, start.value, end.value, history, self.horizon)
                for a in self.arrays]

    def set_history(self, history: int) -> None:
        """Steps of context every scored position needs: the model's R - 1."""
        self.history = history

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.load()
        if self.history is None:
            raise RuntimeError("call set_history(receptive_field - 1) before setup()")
        length = self.history + self.span
        for split in SPLITS:
            start, end = self.splits[split]
            self.origins[split] = (self.fit_origins(self.history) if split == "train"
                                   else self.split_origins(split, self.history))
            n = sum(len(o) for o in self.origins[split])
            if n == 0:
                lengths = {a.name: len(a) for a in self.arrays}
                raise DataError(
                    f"{self.path}: no {split} windows: split {start} .. {end} needs origins with "
                    f"{self.history} steps of history and {self.horizon} targets inside one "
                    f"segment (series lengths {lengths}); widen the split or shrink the model"
                )
            if split == "train":
                windows = [w for s, o in enumerate(self.origins[split])
                           for w in slide(s, o, self.history, length, self.train_stride)]
                if not windows:
                    raise DataError(
                        f"{self.path}: no full training window of {length} steps "
                        f"(history {self.history} + span {self.span}); lower data.span"
                    )
            else:
                windows = [w for s, o in enumerate(self.origins[split])
                           for w in tile(s, o, self.history, length)]
            self.datasets[split] = WindowDataset(self.arrays, windows, self.horizon)
            log.info("%s: %d origins, %d windows", split, n, len(windows))

    def train_dataloader(self) -> DataLoader:
        return ResumableLoader(self.datasets["train"], self.batch_size, self.seed,
                               self.num_workers)

    def _eval_loader(self, split: str) -> DataLoader:
        ds = self.datasets[split]
        # its own generator: evaluating draws nothing from the global one (resumed runs match)
        return DataLoader(EvalBatches(ds, ds.length_batches(self.batch_size)), batch_size=None,
                          num_workers=self.num_workers, generator=torch.Generator())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
