"""The common file, read with array operations on its bytes instead of one Python string per
field: no quotes, no carriage returns, no blank lines, plain numbers, ISO timestamps.

:func:`read_plain` returns ``None`` at the first thing it does not handle, and the caller
reads the file the general way (:mod:`forecast.frame.text`, :mod:`forecast.frame.values`),
which finds and names the problem exactly (file, column, row, fix). So the fast path never
decides what is an error: it only skips work where there is none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forecast.frame.schema import FrameSpec
from forecast.frame.text import _check_header, require_columns

FAST_MAX_BYTES = 8 * 2**20  # bigger files are read chunk by chunk, in bounded memory
MAX_NUMBER_CHARS = 40  # a longer cell is read the general way
_POW10 = 10.0 ** np.arange(16)
_PLACES = np.arange(MAX_NUMBER_CHARS)[:, None]
_NUMBER_BYTE = np.zeros(256, bool)  # digits, '.', '+', '-', and the NUL that pads a cell
_NUMBER_BYTE[[*b"0123456789.+-", 0]] = True
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


def _fields(data: np.ndarray, body: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(n, width) start and end offsets of every field of the rows from offset ``body`` on,
    or None when a line is blank or has another number of fields."""
    seps = np.flatnonzero((data[body:] == 44) | (data[body:] == 10))  # ',' or newline
    if seps.size == 0 or seps.size % width:
        return None
    seps += body
    ends = seps.reshape(-1, width)  # [n, width]
    row = np.full(width, 44, np.uint8)
    row[-1] = 10
    if not (data[ends] == row).all():
        return None  # each line must hold width - 1 commas, then its newline
    starts = np.empty_like(seps)
    starts[0] = body
    starts[1:] = seps[:-1] + 1
    starts = starts.reshape(-1, width)
    if width == 1 and (starts[:, 0] == ends[:, 0]).any():
        return None  # a blank line
    return starts, ends


def _cells(data: np.ndarray, st: np.ndarray, en: np.ndarray, width: int) -> np.ndarray:
    """The bytes of fields ``st[i]:en[i]``, padded with NUL (the last byte of ``data``), one
    column per field: (width, n)."""
    place = np.arange(width)[:, None]
    return data[np.where(place < (en - st), st + place, len(data) - 1)]


def _decimals(data: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray | None:
    """Floats from plain decimal fields (digits, at most one '.', a leading sign), else None.

    The digits make an integer mantissa (Horner's rule across the fields, one byte position
    at a time) and the digits after the point count the power of ten. Up to 15 digits both
    are exact in float64, so their quotient is the correctly rounded value: Python's
    ``float(text)``, as the general reader has it, bit for bit. Longer fields are cast as
    byte strings, which rounds the same way."""
    lens = en - st
    width = int(lens.max())
    if width > MAX_NUMBER_CHARS or not lens.all():
        return None  # an empty cell is a missing value: the general way
    cells = _cells(data, st, en, width)  # [width, n]
    if not _NUMBER_BYTE.take(cells).all():
        return None  # exponents, NA tokens, spaces, text: the general way
    digit = cells - np.uint8(48)  # a byte below '0' wraps past 9
    is_digit = digit <= 9
    dot = cells == 46
    n_digits, n_dots = is_digit.sum(0), dot.sum(0)
    if n_dots.max() > 1 or not n_digits.all() or (
            (cells[1:] == 43) | (cells[1:] == 45)).any():
        return None  # '1.2.3', '-', '.', '1-2': the general way names them
    if n_digits.max() > 15:
        return np.ascontiguousarray(cells.T).view(f"S{width}").ravel().astype(np.float64)
    mantissa = np.zeros(cells.shape[1], np.int64)
    for j in range(width):  # in place: no new array per byte position
        np.multiply(mantissa, 10, out=mantissa, where=is_digit[j])
        np.add(mantissa, digit[j], out=mantissa, where=is_digit[j])
    # only digits follow the point: the fraction's digits are the bytes after it
    frac = np.where(n_dots, lens - 1 - (dot * _PLACES[:width]).sum(0), 0)
    value = mantissa / _POW10[frac]
    return np.where(cells[0] == 45, -value, value)


def _iso_times(data: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray | None:
    """int64 ns from ``YYYY-MM-DDTHH:MM:SSZ`` fields (years 1678-2261), else None."""
    if not (en - st == 20).all():
        return None
    b = data[st[:, None] + _ISO_COLS]  # [n, 20]
    if not (b[:, _ISO_SEP_AT] == _ISO_SEP).all():
        return None
    digits = b[:, _ISO_DIGIT_AT] - np.uint8(48)  # [n, 14]; a byte below '0' wraps past 9
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


def _ids(raw: bytes, data: np.ndarray, st: np.ndarray, en: np.ndarray
         ) -> tuple[np.ndarray, list[str]] | None:
    """Series codes (in order of first appearance) and names; None for an empty or padded
    id (an error, or a repair: the general way)."""
    lens = en - st
    width = int(lens[0])
    if width > 0 and (lens == width).all():  # ids of one width: compare them as arrays
        keys = data[st[:, None] + np.arange(width)].view(f"S{width}").ravel()
        if (keys == keys[0]).all():  # one series, the common file
            codes, names = np.zeros(len(keys), np.int64), [raw[st[0]:en[0]].decode()]
        else:
            uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            order = np.argsort(first)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            codes, names = rank[inverse.ravel()], [raw[st[k]:en[k]].decode()
                                                   for k in first[order].tolist()]
    else:
        ids = [raw[a:b].decode() for a, b in zip(st.tolist(), en.tolist(), strict=True)]
        seen: dict[str, int] = {}
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in ids), np.int64, len(ids))
        names = list(seen)
    if any(not v or v != v.strip() for v in names):
        return None
    return codes, names


Columns = tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, list[str], np.ndarray]
Rows = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


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


def plain_rows(data: np.ndarray, body: int, header: list[str], spec: FrameSpec) -> Rows | None:
    """The rows from offset ``body`` of ``data`` (newline-terminated, then a NUL): times
    (n,), values (k, n) column by column, and the start and end offsets of the series ids
    (or None); None for anything not plain."""
    found = _fields(data, body, len(header))
    if found is None:
        return None
    st, en = found
    at = {name: header.index(name) for name in needed(spec)}
    times = _iso_times(data, st[:, at[spec.time_column]], en[:, at[spec.time_column]])
    if times is None:
        return None
    table = np.empty((len(spec.value_columns), len(st)))  # [k, n]
    for row, c in zip(table, spec.value_columns, strict=True):  # a column at a time: the
        values = _decimals(data, st[:, at[c]], en[:, at[c]])  # work stays in the CPU cache
        if values is None:
            return None
        row[:] = values
    if spec.series_id is None:
        return times, table, None, None
    return times, table, st[:, at[spec.series_id]], en[:, at[spec.series_id]]


def read_plain(path: str | Path, raw: bytes, spec: FrameSpec, columns_fix: str,
               max_rows: int | None) -> Columns | None:
    """Times, values, series codes and names, lines of a plain UTF-8 file, or None."""
    head = plain_header(path, raw, spec, columns_fix)
    if head is None:
        return None
    raw, header, body = head
    # the last row's newline, and a NUL after everything that pads short cells
    data = np.frombuffer(raw + (b"\x00" if raw.endswith(b"\n") else b"\n\x00"), np.uint8)
    rows = plain_rows(data, body, header, spec)
    if rows is None:
        return None
    times, table, id_st, id_en = rows
    n = len(times)
    if max_rows is not None and n > max_rows:
        return None
    values = dict(zip(spec.value_columns, table, strict=True))
    names = [Path(path).name.split(".")[0]]
    codes = np.zeros(n, np.int64)
    if id_st is not None:
        found = _ids(raw, data, id_st, id_en)
        if found is None:
            return None
        codes, names = found
    return times, values, codes, names, np.arange(2, n + 2, dtype=np.int64)
