"""Columns about the stations: each row gains every station's value in the same hour, or
a 0/1 column per station."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "station_columns.py"
spec = importlib.util.spec_from_file_location("station_columns", SCRIPT)
station_columns = importlib.util.module_from_spec(spec)
spec.loader.exec_module(station_columns)

FRAME = pd.DataFrame({
    "origin": ["A", "A", "B", "B", "B"],
    "time_hour": ["t0", "t1", "t0", "t1", "t2"],
    "temp": [1.0, 2.0, 10.0, 20.0, 30.0],
})


def test_every_row_gets_each_stations_value_at_its_own_hour_and_missing_where_absent():
    out = station_columns.with_peers(FRAME)
    assert list(out.columns) == ["origin", "time_hour", "temp", "temp_A", "temp_B"]
    assert out["temp_A"].tolist()[:4] == [1.0, 2.0, 1.0, 2.0]
    assert np.isnan(out["temp_A"].iloc[4])  # A has no observation at t2
    assert out["temp_B"].tolist() == [10.0, 20.0, 10.0, 20.0, 30.0]
    assert out[["origin", "time_hour", "temp"]].equals(FRAME)  # rows and order kept


def test_indicators_mark_each_rows_own_station():
    out = station_columns.with_indicators(FRAME)
    assert out["is_A"].tolist() == [1, 1, 0, 0, 0]
    assert out["is_B"].tolist() == [0, 0, 1, 1, 1]
