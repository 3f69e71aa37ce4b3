"""The CSV contract: formats that must read, documented repairs, one-line errors."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forecast.frame as frame_pkg
from forecast.features import calendar_for
from forecast.frame import DataError, FrameSpec, ReadLimits, read_frame
from forecast.frame.batch import read_plain_frames
from forecast.frame.fastpath import read_plain

SPEC = FrameSpec(time_column="time", target="temp", covariates=("hum",))


def write(tmp_path: Path, text: str | bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def hourly(n: int = 6, start: str = "2020-01-01") -> str:
    t = pd.date_range(start, periods=n, freq="h", tz="UTC")
    rows = [f"{ts:%Y-%m-%dT%H:%M:%SZ},{10 + i},{50 + i}" for i, ts in enumerate(t)]
    return "time,temp,hum\n" + "\n".join(rows) + "\n"


# ---------------------------------------------------------------- formats that must read


@pytest.mark.parametrize("stamps,step", [
    (["2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z", "2020-01-01T02:00:00Z"], "1h"),
    (["2020-01-01T01:00:00+01:00", "2020-01-01T02:00:00+01:00", "2020-01-01T03:00:00+01:00"],
     "1h"),
    (["2020-01-01 00:00:00", "2020-01-01 01:00:00", "2020-01-01 02:00:00"], "1h"),
    (["2020/01/01 00:00", "2020/01/01 01:00", "2020/01/01 02:00"], "1h"),
    (["01.01.2020 00:00:00", "01.01.2020 00:10:00", "01.01.2020 00:20:00"], "10min"),
    (["1577836800", "1577840400", "1577844000"], "1h"),
])
def test_timestamp_formats_in_the_wild(tmp_path, stamps, step):
    text = "time,temp,hum\n" + "".join(f"{s},1,2\n" for s in stamps)
    frame = read_frame(write(tmp_path, text), SPEC)
    assert frame.freq == pd.Timedelta(step)
    assert frame.data["timestamp"].iloc[0] == pd.Timestamp("2020-01-01", tz="UTC")


def test_day_first_is_read_day_first(tmp_path):
    text = "time,temp,hum\n02.01.2009 00:00:00,1,2\n03.01.2009 00:00:00,1,2\n"
    frame = read_frame(write(tmp_path, text), SPEC)
    assert frame.data["timestamp"].iloc[0] == pd.Timestamp("2009-01-02", tz="UTC")
    assert frame.freq == pd.Timedelta("1D")
    assert calendar_for(frame.freq) == ["week", "year"]  # no daily cycle on a daily grid
    assert calendar_for(pd.Timedelta("10min")) == ["day", "week", "year"]


def test_columns_in_any_order_extra_columns_ignored_bom_accepted(tmp_path):
    text = "\ufeffextra,hum,junk,temp,time\n" + "".join(
        f"x,{50 + i},?,{10 + i},2020-01-01T0{i}:00:00Z\n" for i in range(4))
    frame = read_frame(write(tmp_path, text), SPEC)
    assert list(frame.data["temp"]) == [10, 11, 12, 13]
    assert list(frame.data["hum"]) == [50, 51, 52, 53]
    assert "extra" not in frame.data and "junk" not in frame.data


def test_gzip_file_reads(tmp_path):
    path = write(tmp_path, gzip.compress(hourly().encode()), "f.csv.gz")
    assert len(read_frame(path, SPEC).data) == 6


# ---------------------------------------------------------------- documented repairs


def test_unsorted_rows_are_sorted_and_reported(tmp_path):
    head, *rows = hourly().strip().split("\n")
    frame = read_frame(write(tmp_path, "\n".join([head, *rows[::-1]])), SPEC)
    assert list(frame.data["temp"]) == [10, 11, 12, 13, 14, 15]
    assert frame.repairs.rows_reordered > 0
    assert any("sorted" in line for line in frame.repairs.lines())


def test_impossible_values_become_missing(tmp_path):
    spec = FrameSpec("time", "temp", ("hum",), bounds={"hum": (0.0, 100.0)})
    text = hourly().replace(",52\n", ",1048\n")
    frame = read_frame(write(tmp_path, text), spec)
    assert frame.repairs.out_of_bounds["hum"] == 1
    row = frame.data.iloc[2]
    assert row["hum"] == 51 and row["hum_missing"] == 1.0  # carried forward, flagged


def test_short_gap_filled_forward_long_gap_splits(tmp_path):
    spec = FrameSpec("time", "temp", ("hum",), max_gap=2)
    lines = hourly(12).strip().split("\n")
    lines[3] = lines[3].replace(",12,", ",,")  # one missing value: carried forward
    del lines[6:9]  # three missing timestamps > max_gap: the series splits there
    frame = read_frame(write(tmp_path, "\n".join(lines)), spec)
    assert frame.repairs.filled["temp"] == 1
    assert frame.data["temp"].iloc[2] == 11
    assert frame.repairs.long_gaps[0]["steps"] == 3
    assert frame.data["segment"].nunique() == 2
    assert len(frame.data) == 9


# ---------------------------------------------------------------- errors, one line each


@pytest.mark.parametrize("text,match", [
    ("", r"f\.csv: empty file"),
    ("   \n\n", r"empty file"),
    ("time,temp,hum\n", r"f\.csv: header only, no data rows"),
    ("tim,temp,hum\n2020-01-01,1,2\n", r"column 'time' not found.*did you mean 'time' -> 'tim'"),
    ("time,hum\n2020-01-01,1\n", r"column 'temp' not found; expected columns"),
    ("time,x\n2020-01-01,1\n", r"columns 'temp', 'hum' not found"),
    ("time;temp;hum\n2020-01-01;1;2\n", r"semicolon-delimited; save it comma-separated"),
    ("time\ttemp\thum\n2020-01-01\t1\t2\n", r"tab-delimited"),
    ("time,temp,temp\n2020-01-01,1,2\n", r"column 'temp' appears twice"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n2020-01-01T01:00Z,1\n",
     r"row 2 \(line 3\): 2 fields where the header has 3"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n2020-01-01T01:00Z,abc,2\n",
     r"column 'temp', row 2 \(line 3\): value 'abc' is not a number"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n2020-01-01T01:00Z,True,2\n",
     r"column 'temp', row 2.*'True' is not a number"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,inf\n2020-01-01T01:00Z,1,2\n",
     r"column 'hum', row 1.*'inf' is infinite"),
    ("time,temp,hum\n2020-01-01T00:00Z,1e400,2\n2020-01-01T01:00Z,1,2\n",
     r"column 'temp', row 1.*'1e400' is infinite"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\nyesterday,1,2\n",
     r"column 'time', row 2.*cannot read timestamp 'yesterday'.*data\.time_format"),
    ("time,temp,hum\n,1,2\n", r"column 'time', row 1.*empty timestamp"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n2020-01-01T01:00Z,1,2\n2020-01-01T01:00Z,3,2\n",
     r"column 'time', row 3.*duplicate timestamp 2020-01-01 01:00:00\+00:00.*also row 2"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n2020-01-01T01:00Z,1,2\n2020-01-01T02:00Z,1,2\n"
     "2020-01-01T02:17Z,1,2\n",
     r"column 'time', row 4.*irregular timestamp.*17min after the previous row, not a multiple "
     r"of the step 1h"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n2020-01-01T01:00Z,1,2\n2020-01-01T03:00Z,1,2\n"
     "2020-01-01T06:00Z,1,2\n2020-01-01T10:00Z,1,2\n", r"column 'time'.*ambiguous frequency"),
    ("time,temp,hum\n2020-01-01T00:00Z,1,2\n", r"one row per series; cannot infer frequency"),
    ("time,temp,hum\n2000-01-01T00:00:00Z,1,2\n2000-01-01T00:00:01Z,1,2\n"
     "2000-01-01T00:00:02Z,1,2\n2020-01-01T00:00:00Z,1,2\n",
     r"spans \d+ steps of 1s .*only 4 rows.*set data\.freq"),
])
def test_bad_text_is_one_line_error(tmp_path, text, match):
    with pytest.raises(DataError, match=match) as info:
        read_frame(write(tmp_path, text), SPEC)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("raw,match", [
    (b"time,temp,hum\n2020-01-01T00:00Z,1,2\n\xff\xfe,1,2\n", r"line 3: byte 0xff is not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"binary data \(NUL bytes\): not a CSV"),
    (b"\x1f\x8b\x08\x00garbage", r"damaged gzip file"),
])
def test_bad_bytes_are_refused(tmp_path, raw, match):
    with pytest.raises(DataError, match=match):
        read_frame(write(tmp_path, raw), SPEC)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_frame(tmp_path / "nope.csv", SPEC)
    with pytest.raises(DataError, match=r"is a folder, not a CSV file"):
        read_frame(tmp_path, SPEC)


def test_bad_freq_and_empty_series_id(tmp_path):
    with pytest.raises(DataError, match=r"freq 'hourly' is not a frequency"):
        read_frame(write(tmp_path, hourly()), FrameSpec("time", "temp", freq="hourly"))
    text = "id,time,temp\nA,2020-01-01T00:00Z,1\n,2020-01-01T01:00Z,1\n"
    with pytest.raises(DataError, match=r"column 'id', row 2.*empty series id"):
        read_frame(write(tmp_path, text), FrameSpec("time", "temp", series_id="id"))


# ---------------------------------------------------------------- property: only DataError

CELLS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", "True", "1,5", "\"", "\r"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**12, 10**12).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%d.%m.%Y %H:%M:%S")),
    st.sampled_from(["2020-01-01T00:00Z", "2020-01-01T01:00Z", "2020-01-01T03:00Z",
                     "2020/01/01 02:00", "1577836800"]),
)


@st.composite
def tables(draw) -> str:
    names = draw(st.lists(st.sampled_from(["time", "temp", "hum", "id", "x", ""]),
                          min_size=1, max_size=5))
    n_rows = draw(st.integers(0, 8))
    rows = [[draw(CELLS) for _ in names] for _ in range(n_rows)]
    sep = draw(st.sampled_from([",", ",", ";"]))
    return "\n".join(sep.join(r) for r in [names, *rows])


def _only_data_errors(tmp_path: Path, data: bytes, spec: FrameSpec) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(data)
    try:
        frame = read_frame(path, spec)
    except DataError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
        return
    assert np.isfinite(frame.data["timestamp"].astype("int64")).all()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=tables(), series=st.booleans())
def test_arbitrary_tables_raise_only_data_error(tmp_path, text, series):
    spec = FrameSpec("time", "temp", ("hum",), series_id="id" if series else None)
    _only_data_errors(tmp_path, text.encode("utf-8", "surrogatepass"), spec)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(
    lambda t: t.encode("utf-8", "surrogatepass"))))
def test_arbitrary_bytes_raise_only_data_error(tmp_path, data):
    _only_data_errors(tmp_path, data, SPEC)


# ---------------------------------------------------------------- encodings, stamps, layout


def test_quoted_newlines_and_blank_lines_keep_line_numbers(tmp_path):
    text = ('time,temp,hum,note\n2020-01-01T00:00Z,1,2,"two\nlines"\n\n'
            '2020-01-01T01:00Z,1,2,x\n2020-01-01T02:00Z,abc,2,y\n')
    with pytest.raises(DataError, match=r"column 'temp', row 3 \(line 6\): value 'abc'"):
        read_frame(write(tmp_path, text), SPEC)
    plain = "time,temp,hum\n2020-01-01T00:00Z,1,2\n\n\n2020-01-01T01:00Z,abc,2\n"
    with pytest.raises(DataError, match=r"row 2 \(line 5\): value 'abc'"):
        read_frame(write(tmp_path, plain), SPEC)


def test_utf16_is_decoded_with_a_bom_and_named_without(tmp_path):
    frame = read_frame(write(tmp_path, hourly().encode("utf-16")), SPEC)  # BOM + UTF-16 LE
    assert list(frame.data["temp"]) == [10, 11, 12, 13, 14, 15]
    with pytest.raises(DataError, match=r"UTF-16 text without a byte-order mark.*UTF-8"):
        read_frame(write(tmp_path, hourly().encode("utf-16-le")), SPEC)


def test_epoch_milliseconds_read_and_compact_stamps_named(tmp_path):
    ms = "time,temp,hum\n" + "".join(f"{1577836800000 + i * 3600000},1,2\n" for i in range(3))
    frame = read_frame(write(tmp_path, ms), SPEC)
    assert frame.data["timestamp"].iloc[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert frame.freq == pd.Timedelta("1h")
    compact = "time,temp,hum\n2013010100,1,2\n2013010101,1,2\n2013010102,1,2\n"
    with pytest.raises(DataError, match=r"'2013010100' read as compact YYYYMMDDHH.*"
                                        r"data\.time_format='%Y%m%d%H'"):
        read_frame(write(tmp_path, compact), SPEC)
    spec = FrameSpec("time", "temp", ("hum",), time_format="%Y%m%d%H")
    assert read_frame(write(tmp_path, compact), spec).freq == pd.Timedelta("1h")


@pytest.mark.parametrize("stamp", ["9999-01-01T00:00:00Z", "1500-06-01 00:00", "99999999999"])
def test_timestamps_outside_the_representable_range_are_one_line(tmp_path, stamp):
    text = f"time,temp,hum\n{stamp},1,2\n{stamp},1,2\n"
    with pytest.raises(DataError, match=rf"row 1 \(line 2\): timestamp '{stamp}' is outside the "
                                        r"range that can be represented \(1677-09-21"):
        read_frame(write(tmp_path, text), SPEC)


def test_only_regular_files_are_opened_and_limits_hold(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # opening it for reading the usual way would block forever
    with pytest.raises(DataError, match=r"pipe\.csv: is a named pipe, not a CSV file"):
        read_frame(fifo, SPEC)
    with pytest.raises(DataError, match=r"/dev/null: is a device"):
        read_frame("/dev/null", SPEC)
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match=r"loop\.csv: a symbolic link that loops"):
        read_frame(loop, SPEC)
    bomb = write(tmp_path, gzip.compress(hourly(3).encode() + b"\n" * 3_000_000), "b.csv.gz")
    assert bomb.stat().st_size < 10_000
    with pytest.raises(DataError, match=r"decompresses to more than 1,048,576 bytes.*max_file_mb"):
        read_frame(bomb, SPEC, limits=ReadLimits(max_bytes=2**20))
    with pytest.raises(DataError, match=r"more than 5 data rows, the per-file limit.*max_rows"):
        read_frame(write(tmp_path, hourly(6)), SPEC, limits=ReadLimits(max_rows=5))


def test_an_empty_series_is_named_not_lost(tmp_path):
    text = ("id,time,temp,hum\n" + "".join(f"A,2020-01-01T0{i}:00Z,{i},2\n" for i in range(4))
            + "".join(f"B,2020-01-01T0{i}:00Z,,2\n" for i in range(4)))
    frame = read_frame(write(tmp_path, text), FrameSpec("time", "temp", ("hum",), "id"))
    assert frame.series_names == ["A"]
    assert frame.dropped == {"B": f"{tmp_path / 'f.csv'}: column 'temp', series 'B': no value "
                                  "in any of its 4 rows (all empty or outside the bounds); "
                                  "nothing to forecast from"}


# ---------------------------------------------------------------- the fast path agrees

PLAIN_CELLS = st.one_of(st.integers(-10**6, 10**6).map(str),
                        st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.6f}"),
                        st.sampled_from(["", "NA", "1e3", " 2", "-0", "+5", ".5", "5.", "1.2.3",
                                         "-", ".", "1-2", "+-1", "007", "-.25",
                                         "12345678901234567.5", "0.1000000000000000055511"]),
                        st.decimals(-10**20, 10**20, allow_nan=False, allow_infinity=False,
                                    places=4).map(str))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 30), ids=st.sampled_from([None, ("A",), ("A", "BB")]),
       cells=st.lists(PLAIN_CELLS, min_size=60, max_size=60), shuffle=st.booleans())
def test_fast_path_reads_exactly_what_the_general_reader_reads(tmp_path, n, ids, cells, shuffle):
    rows = []
    for k, name in enumerate(ids or ("",)):
        for i in range(n):
            stamp = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(hours=i)
            rows.append(([name] if ids else []) + [f"{stamp:%Y-%m-%dT%H:%M:%SZ}",
                                                   cells[(2 * i + k) % 60], cells[(i + 7) % 60]])
    if shuffle:
        rows = rows[::-1]
    head = (["id"] if ids else []) + ["time", "temp", "hum"]
    path = write(tmp_path, "\n".join(",".join(r) for r in [head, *rows]) + "\n")
    spec = FrameSpec("time", "temp", ("hum",), "id" if ids else None, max_gap=3)

    def read(fast: bool) -> object:
        try:
            if fast:
                return read_frame(path, spec)
            with patch.object(frame_pkg, "read_plain", lambda *a, **k: None):
                return read_frame(path, spec)
        except DataError as err:
            return str(err)

    a, b = read(True), read(False)
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        pd.testing.assert_frame_equal(a.data, b.data)
        assert a.repairs.to_dict() == b.repairs.to_dict() and a.dropped == b.dropped


def test_the_fast_path_reads_series_whose_ids_differ_in_width(tmp_path):
    """Several series in one plain file, ids of several widths: read the fast way (not sent
    the general way), in order of first appearance, and the same frame as the general way."""
    rows = [f"{i},{(pd.Timestamp('2020-01-01') + pd.Timedelta(hours=h)):%Y-%m-%dT%H:%M:%SZ}"
            f",{h},{50 + h}" for i in ("BB", "A", "CCC") for h in range(4)]
    path = write(tmp_path, "id,time,temp,hum\n" + "\n".join(rows) + "\n")
    spec = FrameSpec("time", "temp", ("hum",), "id")
    fast = read_plain(path, path.read_bytes(), spec, "fix", None)
    assert fast is not None
    codes, names = fast[2], fast[3]
    assert names == ["BB", "A", "CCC"] and codes.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    with patch.object(frame_pkg, "read_plain", lambda *a, **k: None):
        general = read_frame(path, spec)
    pd.testing.assert_frame_equal(read_frame(path, spec).data, general.data)


# ---------------------------------------------------------------- many files read together

def _variants(tmp_path: Path) -> dict[str, tuple[Path, bool]]:
    """name -> (file, whether reading together takes it: plain, one series, no repair)."""
    base = hourly(8)
    lines = base.splitlines()
    out = {}

    def add(name: str, text: str | bytes, taken: bool, suffix: str = ".csv") -> None:
        data = text.encode() if isinstance(text, str) else text
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
        out[name] = (path, taken)

    add("plain", base, True)
    add("other_start", hourly(5, "2021-06-30T22:00"), True)
    add("no_last_newline", base.rstrip("\n"), True)
    add("bom", "\ufeff" + base, True)
    add("gzip", base, True, ".csv.gz")
    add("columns_moved", "hum,temp,time\n" + "".join(
        f"{r.split(',')[2]},{r.split(',')[1]},{r.split(',')[0]}\n" for r in lines[1:]), True)
    add("one_id", "time,temp,hum,id\n" + "".join(f"{r},A\n" for r in lines[1:]), True)
    add("two_ids", "time,temp,hum,id\n" + "".join(
        f"{r},{'AB'[i % 2]}\n" for i, r in enumerate(lines[1:])), True)  # ids not read
    add("unsorted", "\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n", False)
    add("gap", "\n".join(lines[:3] + lines[5:]) + "\n", False)
    add("duplicate", "\n".join(lines + [lines[-1]]) + "\n", False)
    add("two_hours", "\n".join(lines[::2]) + "\n", False)
    add("out_of_bounds", base.replace(",52\n", ",500\n"), False)
    add("empty_cell", base.replace(",52\n", ",\n"), False)
    add("exponent", base.replace(",52\n", ",5.2e1\n"), True)  # the same float either way
    add("padded_number", base.replace(",52\n", ", 52\n"), True)
    add("nan_token", base.replace(",52\n", ",NaN\n"), False)  # missing: the general way fills
    add("infinite", base.replace(",52\n", ",1e999\n"), False)
    add("underscore", base.replace(",52\n", ",5_2\n"), False)
    add("blank_line", base.replace(",52\n", ",52\n\n"), False)
    add("crlf", base.replace("\n", "\r\n"), False)
    add("missing_column", base.replace("hum", "humidity"), False)
    add("header_only", lines[0] + "\n", False)
    add("utf16", base.encode("utf-16"), False)
    add("not_utf8", base.encode() + b"2020-01-01T09:00:00Z,\xff,1\n", False)
    return out


def test_files_read_together_give_exactly_the_frames_read_one_by_one(tmp_path):
    spec = FrameSpec("time", "temp", ("hum",), None, freq="1h", bounds={"hum": (0.0, 100.0)})
    variants = _variants(tmp_path)
    paths = [p for p, _ in variants.values()]
    together = read_plain_frames(paths, spec)
    for (name, (path, taken)), frame in zip(variants.items(), together, strict=True):
        assert (frame is not None) == taken, name
        if frame is None:
            continue
        alone = read_frame(path, spec)
        pd.testing.assert_frame_equal(frame.data, alone.data)
        assert (frame.repairs.to_dict(), frame.dropped, frame.freq, frame.path, frame.series_names
                ) == (alone.repairs.to_dict(), alone.dropped, alone.freq, alone.path,
                      alone.series_names), name
    id_spec = FrameSpec("time", "temp", ("hum",), "id", freq="1h")
    one, two = read_plain_frames([variants["one_id"][0], variants["two_ids"][0]], id_spec)
    pd.testing.assert_frame_equal(one.data, read_frame(variants["one_id"][0], id_spec).data)
    assert one.series_names == ["A"] and two is None  # several series: read one by one
    assert read_plain_frames(paths, FrameSpec("time", "temp", ("hum",))) == [None] * len(paths)


def test_files_read_together_tell_one_series_from_several_whatever_the_ids_widths(tmp_path):
    """Ids of several widths in one batch: a file is one series only if every row carries
    its first row's id, byte for byte."""
    lines = hourly(6).splitlines()
    spec = FrameSpec("time", "temp", ("hum",), "id", freq="1h")
    cases = {"a": ["A"] * 6, "bb": ["BB"] * 6, "cde": ["CDE"] * 6,
             "same_width": ["AB"] * 3 + ["AC"] * 3, "other_width": ["A"] * 3 + ["AB"] * 3,
             "last_differs": ["XY"] * 5 + ["XZ"]}
    paths = []
    for name, ids in cases.items():
        paths.append(tmp_path / f"{name}.csv")
        paths[-1].write_text("time,temp,hum,id\n" + "".join(
            f"{r},{i}\n" for r, i in zip(lines[1:], ids, strict=True)))
    frames = dict(zip(cases, read_plain_frames(paths, spec), strict=True))
    assert {k for k, f in frames.items() if f is not None} == {"a", "bb", "cde"}
    empty = tmp_path / "empty_ids.csv"  # alone in its batch: no id has a byte
    empty.write_text("time,temp,hum,id\n" + "".join(f"{r},\n" for r in lines[1:]))
    assert read_plain_frames([empty], spec) == [None]  # the general way names the empty ids
    for k in ("a", "bb", "cde"):
        assert frames[k].series_names == [cases[k][0]]
        pd.testing.assert_frame_equal(frames[k].data, read_frame(tmp_path / f"{k}.csv", spec).data)


@pytest.mark.parametrize(("cell", "shown"), [('"12\n.5"', r"value '12\n.5' is not a number"),
                                             ('"1\t2"', r"value '1\t2' is not a number"),
                                             ('"2020-01-01\r05"', r"timestamp '2020-01-01\r05'")])
def test_a_value_holding_a_control_character_is_named_on_one_line(tmp_path, cell, shown):
    """A quoted field with a newline, tab or carriage return: the message shows it escaped,
    so the error stays one line (and the row and line numbers count the quoted newline)."""
    lines = hourly(4).splitlines()
    if "timestamp" in shown:
        lines[2] = cell + lines[2][lines[2].index(","):]
    else:
        lines[2] = lines[2][:lines[2].index(",") + 1] + cell + lines[2][lines[2].rindex(","):]
    with pytest.raises(DataError) as err:
        read_frame(write(tmp_path, "\n".join(lines) + "\n"), SPEC)
    message = str(err.value)
    assert "\n" not in message and "\r" not in message and "\t" not in message
    assert shown in message  # the escape, as two characters
    assert "row 2 (line 3)" in message


def test_padded_series_ids_are_trimmed_and_the_repair_is_reported(tmp_path, caplog):
    """' A ' and 'A' are one series; the repair names the forms written, in the log and in
    the report's dictionary (metrics.json)."""
    text = "id,time,temp,hum\n" + "".join(
        f"{sid},2020-01-01T{h:02d}:00:00Z,{10 + h},50\n"
        for h, sid in enumerate([" A ", "A", "A ", "A", "B", "B"]))
    with caplog.at_level("INFO"):
        frame = read_frame(write(tmp_path, text), FrameSpec("time", "temp", ("hum",),
                                                           series_id="id"))
    assert sorted(p["series"] for p in frame.parts) == ["A", "B"]
    assert frame.repairs.ids_trimmed == {"A": [" A ", "A "]}
    assert frame.repairs.to_dict()["ids_trimmed"] == {"A": [" A ", "A "]}
    assert any("series id ' A ', 'A ' read as 'A' (surrounding spaces trimmed" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("chunk_rows", [4, 65_536])
def test_with_series_alone_a_bad_cell_leaves_out_its_series_in_every_chunk(
        tmp_path, monkeypatch, chunk_rows):
    """Series B has a cell that is not a number (in its last rows, read in a later chunk
    when chunks are small): B is left out, named with its column, row and line, and A is
    read exactly as it is alone; without ``series_alone`` the file is refused."""
    import forecast.frame.text as text_mod

    monkeypatch.setattr(text_mod, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(frame_pkg, "read_rows",
                        lambda path, text: text_mod.read_rows(path, text, chunk_rows))
    rows = [f"{sid},2020-01-01T{h:02d}:00:00Z,{10 + h},50"
            for sid in ("A", "B") for h in range(6)]
    rows[10] = rows[10].replace(",14,", ",oops,")  # B at 04:00: data row 11, line 12
    spec = FrameSpec("time", "temp", ("hum",), series_id="id")
    path = write(tmp_path, "id,time,temp,hum\n" + "\n".join(rows) + "\n")
    frame = read_frame(path, spec, series_alone=True)
    assert [p["series"] for p in frame.parts] == ["A"]
    assert list(frame.dropped) == ["B"]
    assert frame.dropped["B"].endswith("column 'temp', row 11 (line 12): value 'oops' is not "
                                       "a number; use digits, or leave the cell empty / NA "
                                       "for a missing value")
    alone = read_frame(write(tmp_path, "id,time,temp,hum\n" + "\n".join(rows[:6]) + "\n",
                             "a.csv"), spec)
    np.testing.assert_array_equal(frame.parts[0]["temp"], alone.parts[0]["temp"])
    with pytest.raises(DataError, match=r"row 11 \(line 12\): value 'oops' is not a number"):
        read_frame(path, spec)


def test_rows_are_numbered_as_written_after_a_series_is_left_out(tmp_path):
    """Series A has a bad cell and is left out; series B's duplicate and series C's
    off-grid stamp, later in the file, are still named by their own row and line."""
    rows = [f"{sid},2020-01-01T{h:02d}:00:00Z,{10 + h},50"
            for sid in ("A", "B", "C") for h in range(6)]
    rows[1] = rows[1].replace(",11,", ",bad,")            # A: data row 2
    rows[9] = rows[9].replace("T03:00", "T02:00")         # B: row 10 repeats row 9's stamp
    rows[15] = rows[15].replace("T03:00:00Z", "T03:17:00Z")  # C: row 16 off the hour
    rows += [f"D,2020-01-01T{h:02d}:00:00Z,{20 + h},50" for h in range(6)]
    spec = FrameSpec("time", "temp", ("hum",), series_id="id")
    frame = read_frame(write(tmp_path, "id,time,temp,hum\n" + "\n".join(rows) + "\n"), spec,
                       series_alone=True)
    assert [p["series"] for p in frame.parts] == ["D"]
    assert "column 'temp', row 2 (line 3): value 'bad'" in frame.dropped["A"]
    assert "row 10 (line 11): duplicate timestamp 2020-01-01 02:00:00+00:00 in series 'B' " \
           "(also row 9)" in frame.dropped["B"]
    assert "row 16 (line 17): irregular timestamp 2020-01-01 03:17:00" in frame.dropped["C"]
