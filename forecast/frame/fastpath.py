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
_POW10 = 10.0 ** np.arange(16)
_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _fields(data: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(n, width) start and end offsets of every field of the body, or None when a line is
    blank or has another number of fields."""
    nl = np.flatnonzero(data == 10)
    if nl.size == 0 or nl[-1] != len(data) - 1:
        return None  # the caller appends the last newline
    starts, ends = nl[:-1] + 1, nl[1:]
    if (ends == starts).any():
        return None
    commas = np.flatnonzero(data == 44)
    commas = commas[commas > nl[0]]
    if commas.size != (width - 1) * len(starts):
        return None
    cm = commas.reshape(len(starts), width - 1)  # [n, width - 1]
    if width > 1 and ((cm[:, 0] < starts) | (cm[:, -1] > ends)).any():
        return None  # commas not spread one row's worth per line
    return np.column_stack([starts, cm + 1]), np.column_stack([cm, ends])


def _gather(data: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray:
    """The bytes of fields ``st[i]:en[i]`` each followed by ',' (one array)."""
    lens = en - st + 1  # with the delimiter after the field
    idx = np.repeat(st - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(
        lens.sum())
    out = data[idx]
    out[np.cumsum(lens) - 1] = 44
    return out


def _decimals(data: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray | None:
    """Floats from plain decimal fields (``-12.5``, ``3``, ``.5``: at most 15 digits, no
    exponent), else None. Exact: the digits make an integer below 2**53 and a power of ten
    up to 1e15, both exact in float64, so their quotient is the correctly rounded value,
    the same float as Python's ``float(text)``."""
    lens = en - st
    if (lens <= 0).any():
        return None  # an empty cell: a missing value, read the general way
    c = _gather(data, st, en)  # each field followed by ','
    offs = np.concatenate([[0], np.cumsum(lens + 1)[:-1]])  # where each field starts in c
    digit = (c >= 48) & (c <= 57)
    dot = c == 46
    sign = (c == 45) | (c == 43)
    edge = np.zeros(len(c), bool)
    edge[offs + lens] = True  # the delimiters
    if not (digit | dot | sign | edge).all():
        return None
    edge[offs + lens] = False
    edge[offs] = True  # now: field starts, the only place for a sign
    if (sign & ~edge).any() or (np.add.reduceat(dot, offs) > 1).any():
        return None
    cum = np.cumsum(digit, dtype=np.int32)  # digits up to and including each byte
    n_digits = np.add.reduceat(digit, offs, dtype=np.int32)
    if ((n_digits == 0) | (n_digits > 15)).any():
        return None
    before = cum[offs] - digit[offs]  # digits before each field
    place = np.repeat(n_digits + before, lens + 1) - cum  # power of ten of each digit
    mantissa = np.add.reduceat(np.where(digit, (c - 48) * _POW10[place.clip(0, 15)], 0.0),
                               offs)
    frac = np.zeros(len(st), np.int32)
    at = np.flatnonzero(dot)
    if at.size:
        field = np.searchsorted(offs, at, side="right") - 1
        frac[field] = n_digits[field] - (cum[at] - before[field])
    value = mantissa / _POW10[frac]
    return np.where(c[offs] == 45, -value, value) if sign.any() else value


def _iso_times(data: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray | None:
    """int64 ns from ``YYYY-MM-DDTHH:MM:SSZ`` fields (years 1678-2261), else None."""
    if not (en - st == 20).all():
        return None
    b = data[st[:, None] + np.arange(20)].astype(np.int64)  # [n, 20]
    seps = {4: 45, 7: 45, 10: 84, 13: 58, 16: 58, 19: 90}  # - - T : : Z
    if any((b[:, i] != c).any() for i, c in seps.items()):
        return None
    digits = b[:, [i for i in range(19) if i not in seps]] - 48  # [n, 14]
    if ((digits < 0) | (digits > 9)).any():
        return None
    num = digits * np.array([1000, 100, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1])
    y, m, d = num[:, 0:4].sum(1), num[:, 4:6].sum(1), num[:, 6:8].sum(1)
    hh, mm, ss = num[:, 8:10].sum(1), num[:, 10:12].sum(1), num[:, 12:14].sum(1)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    if ((y < 1678) | (y > 2261) | (m < 1) | (m > 12) | (hh > 23) | (mm > 59) | (ss > 59)).any():
        return None
    if ((d < 1) | (d > _DAYS[m - 1] + (leap & (m == 2)))).any():
        return None
    yy = y - (m <= 2)  # days from 1970-01-01 (proleptic Gregorian)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 86400 + hh * 3600 + mm * 60 + ss) * 10**9).astype(np.int64)


def _ids(raw: bytes, data: np.ndarray, st: np.ndarray, en: np.ndarray
         ) -> tuple[np.ndarray, list[str]] | None:
    """Series codes (in order of first appearance) and names; None for an empty or padded
    id (an error, or a repair: the general way)."""
    lens = en - st
    if (lens == lens[0]).all() and lens[0] > 0:  # ids of one width: compare them as arrays
        keys = data[st[:, None] + np.arange(lens[0])].view(f"S{lens[0]}").ravel()
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        codes, names = rank[inverse.ravel()], [uniq[k].decode() for k in order]
    else:
        ids = [raw[a:b].decode() for a, b in zip(st.tolist(), en.tolist(), strict=True)]
        seen: dict[str, int] = {}
        codes = np.fromiter((seen.setdefault(v, len(seen)) for v in ids), np.int64, len(ids))
        names = list(seen)
    if any(not v or v != v.strip() for v in names):
        return None
    return codes, names


Columns = tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, list[str], np.ndarray]


def read_plain(path: str | Path, raw: bytes, spec: FrameSpec, columns_fix: str,
               max_rows: int | None) -> Columns | None:
    """Times, values, series codes and names, lines of a plain UTF-8 file, or None."""
    if len(raw) > FAST_MAX_BYTES or b'"' in raw or b"\r" in raw or b"\x00" in raw or (
            spec.time_format not in (None, "ISO8601")):
        return None
    raw = raw[3:] if raw[:3] == b"\xef\xbb\xbf" else raw
    if not raw.endswith(b"\n"):
        raw += b"\n"
    data = np.frombuffer(raw, np.uint8)
    end = raw.find(b"\n")
    header = [h.strip() for h in raw[:end].decode().split(",")]
    if end == 0 or not "".join(header):
        return None
    _check_header(path, header, end + 1 < len(raw))
    needed = [spec.time_column, *spec.value_columns]
    if spec.series_id is not None:
        needed.append(spec.series_id)
    require_columns(path, header, needed, columns_fix)
    found = _fields(data, len(header))
    if found is None:
        return None
    st, en = found
    n = len(st)
    if max_rows is not None and n > max_rows:
        return None
    at = {name: header.index(name) for name in needed}
    times = _iso_times(data, st[:, at[spec.time_column]], en[:, at[spec.time_column]])
    if times is None:
        return None
    cols = [at[c] for c in spec.value_columns]
    table = _decimals(data, st[:, cols].ravel(), en[:, cols].ravel())  # [n * k] row-major
    if table is None:
        return None
    table = table.reshape(n, len(cols))
    values = {c: table[:, k].copy() for k, c in enumerate(spec.value_columns)}
    names = [Path(path).name.split(".")[0]]
    codes = np.zeros(n, np.int64)
    if spec.series_id is not None:
        found = _ids(raw, data, st[:, at[spec.series_id]], en[:, at[spec.series_id]])
        if found is None:
            return None
        codes, names = found
    return times, values, codes, names, np.arange(2, n + 2, dtype=np.int64)
