"""The common file, read by pyarrow's CSV reader in one pass of C code instead of one Python
string per field: no quotes, no carriage returns, no blank lines, numbers that parse,
ISO timestamps.

:func:`read_plain` returns ``None`` at the first thing it does not handle, and the caller
reads the file the general way (:mod:`forecast.frame.text`, :mod:`forecast.frame.values`),
which finds and names the problem exactly (file, column, row, fix). So the fast path never
decides what is an error: it only skips work where there is none. It takes a number only
where the general way reads the same float: pyarrow's parser rounds correctly, as Python's
``float`` does, and whatever it reads as infinite or NaN (``nan``, ``inf``, ``1e999``) goes
the general way, which treats NA tokens as missing values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from forecast.frame.schema import FrameSpec
from forecast.frame.text import _check_header, require_columns

FAST_MAX_BYTES = 8 * 2**20  # bigger files are read chunk by chunk, in bounded memory
# a quote is an ordinary byte (files holding one go the general way), and a blank line or a
# line with another number of fields is an error here, so that each line is one row
_PARSE = pacsv.ParseOptions(quote_char=False, double_quote=False, escape_char=False,
                            newlines_in_values=False, ignore_empty_lines=False)

# YYYY-MM-DDTHH:MM:SSZ: where the separators are, and each digit's place in (Y, M, D, h, m, s)
_ISO_COLS = np.arange(20)
_ISO_SEP_AT = np.array([4, 7, 10, 13, 16, 19])
_ISO_SEP = np.frombuffer(b"--T::Z", np.uint8)
_ISO_DIGIT_AT = np.setdiff1d(_ISO_COLS, _ISO_SEP_AT)[:14]
_ISO_PLACES = np.zeros((14, 7))
for _k, (_part, _place) in enumerate([(0, 1000), (0, 100), (0, 10), (0, 1), (1, 10), (1, 1),
                                      (2, 10), (2, 1), (3, 10), (3, 1), (4, 10), (4, 1),
                                      (5, 10), (5, 1)]):
    _ISO_PLACES[_k, _part] = _place
    _ISO_PLACES[_k, 6] += _place * (3600, 60, 1)[_part - 3] if _part >= 3 else 0
_FIRST_YEAR = 1678  # the first and last whole years pandas' nanoseconds hold
_ISO_LOW = np.array([_FIRST_YEAR, 1, 1, 0, 0, 0])
_ISO_HIGH = np.array([2261, 12, 31, 23, 59, 59])
_YEAR_START = np.arange(str(_FIRST_YEAR), "2263", dtype="M8[Y]").astype("M8[D]").astype(np.int64)
_LEAP = np.diff(_YEAR_START) == 366  # [year - 1678]
_YEAR_START = _YEAR_START[:-1]  # days from 1970-01-01 to 1 January of each year
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])  # [month]
_MONTH_START = np.concatenate([[0], np.cumsum(_MONTH_DAYS)[:-1]])  # days before [month]


def _iso_times(cells: np.ndarray) -> np.ndarray | None:
    """int64 ns from ``YYYY-MM-DDTHH:MM:SSZ`` cells, (n, 20) bytes (years 1678-2261), else
    None."""
    if not (cells[:, _ISO_SEP_AT] == _ISO_SEP).all():
        return None
    digits = cells[:, _ISO_DIGIT_AT] - np.uint8(48)  # [n, 14]; a byte below '0' wraps past 9
    if (digits > 9).any():
        return None
    # [n, 14] @ [14, 7] -> year, month, day, hour, minute, second, second of the day
    parts = (digits @ _ISO_PLACES).astype(np.int64)  # small integers: exact in float64
    if ((parts[:, :6] < _ISO_LOW) | (parts[:, :6] > _ISO_HIGH)).any():
        return None
    y, m, d = parts[:, 0] - _FIRST_YEAR, parts[:, 1], parts[:, 2]
    leap = _LEAP[y]
    if (d > _MONTH_DAYS[m] + (leap & (m == 2))).any():
        return None  # 30 February: the general way names it
    days = _YEAR_START[y] + _MONTH_START[m] + (leap & (m > 2)) + d - 1  # since 1970-01-01
    return (days * 86_400 + parts[:, 6]) * 1_000_000_000


class Texts:
    """A text column as pyarrow holds it: the bytes of all its cells one after another
    (``data``) and where each cell starts and ends (``st``, ``en``, (n,))."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        arr = column.combine_chunks()
        _, offsets, data = arr.buffers()
        off = np.frombuffer(offsets, np.int32, len(arr) + 1, arr.offset * 4).astype(np.int64)
        self.data = np.zeros(0, np.uint8) if data is None else np.frombuffer(data, np.uint8)
        self.st, self.en = off[:-1], off[1:]

    def text(self, i: int) -> str:
        return self.data[self.st[i]:self.en[i]].tobytes().decode()

    def cells(self, width: int) -> np.ndarray | None:
        """The cells as (n, width) bytes when every cell has ``width`` > 0 bytes, else None."""
        if width <= 0 or not (self.en - self.st == width).all():
            return None
        return self.data[self.st[0]:self.st[0] + width * len(self.st)].reshape(-1, width)

    def keys(self) -> np.ndarray:
        """Each cell as a byte string of the longest cell's width, (n,): shorter cells padded
        with NUL bytes, so equal keys are equal cells (plain files hold no NUL byte)."""
        lens = self.en - self.st
        width = int(lens.max(initial=0))
        if not width:
            return np.zeros(len(lens), "S1")
        cells = self.cells(width)
        if cells is None:  # cells of several widths: gather them, padded
            place = np.arange(width)
            at = np.minimum(self.st[:, None] + place, len(self.data) - 1)
            cells = np.where(place < lens[:, None], self.data[at], np.uint8(0))
        return np.ascontiguousarray(cells).view(f"S{width}").ravel()


def _ids(ids: Texts) -> tuple[np.ndarray, list[str]] | None:
    """Series codes (in order of first appearance) and names; None for an empty or padded
    id (an error, or a repair: the general way)."""
    keys = ids.keys()
    if (keys == keys[0]).all():  # one series, the common file
        codes, names = np.zeros(len(keys), np.int64), [ids.text(0)]
    else:
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        codes, names = rank[inverse.ravel()], [ids.text(k) for k in first[order].tolist()]
    if any(not v or v != v.strip() for v in names):
        return None
    return codes, names


Columns = tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, list[str], np.ndarray]
Rows = tuple[np.ndarray, np.ndarray, Texts | None]


def plain_header(path: str | Path, raw: bytes, spec: FrameSpec, columns_fix: str
                 ) -> tuple[bytes, list[str], int] | None:
    """The text without a UTF-8 BOM, its header and the offset of its first row, or None
    when the file is not plain; a bad header is a :class:`DataError`, as the general way
    raises it."""
    if len(raw) > FAST_MAX_BYTES or b'"' in raw or b"\r" in raw or b"\x00" in raw or (
            spec.time_format not in (None, "ISO8601")):
        return None
    raw = raw[3:] if raw[:3] == b"\xef\xbb\xbf" else raw
    end = raw.find(b"\n")
    header = [h.strip() for h in (raw if end < 0 else raw[:end]).decode().split(",")]
    if end <= 0 or not "".join(header):
        return None
    _check_header(path, header, end + 1 < len(raw))
    require_columns(path, header, needed(spec), columns_fix)
    return raw, header, end + 1


def needed(spec: FrameSpec) -> list[str]:
    """The columns read: time, values, and the series id if any."""
    return [spec.time_column, *spec.value_columns] + (
        [spec.series_id] if spec.series_id is not None else [])


def plain_rows(raw: bytes, body: int, header: list[str], spec: FrameSpec, n_rows: int
               ) -> Rows | None:
    """The ``n_rows`` rows of ``raw`` from offset ``body`` on (each line one row): times
    (n,), values (k, n) column by column, and the series ids (or None); None for anything
    not plain, or for another number of rows."""
    if len(set(header)) < len(header) or not n_rows:
        return None  # a repeated name: the general way says which columns it reads
    types = {c: pa.float64() for c in spec.value_columns}
    types.update({c: pa.binary() for c in (spec.time_column, spec.series_id) if c is not None})
    text = pa.py_buffer(raw).slice(body)
    try:
        table = pacsv.read_csv(
            text, parse_options=_PARSE,
            read_options=pacsv.ReadOptions(column_names=header, use_threads=False,
                                           block_size=max(text.size, 1 << 16)),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=needed(spec), null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a cell that is not a number, a line with other fields: the general way
    if table.num_rows != n_rows:
        return None
    stamps = Texts(table.column(spec.time_column)).cells(20)
    times = None if stamps is None else _iso_times(stamps)
    if times is None:
        return None
    values = np.empty((len(spec.value_columns), n_rows))  # [k, n]
    for row, c in zip(values, spec.value_columns, strict=True):
        row[:] = table.column(c).to_numpy()
    if not np.isfinite(values).all():
        return None  # nan, inf and 1e999 are the general way's to name or to repair
    ids = None if spec.series_id is None else Texts(table.column(spec.series_id))
    return times, values, ids


def read_plain(path: str | Path, raw: bytes, spec: FrameSpec, columns_fix: str,
               max_rows: int | None) -> Columns | None:
    """Times, values, series codes and names, lines of a plain UTF-8 file, or None."""
    head = plain_header(path, raw, spec, columns_fix)
    if head is None:
        return None
    raw, header, body = head
    n = raw.count(b"\n", body) + (not raw.endswith(b"\n"))
    if max_rows is not None and n > max_rows:
        return None
    rows = plain_rows(raw, body, header, spec, n)
    if rows is None:
        return None
    times, table, ids = rows
    values = dict(zip(spec.value_columns, table, strict=True))
    names = [Path(path).name.split(".")[0]]
    codes = np.zeros(n, np.int64)
    if ids is not None:
        found = _ids(ids)
        if found is None:
            return None
        codes, names = found
    return times, values, codes, names, np.arange(2, n + 2, dtype=np.int64)
