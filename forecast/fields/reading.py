"""Gridded fields read with xarray: one variable on a regular (time, y, x) grid.

The axes are found from CF attributes (``axis`` T/Y/X, ``standard_name``, units such
as ``degrees_north``) or named by the caller. Everything wrong with a file raises a
:class:`~forecast.frame.DataError` with one line naming the file, the variable and
the axis: no such variable, no time axis, an irregular time step, missing values (a
land mask), infinities. With ``chunk_steps`` the file is opened with dask chunks of
that many time steps, so validation and statistics run chunk by chunk and a file
larger than memory is never read whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from forecast.frame import DataError, step_text

log = logging.getLogger(__name__)

AXIS_NAMES = {
    "T": ("time",),
    "Y": ("latitude", "projection_y_coordinate", "grid_latitude"),
    "X": ("longitude", "projection_x_coordinate", "grid_longitude"),
}
AXIS_UNITS = {"Y": ("degrees_north", "degree_north"), "X": ("degrees_east", "degree_east")}
AXIS_ARGS = {"T": "data.time", "Y": "data.y", "X": "data.x"}


@dataclass
class Field:
    """A validated field; ``data`` is (time, y, x) float32, lazy (dask) when chunked."""

    path: str
    variable: str
    dims: tuple[str, str, str]  # names of the time, y and x axes in the file
    times: np.ndarray  # (T,) int64 ns, UTC
    y: np.ndarray  # (Y,) coordinate values
    x: np.ndarray  # (X,)
    step: pd.Timedelta
    units: str
    data: xr.DataArray

    def __len__(self) -> int:
        return len(self.times)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y), len(self.x)

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames start .. stop - 1 as float32 (n, Y, X); reads only the chunks needed."""
        return np.asarray(self.data[start:stop].values, dtype=np.float32)

    def stats(self, stop: int) -> tuple[float, float]:
        """Mean and standard deviation over frames 0 .. stop - 1 (the training frames)."""
        part = self.data[:stop].astype(np.float64)
        mean = float(part.mean().values)
        std = float(np.sqrt(((part - mean) ** 2).mean().values))
        return mean, std


def _find_axis(da: xr.DataArray, path: str, variable: str, axis: str, given: str | None) -> str:
    if given is not None:
        if given not in da.dims:
            raise DataError(f"{path}: variable '{variable}' has no axis '{given}' "
                            f"({AXIS_ARGS[axis]}={given}); its axes are {list(da.dims)}")
        return given
    for dim in da.dims:
        coord = da.coords.get(dim)
        attrs = coord.attrs if coord is not None else {}
        if attrs.get("axis", "").upper() == axis or attrs.get("standard_name") in AXIS_NAMES[axis]:
            return str(dim)
        if axis in AXIS_UNITS and attrs.get("units") in AXIS_UNITS[axis]:
            return str(dim)
        if axis == "T" and coord is not None and np.issubdtype(coord.dtype, np.datetime64):
            return str(dim)
    kind = {"T": "time", "Y": "y (latitude)", "X": "x (longitude)"}[axis]
    raise DataError(
        f"{path}: variable '{variable}' axes {list(da.dims)}: no {kind} axis (no coordinate "
        f"with CF axis='{axis}' or standard_name in {list(AXIS_NAMES[axis])}); "
        f"name it with {AXIS_ARGS[axis]}=NAME"
    )


def _times(da: xr.DataArray, path: str, variable: str, dim: str) -> np.ndarray:
    coord = da.coords.get(dim)
    if coord is None or not np.issubdtype(coord.dtype, np.datetime64):
        raise DataError(f"{path}: variable '{variable}', axis '{dim}': the time axis holds no "
                        "timestamps (a CF 'units: hours since ...' attribute is needed)")
    times = pd.DatetimeIndex(coord.values)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    return times.asi8.copy()


def _check_step(times: np.ndarray, path: str, variable: str, dim: str) -> pd.Timedelta:
    if len(times) < 3:
        raise DataError(f"{path}: variable '{variable}', axis '{dim}': {len(times)} time steps; "
                        "a field needs at least 3")
    diffs = np.diff(times)
    step = int(diffs[0])
    bad = np.flatnonzero(diffs != step)
    if step <= 0 or bad.size:
        i = int(bad[0]) + 1 if bad.size else 1
        at = pd.Timestamp(times[i], tz="UTC")
        raise DataError(
            f"{path}: variable '{variable}', axis '{dim}': irregular time step at index {i} "
            f"({at}): {pd.Timedelta(int(diffs[i - 1]))} after steps of "
            f"{pd.Timedelta(step)}; a field must be on a regular, increasing time grid"
        )
    return pd.Timedelta(step)


def _check_values(da: xr.DataArray, path: str, variable: str, dims: tuple[str, str, str]) -> None:
    """Per-frame counts of non-finite values, computed chunk by chunk."""
    counts = np.asarray((~np.isfinite(da)).sum(dim=list(dims[1:])).values)
    bad = np.flatnonzero(counts)
    if bad.size:
        i = int(bad[0])
        frame = np.asarray(da[i].values)
        kind = "NaN" if np.isnan(frame).any() else "infinite"
        raise DataError(
            f"{path}: variable '{variable}', axis '{dims[0]}' index {i}: {int(counts[i])} of "
            f"{frame.size} grid points are {kind} ({bad.size} frames affected; a land/sea "
            "mask?); crop or fill the field: missing values are not allowed"
        )


def open_field(
    path: str | Path, variable: str, time: str | None = None, y: str | None = None,
    x: str | None = None, chunk_steps: int | None = None,
) -> Field:
    """Open and validate ``variable`` of a NetCDF file (time chunks of ``chunk_steps``)."""
    path = str(path)
    if not Path(path).is_file():
        raise DataError(f"{path}: file not found")
    try:
        ds = xr.open_dataset(path, chunks=None if chunk_steps is None else {})
    except Exception as err:  # xarray raises many kinds on foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a readable NetCDF file ({first})") from None
    if variable not in ds.data_vars:
        raise DataError(f"{path}: no variable '{variable}' (data.variable=NAME); the file "
                        f"holds {sorted(map(str, ds.data_vars))}")
    da = ds[variable]
    if not np.issubdtype(da.dtype, np.number):
        raise DataError(f"{path}: variable '{variable}' is {da.dtype}, not numeric")
    dims = tuple(_find_axis(da, path, variable, a, g) for a, g in (("T", time), ("Y", y),
                                                                   ("X", x)))
    if len(set(dims)) < 3 or da.ndim != 3:
        raise DataError(f"{path}: variable '{variable}' axes {list(da.dims)}: a field needs "
                        f"exactly a time and two space axes (found time, y, x = {list(dims)})")
    da = da.transpose(*dims)
    if chunk_steps is not None:
        da = da.chunk({dims[0]: int(chunk_steps), dims[1]: -1, dims[2]: -1})
    times = _times(da, path, variable, dims[0])
    step = _check_step(times, path, variable, dims[0])
    _check_values(da, path, variable, dims)
    log.info("field %s:%s: %d steps of %s, grid %d x %d, chunks %s", path, variable, len(times),
             step_text(step), da.shape[1], da.shape[2], chunk_steps or "none")
    return Field(
        path=path, variable=variable, dims=dims, times=times,
        y=np.asarray(da.coords[dims[1]].values) if dims[1] in da.coords else np.arange(da.shape[1]),
        x=np.asarray(da.coords[dims[2]].values) if dims[2] in da.coords else np.arange(da.shape[2]),
        step=step, units=str(da.attrs.get("units", "")), data=da.astype(np.float32),
    )


def load_into_memory(field: Field, max_bytes: int) -> Field:
    """The same field with its data in memory when it fits in ``max_bytes``."""
    if field.data.size * 4 <= max_bytes:
        field.data = field.data.load()
    return field
