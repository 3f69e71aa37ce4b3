"""Write the embedded NYC file with columns about the stations, to measure them as inputs.

``--peers``: each row (station, hour) gains ``temp_EWR``, ``temp_JFK`` and ``temp_LGA``,
the three stations' temperatures in the same hour (empty where that station has no
observation). ``--indicators``: it gains ``is_EWR``, ``is_JFK`` and ``is_LGA`` (1 for its
own station, else 0): a per-station input, which the convolutions' input projection turns
into a learned vector for each station. Everything added is known at the forecast origin,
so a net and the baselines both read it as covariates. Used on the rolling-origin folds
(README, "Choosing a design"):

    python benchmarks/station_columns.py /tmp/peers.csv.gz --peers
    python selection.py seeds=[0,1] "train_overrides=['data.path=/tmp/peers.csv.gz', ...]"
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


def with_indicators(frame: pd.DataFrame, series: str = "origin") -> pd.DataFrame:
    """``frame`` with one 0/1 column ``is_{id}`` per series id."""
    ids = sorted(frame[series].unique())
    return frame.assign(**{f"is_{name}": (frame[series] == name).astype(int) for name in ids})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "nyc_weather_2013.csv.gz")
    parser.add_argument("--peers", action="store_true", help="every station's temperature")
    parser.add_argument("--indicators", action="store_true", help="a 0/1 column per station")
    args = parser.parse_args()
    if not (args.peers or args.indicators):
        parser.error("nothing to add: give --peers, --indicators or both")
    frame = pd.read_csv(args.source, dtype=str, keep_default_na=False).replace({"NA": ""})
    if args.peers:
        frame = with_peers(frame.assign(temp=pd.to_numeric(frame["temp"], errors="coerce")))
    if args.indicators:
        frame = with_indicators(frame)
    frame.to_csv(args.out, index=False, na_rep="")
    print(f"wrote {args.out}: {len(frame)} rows, columns {list(frame.columns)}")


if __name__ == "__main__":
    main()
