"""Reading fields: CF axis inference, chunked reads equal one read, one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from fieldfiles import make_field, write_field

from forecast.fields.data import FieldDataModule
from forecast.fields.reading import open_field
from forecast.frame import DataError


def test_axes_inferred_from_cf_attributes(tmp_path):
    ds = make_field().rename({"time": "t", "lat": "row", "lon": "col"})
    ds["row"].attrs = {"axis": "Y"}
    ds["col"].attrs = {"standard_name": "longitude"}
    f = open_field(write_field(tmp_path / "f.nc", ds), "tas")
    assert f.dims == ("t", "row", "col")
    assert f.step == pd.Timedelta("1h") and f.units == "K" and f.shape == (6, 7)
    # axes stored in another order come back as (time, y, x)
    g = open_field(write_field(tmp_path / "g.nc", ds.transpose("col", "t", "row")), "tas")
    np.testing.assert_array_equal(g.frames(0, 5), f.frames(0, 5))


def test_chunked_read_equals_one_read(tmp_path):
    path = write_field(tmp_path / "f.nc")
    whole = open_field(path, "tas")
    chunked = open_field(path, "tas", chunk_steps=5)
    assert chunked.data.chunks[0][:3] == (5, 5, 5)  # dask chunks of 5 time steps
    assert whole.data.chunks is None
    np.testing.assert_array_equal(chunked.times, whole.times)
    np.testing.assert_array_equal(chunked.frames(3, 40), whole.frames(3, 40))
    np.testing.assert_allclose(chunked.stats(72), whole.stats(72), rtol=1e-12)
    # the data module serves the same windows from a field it keeps on disk
    kw = dict(path=str(path), variable="tas", fractions=(0.5, 0.25, 0.25), horizon=3, span=8,
              crop=0)
    lazy = FieldDataModule(**kw, chunk_steps=5, max_memory_mb=0)
    eager = FieldDataModule(**kw)
    for dm in (lazy, eager):
        dm.set_history(4)
        dm.setup()
    assert lazy.field.data.chunks is not None and eager.field.data.chunks is None
    assert lazy.spec == eager.spec
    for split in ("train", "test"):
        for a, b in zip(lazy.datasets[split][0], eager.datasets[split][0], strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_scaler_uses_training_frames_only(tmp_path):
    ds = make_field()
    ds["tas"][100:] += 50.0  # a jump after the training part must not move the scaler
    path = write_field(tmp_path / "f.nc", ds)
    dm = FieldDataModule(str(path), "tas", fractions=(0.5, 0.25, 0.25))
    spec = dm.load()
    train_frames = dm.field.frames(0, int(np.sum(dm.field.times <= dm.splits["train"][1].value)))
    assert spec["mean"] == pytest.approx(float(train_frames.astype(np.float64).mean()))


def test_wrong_variable(tmp_path):
    path = write_field(tmp_path / "f.nc")
    with pytest.raises(DataError, match=r"f\.nc: no variable 'temp' \(data\.variable=NAME\); "
                                        r"the file holds \['tas'\]"):
        open_field(path, "temp")


def test_no_time_axis(tmp_path):
    ds = make_field().rename({"time": "step"})
    ds = ds.assign_coords(step=np.arange(ds.sizes["step"]))
    path = write_field(tmp_path / "f.nc", ds)
    with pytest.raises(DataError, match=r"f\.nc: variable 'tas' axes \['step', 'lat', 'lon'\]: "
                                        r"no time axis .*data\.time=NAME"):
        open_field(path, "tas")
    with pytest.raises(DataError, match=r"axis 'step': the time axis holds no timestamps"):
        open_field(path, "tas", time="step")
    with pytest.raises(DataError, match=r"no axis 'when' \(data\.time=when\)"):
        open_field(path, "tas", time="when")


def test_irregular_time_step(tmp_path):
    ds = make_field()
    times = ds["time"].values.copy()
    times[50:] += np.timedelta64(30, "m")
    path = write_field(tmp_path / "f.nc", ds.assign_coords(time=times))
    with pytest.raises(DataError, match=r"variable 'tas', axis 'time': irregular time step at "
                                        r"index 50 \(2020-03-03 02:30:00\+00:00\): 0 days "
                                        r"01:30:00 after steps of 0 days 01:00:00"):
        open_field(path, "tas")


@pytest.mark.parametrize("chunk_steps", [None, 7])
def test_nan_land_mask(tmp_path, chunk_steps):
    ds = make_field()
    ds["tas"][20:, 0, :3] = np.nan  # a land/sea mask from frame 20 on
    path = write_field(tmp_path / "f.nc", ds)
    with pytest.raises(DataError, match=r"variable 'tas', axis 'time' index 20: 3 of 42 grid "
                                        r"points are NaN \(124 frames affected; a land/sea mask"):
        open_field(path, "tas", chunk_steps=chunk_steps)


def test_not_netcdf_and_missing(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_text("time,temp\n")
    with pytest.raises(DataError, match=r"bad\.nc: not a readable NetCDF file"):
        open_field(bad, "tas")
    with pytest.raises(DataError, match=r"none\.nc: file not found"):
        open_field(tmp_path / "none.nc", "tas")


def test_extra_axis_refused(tmp_path):
    ds = make_field().expand_dims(level=[1000.0, 850.0], axis=1)
    path = write_field(tmp_path / "f.nc", ds)
    with pytest.raises(DataError, match=r"a field needs exactly a time and two space axes"):
        open_field(path, "tas")


def test_embedded_field_is_checked(tmp_path):
    dm = FieldDataModule(str(tmp_path / "x.nc"), "t2m", checksum="0" * 64)
    xr.Dataset({"t2m": ("time", [1.0])}).to_netcdf(tmp_path / "x.nc")
    with pytest.raises(DataError, match=r"x\.nc: SHA-256 [0-9a-f]{64} != expected 0{64}"):
        dm.load()
