"""Features from a validated frame: scalers fitted on train only, calendar encodings.

The :class:`DataSpec` is the data contract that travels inside a checkpoint, as
plain values: columns, frequency, repairs and scaler statistics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecast.frame import MISSING_SUFFIX, DataError, Frame, FrameSpec

PERIODS = {"day": 86_400.0, "week": 7 * 86_400.0, "year": 365.2425 * 86_400.0}


def calendar_for(step: pd.Timedelta) -> list[str]:
    """Calendar cycles that a grid of this step can resolve (known in advance)."""
    seconds = step.total_seconds()
    return [name for name, period in PERIODS.items() if seconds * 4 <= period]


@dataclass
class DataSpec:
    """Columns, grid, repairs and train-only scaler statistics, as plain values."""

    time_column: str
    target: str
    covariates: list[str]
    series_id: str | None
    freq: str
    max_gap: int
    bounds: dict[str, list[float]] = field(default_factory=dict)
    time_format: str | None = None
    calendar: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def value_columns(self) -> list[str]:
        return [self.target, *self.covariates]

    @property
    def feature_names(self) -> list[str]:
        cal = [f"{name}_{fn}" for name in self.calendar for fn in ("sin", "cos")]
        return [*self.value_columns, *(c + MISSING_SUFFIX for c in self.value_columns), *cal]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(self.freq)

    def frame_spec(self) -> FrameSpec:
        return FrameSpec(
            time_column=self.time_column, target=self.target, covariates=tuple(self.covariates),
            series_id=self.series_id, freq=self.freq, time_format=self.time_format,
            max_gap=self.max_gap,
            bounds={k: (float(a), float(b)) for k, (a, b) in self.bounds.items()},
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        return cls(**d)

    def to_units(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled target values back to the target's own units."""
        return scaled * self.std[0] + self.mean[0]


def fit_spec(frame: Frame, train_end: pd.Timestamp) -> DataSpec:
    """DataSpec with scaler statistics from observed values up to ``train_end`` only."""
    s = frame.spec
    train = frame.data[frame.data["timestamp"] <= train_end]
    if train.empty:
        raise DataError(f"{frame.path}: no rows on or before the training end {train_end}")
    mean, std = [], []
    for col in s.value_columns:
        v = train[col].to_numpy()[train[col + MISSING_SUFFIX].to_numpy() == 0]
        m, sd = (float(v.mean()), float(v.std())) if v.size else (0.0, 1.0)
        mean.append(m)
        std.append(sd if sd > 1e-8 else 1.0)
    return DataSpec(
        time_column=s.time_column, target=s.target, covariates=list(s.covariates),
        series_id=s.series_id, freq=f"{int(frame.freq.total_seconds())}s", max_gap=s.max_gap,
        bounds={k: [float(a), float(b)] for k, (a, b) in s.bounds.items()},
        time_format=s.time_format, calendar=calendar_for(frame.freq), mean=mean, std=std,
    )


@dataclass
class SeriesArrays:
    """One series as arrays on its grid (rows of long gaps already removed)."""

    name: str
    times: np.ndarray  # (T,) int64 ns UTC
    x: np.ndarray  # (T, n_features) float32, scaled, no NaN
    y: np.ndarray  # (T,) float32 scaled target, NaN where it was missing
    segment: np.ndarray  # (T,) int64

    def __len__(self) -> int:
        return len(self.times)


def calendar_features(times: pd.DatetimeIndex, names: list[str]) -> np.ndarray:
    """(T,) timestamps -> (T, 2 * len(names)) sin/cos of each cycle's phase."""
    secs = times.asi8 / 1e9
    cols = []
    for name in names:
        phase = 2 * np.pi * (secs % PERIODS[name]) / PERIODS[name]
        cols += [np.sin(phase), np.cos(phase)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(times), 0))


def series_arrays(frame: Frame, spec: DataSpec) -> list[SeriesArrays]:
    """Scaled feature arrays per series: values, missing indicators, calendar."""
    out = []
    mean, std = np.asarray(spec.mean), np.asarray(spec.std)
    for name, part in frame.data.groupby("series", sort=False):
        values = (part[spec.value_columns].to_numpy(float) - mean) / std
        missing = part[[c + MISSING_SUFFIX for c in spec.value_columns]].to_numpy(float)
        target = np.where(missing[:, 0] > 0, np.nan, values[:, 0])
        times = pd.DatetimeIndex(part["timestamp"])
        x = np.concatenate(
            # a value still NaN starts its segment with a gap: impute the train mean (0)
            [np.nan_to_num(values, nan=0.0), missing, calendar_features(times, spec.calendar)],
            axis=1,
        )
        out.append(SeriesArrays(
            name=str(name), times=times.asi8.copy(), x=x.astype(np.float32),
            y=target.astype(np.float32), segment=part["segment"].to_numpy(np.int64),
        ))
    return out
