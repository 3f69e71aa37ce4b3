"""Features from a validated frame: scalers fitted on train only, calendar encodings.

The :class:`DataSpec` is the data contract that travels inside a checkpoint, as
plain values: columns, frequency, repairs and scaler statistics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecast.frame import MISSING_SUFFIX, DataError, Frame, FrameSpec

_DAY, _YEAR = 86_400.0, 365.2425 * 86_400.0
PERIODS = {"day": _DAY, "week": 7 * _DAY, "year": _YEAR}
# The day's cycle modulated by the year's: the sin and cos of the sum and of the difference
# of their phases span the four products of their sin and cos, a daily cycle whose size and
# timing move with the season. Used only when named (``calendar``), never by calendar_for.
SEASONAL_DAY = {"day_plus_year": 1 / (1 / _DAY + 1 / _YEAR),
                "day_minus_year": 1 / (1 / _DAY - 1 / _YEAR)}
CYCLES = {**PERIODS, **SEASONAL_DAY}


def calendar_for(step: pd.Timedelta, train_span: pd.Timedelta | None = None) -> list[str]:
    """Calendar cycles a grid of this step resolves and the training span repeats.

    A cycle that training sees less than twice (time of year in one year of data)
    is left out: its phase would name each training day uniquely, and the net would
    memorise the weather of those days instead of learning to forecast.
    """
    seconds = step.total_seconds()
    span = train_span.total_seconds() if train_span is not None else np.inf
    return [name for name, period in PERIODS.items()
            if seconds * 4 <= period and span >= 2 * period]


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
    angular: list[str] = field(default_factory=list)

    @property
    def value_columns(self) -> list[str]:
        return [self.target, *self.covariates]

    @property
    def feature_names(self) -> list[str]:
        values = [n for c in self.value_columns
                  for n in ((f"{c}_sin", f"{c}_cos") if c in self.angular else (c,))]
        cal = [f"{name}_{fn}" for name in self.calendar for fn in ("sin", "cos")]
        return [*values, *(c + MISSING_SUFFIX for c in self.value_columns), *cal]

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


def fit_spec(
    frame: Frame, train_end: pd.Timestamp, calendar: list[str] | None = None,
    angular: list[str] | None = None,
) -> DataSpec:
    """DataSpec with scaler statistics from observed values up to ``train_end`` only.

    ``calendar`` None picks the cycles with :func:`calendar_for`. ``angular`` names
    covariates in degrees (wind direction) that enter as sin and cos, so that 359
    and 1 degrees are neighbours.
    """
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
    if calendar is None:
        cal = calendar_for(frame.freq, train_end - train["timestamp"].min())
    else:
        unknown = sorted(set(calendar) - set(CYCLES))
        if unknown:
            raise DataError(f"calendar cycles {unknown} unknown; choose from {list(CYCLES)}")
        cal = list(calendar)
    angular = list(angular or [])
    stray = [c for c in angular if c not in s.covariates]
    if stray:
        raise DataError(f"angular columns {stray} must be covariates (covariates: "
                        f"{list(s.covariates)})")
    return DataSpec(
        time_column=s.time_column, target=s.target, covariates=list(s.covariates),
        series_id=s.series_id, freq=f"{int(frame.freq.total_seconds())}s", max_gap=s.max_gap,
        bounds={k: [float(a), float(b)] for k, (a, b) in s.bounds.items()},
        time_format=s.time_format, calendar=cal, mean=mean, std=std,
        angular=angular,
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


def calendar_features(times: pd.DatetimeIndex | np.ndarray, names: list[str]) -> np.ndarray:
    """(T,) timestamps (or int64 ns) -> (T, 2 * len(names)) sin/cos of each cycle's phase."""
    secs = np.asarray(getattr(times, "asi8", times)) / 1e9
    cols = []
    for name in names:
        phase = 2 * np.pi * (secs % CYCLES[name]) / CYCLES[name]
        cols += [np.sin(phase), np.cos(phase)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(times), 0))


def series_arrays(frame: Frame, spec: DataSpec) -> list[SeriesArrays]:
    """Scaled feature arrays per series: values, missing indicators, calendar."""
    out = []
    mean, std = np.asarray(spec.mean), np.asarray(spec.std)
    for name, part in frame.series_parts():
        raw = np.stack([part[c] for c in spec.value_columns], axis=1).astype(float)
        cols = []
        for j, col in enumerate(spec.value_columns):
            if col in spec.angular:
                rad = np.deg2rad(raw[:, j])
                cols += [np.sin(rad), np.cos(rad)]
            else:
                cols.append((raw[:, j] - mean[j]) / std[j])
        values = np.stack(cols, axis=1)
        missing = np.stack([part[c + MISSING_SUFFIX] for c in spec.value_columns], axis=1)
        target = np.where(missing[:, 0] > 0, np.nan, values[:, 0])  # the target is column 0
        x = np.concatenate(
            # a value still NaN starts its segment with a gap: impute the train mean (0)
            [np.nan_to_num(values, nan=0.0), missing,
             calendar_features(part["timestamp"], spec.calendar)],
            axis=1,
        )
        out.append(SeriesArrays(
            name=str(name), times=part["timestamp"].astype(np.int64), x=x.astype(np.float32),
            y=target.astype(np.float32), segment=part["segment"].astype(np.int64),
        ))
    return out
