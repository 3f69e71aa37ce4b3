"""Tiny synthetic NetCDF fields for the field tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


def make_field(n: int = 24 * 6, ny: int = 6, nx: int = 7, seed: int = 0,
               start: str = "2020-03-01") -> xr.Dataset:
    """Hourly temperature-like maps (K): a daily cycle stronger inland, a moving wave, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    gy, gx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    daily = np.sin(2 * np.pi * (t % 24) / 24)[:, None, None] * (2 + 4 * gx)[None]
    wave = np.sin(2 * np.pi * (gx[None] - t[:, None, None] / 30)) * 1.5
    values = 280 + daily + wave + rng.normal(0, 0.2, (n, ny, nx))
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), values.astype(np.float32),
                 {"units": "K", "standard_name": "air_temperature"})},
        coords={
            "time": ("time", pd.date_range(start, periods=n, freq="h").values,
                     {"standard_name": "time"}),
            "lat": ("lat", np.linspace(50, 51.25, ny), {"units": "degrees_north"}),
            "lon": ("lon", np.linspace(-1, 0.5, nx), {"units": "degrees_east"}),
        },
    )


def write_field(path: Path, ds: xr.Dataset | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (ds if ds is not None else make_field()).to_netcdf(path)
    return path


FIELD_SPLITS = ["data.splits={train:[2020-03-01,2020-03-03],val:[2020-03-04,2020-03-04],"
                "test:[2020-03-05,2020-03-06]}"]
TINY_FIELD = ["trainer=tiny", "model.channels=4", "model.dilations=[1,2]", "data.span=12",
              "data.crop=4", "data.batch_size=2", "patience=2"]


def field_overrides(path: Path, variable: str = "tas") -> list[str]:
    return ["data=field", f"data.path={path}", f"data.variable={variable}", *FIELD_SPLITS,
            *TINY_FIELD]
