"""Point vs field: one grid point's series as a CSV for the 1-D net, and that net's honest
forecasts at the test origins, to set beside the field net's at the same point.

    python -m forecast.fields.point --lat 51.5074 --lon -0.1278 --out outputs/london_t2m.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.fields.reading import open_field
from forecast.files import atomic_write_text

log = logging.getLogger(__name__)
ERA5 = Path(__file__).resolve().parent.parent / "data" / "era5_t2m_2019-03_uk.nc"


def write_point_csv(path: str | Path, variable: str, lat: float, lon: float,
                    out: str | Path) -> tuple[float, float]:
    """The series of the grid point nearest (lat, lon) as CSV ``time,<variable>``; returns the
    grid point's coordinates."""
    field = open_field(path, variable)
    r, c = int(np.abs(field.y - lat).argmin()), int(np.abs(field.x - lon).argmin())
    values = np.asarray(field.data[:, r, c].values, dtype=np.float64)
    frame = pd.DataFrame({
        "time": pd.DatetimeIndex(field.times, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        variable: np.round(values, 4),
    })
    atomic_write_text(out, frame.to_csv(index=False))
    log.info("wrote %s: %d steps at grid point %.2f N, %.2f E", out, len(frame), field.y[r],
             field.x[c])
    return float(field.y[r]), float(field.x[c])


def point_forecasts(checkpoint: str | Path, data: dict, name: str, lat: float,
                    lon: float) -> dict:
    """Honest forecasts of a 1-D run at its test origins: {times (ns), pred (N, H)}."""
    from forecast.data import ForecastDataModule
    from forecast.evaluation import forecast_origins
    from forecast.module import load_checkpoint

    model = load_checkpoint(checkpoint)
    dm = ForecastDataModule(**{k: v for k, v in data.items() if not k.startswith("_")})
    spec = dm.load()
    origins = dm.split_origins("test", model.receptive_field - 1)
    fc = forecast_origins(model, dm.arrays, origins, spec, "honest")
    return {"name": name, "lat": lat, "lon": lon, "model": str(model.hparams.name),
            "times": fc.origin.tolist(), "pred": fc.pred}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description="Write one grid point's series as a CSV.")
    p.add_argument("--field", default=str(ERA5), help="NetCDF file (default: embedded ERA5)")
    p.add_argument("--variable", default="t2m")
    p.add_argument("--lat", type=float, default=51.5074, help="default: London")
    p.add_argument("--lon", type=float, default=-0.1278)
    p.add_argument("--out", default="outputs/london_t2m.csv")
    a = p.parse_args()
    write_point_csv(a.field, a.variable, a.lat, a.lon, a.out)


if __name__ == "__main__":
    main()
