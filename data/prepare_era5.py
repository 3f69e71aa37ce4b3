"""Decode the ERA5 GRIB file once into the embedded CF NetCDF field (run once).

GRIB decoding needs ecCodes, a preparation-time dependency only (``pip install
eccodes``, which brings the ``eccodeslib`` binary); the product reads the NetCDF
file with xarray. The temperature is stored as packed int16 (scale 0.001 K, so the
rounding error is at most 0.0005 K, below the GRIB file's own 16-bit packing step
of 0.002 K), zlib-compressed, and its SHA-256 is written beside it.

    python data/prepare_era5.py [GRIB]   # default: ../shared/data/era5-2mt-2019-03-uk.grib
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
DEFAULT_GRIB = HERE.parent.parent / "shared" / "data" / "era5-2mt-2019-03-uk.grib"
OUT = HERE / "era5_t2m_2019-03_uk.nc"
SCALE, OFFSET = 0.001, 278.0  # int16 covers 245.2 .. 310.8 K
GRID_KEYS = (
    "Ni", "Nj", "latitudeOfFirstGridPointInDegrees", "longitudeOfFirstGridPointInDegrees",
    "latitudeOfLastGridPointInDegrees", "longitudeOfLastGridPointInDegrees",
    "iDirectionIncrementInDegrees", "jDirectionIncrementInDegrees", "jScansPositively",
    "iScansNegatively",
)


def read_grib(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(times as datetime64[s], latitudes, longitudes, values (time, lat, lon)) of ``2t``."""
    import eccodes  # preparation-time only

    times, frames, grid = [], [], None
    with path.open("rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                if eccodes.codes_get(h, "shortName") != "2t":
                    raise SystemExit(f"{path}: message {len(frames) + 1} is not 2t")
                this = {k: eccodes.codes_get(h, k) for k in GRID_KEYS}
                if grid is None:
                    grid = this
                elif this != grid:
                    raise SystemExit(f"{path}: message {len(frames) + 1} has another grid")
                if eccodes.codes_get(h, "numberOfMissing"):
                    raise SystemExit(f"{path}: message {len(frames) + 1} has missing values")
                date = str(eccodes.codes_get(h, "validityDate"))
                hhmm = int(eccodes.codes_get(h, "validityTime"))
                times.append(datetime.strptime(f"{date}{hhmm:04d}", "%Y%m%d%H%M"))
                values = eccodes.codes_get_values(h)
                frames.append(values.reshape(grid["Nj"], grid["Ni"]))
            finally:
                eccodes.codes_release(h)
    if grid is None or grid["jScansPositively"] or grid["iScansNegatively"]:
        raise SystemExit(f"{path}: expected north-to-south, west-to-east rows")
    lat = np.linspace(grid["latitudeOfFirstGridPointInDegrees"],
                      grid["latitudeOfLastGridPointInDegrees"], grid["Nj"])
    lon = np.linspace(grid["longitudeOfFirstGridPointInDegrees"],
                      grid["longitudeOfLastGridPointInDegrees"], grid["Ni"])
    return np.array(times, dtype="datetime64[s]"), lat, lon, np.stack(frames)


def to_dataset(times: np.ndarray, lat: np.ndarray, lon: np.ndarray, t2m: np.ndarray,
               source: str) -> xr.Dataset:
    """A CF-1.8 dataset: ``t2m`` (time, latitude, longitude) in K."""
    if t2m.min() < OFFSET + SCALE * -32767 or t2m.max() > OFFSET + SCALE * 32767:
        raise SystemExit(f"values {t2m.min()} .. {t2m.max()} K do not fit the int16 packing")
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m.astype(np.float32), {
            "standard_name": "air_temperature", "long_name": "2 metre temperature",
            "units": "K"})},
        coords={
            "time": ("time", times.astype("datetime64[ns]"), {
                "standard_name": "time", "axis": "T"}),
            "latitude": ("latitude", lat, {"standard_name": "latitude",
                                           "units": "degrees_north", "axis": "Y"}),
            "longitude": ("longitude", lon, {"standard_name": "longitude",
                                             "units": "degrees_east", "axis": "X"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "ERA5 hourly 2 m temperature, British Isles, March 2019",
            "source": f"ERA5 reanalysis (ECMWF), decoded from {source} (xarray tutorial data)",
            "references": "Hersbach et al. (2020), The ERA5 global reanalysis, "
                          "Q. J. R. Meteorol. Soc. 146, 1999-2049",
            "license": "Contains modified Copernicus Climate Change Service information 2019. "
                       "Neither the European Commission nor ECMWF is responsible for any use "
                       "that may be made of the Copernicus information or data it contains.",
        },
    )
    return ds


def main() -> None:
    grib = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_GRIB
    times, lat, lon, t2m = read_grib(grib)
    ds = to_dataset(times, lat, lon, t2m, grib.name)
    encoding = {
        "t2m": {"dtype": "int16", "scale_factor": SCALE, "add_offset": OFFSET,
                "_FillValue": np.int16(-32768), "zlib": True, "complevel": 9, "shuffle": True},
        "time": {"units": "hours since 2019-03-01 00:00:00", "calendar": "proleptic_gregorian",
                 "dtype": "int32"},
    }
    tmp = OUT.with_suffix(".nc.tmp")
    ds.to_netcdf(tmp, encoding=encoding, engine="netcdf4", format="NETCDF4")
    tmp.replace(OUT)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    (HERE / f"{OUT.name}.sha256").write_text(f"{digest}  {OUT.name}\n")
    print(f"wrote {OUT} ({t2m.shape}, {OUT.stat().st_size} bytes), sha256 {digest}")


if __name__ == "__main__":
    main()
