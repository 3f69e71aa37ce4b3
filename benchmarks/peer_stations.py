"""Write the embedded NYC file with every station's temperature on every row.

Each row (station, hour) gains ``temp_EWR``, ``temp_JFK`` and ``temp_LGA``: the three
stations' temperatures in the same hour (empty where that station has no observation).
All of them are known at the forecast origin, so a net and the baselines can both read
the neighbours' recent weather as covariates. Used to measure that design on the
rolling-origin folds (README, "Model", "The neighbours' temperature"):

    python benchmarks/peer_stations.py data/nyc_peers_2013.csv.gz
    python selection.py seeds=[0,1] "train_overrides=['data.path=...', ...]"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def with_peers(frame: pd.DataFrame, series: str = "origin", time: str = "time_hour",
               column: str = "temp") -> pd.DataFrame:
    """``frame`` with one ``{column}_{id}`` column per series id, joined on the time."""
    wide = (frame.drop_duplicates([series, time])
            .pivot(index=time, columns=series, values=column))
    wide.columns = [f"{column}_{name}" for name in wide.columns]
    return frame.merge(wide, left_on=time, right_index=True, how="left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "nyc_weather_2013.csv.gz")
    args = parser.parse_args()
    frame = pd.read_csv(args.source, dtype=str, keep_default_na=False)
    frame = with_peers(frame.replace({"NA": ""}).assign(
        temp=lambda f: pd.to_numeric(f["temp"], errors="coerce")))
    frame.to_csv(args.out, index=False, na_rep="")
    print(f"wrote {args.out}: {len(frame)} rows, columns {list(frame.columns)}")


if __name__ == "__main__":
    main()
