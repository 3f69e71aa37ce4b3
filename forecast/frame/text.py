"""Reading a file's text: regular files only, size limits, encodings, rows with line numbers.

:func:`read_text` opens only regular files (a named pipe, a device or a folder is refused
before anything blocks), stops reading past ``max_bytes`` (after decompression), and
decodes UTF-8 (with or without a BOM) and UTF-16 with a byte-order mark.
:func:`read_rows` splits the text into the header and chunks of rows, each row with the
physical line it starts on, so that messages stay right after quoted fields holding
newlines and after blank lines.
"""

from __future__ import annotations

import csv
import difflib
import errno
import io
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecast.frame.schema import DataError, where

CHUNK_ROWS = 65_536
COLUMNS_FIX = "rename the columns or set data.time_column / data.target / data.covariates"


def _too_big(path: str | Path, limit: int, what: str) -> DataError:
    return DataError(f"{path}: {what} more than {limit:,} bytes, the per-file limit; split "
                     "the file, or raise the limit (max_file_mb)")


def _open_regular(path: str | Path) -> int:
    """A read-only descriptor of a regular file; anything else is a :class:`DataError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO must not hang
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CSV file") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError(f"{path}: a symbolic link that loops; point it at a file") from None
        raise DataError(f"{path}: cannot open ({err.strerror})") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise DataError(f"{path}: is {kind}, not a CSV file; only regular files are read")


def read_bytes(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, gunzipped when they are gzip, at most ``max_bytes``."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb", buffering=0) as f:  # unbuffered: one read of the whole file
        if max_bytes is not None and os.fstat(fd).st_size > max_bytes:
            raise _too_big(path, max_bytes, "the file holds")
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    out = bytearray()
    data = raw
    try:
        while data:  # one gzip member after another
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            room = max_bytes - len(out) + 1 if max_bytes is not None else 0
            out += inflate.decompress(data, room)
            if max_bytes is not None and len(out) > max_bytes:
                raise _too_big(path, max_bytes, "the file decompresses to")
            if not inflate.eof:
                raise DataError(f"{path}: damaged gzip file (compressed data ends early)")
            data = inflate.unused_data.lstrip(b"\x00")  # zero padding after a member
    except zlib.error as err:
        raise DataError(f"{path}: damaged gzip file ({err})") from None
    return bytes(out)


def decode(path: str | Path, raw: bytes) -> str:
    """UTF-8 (a BOM is fine) or UTF-16 with a byte-order mark; anything else is refused."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: UTF-16 text (byte-order mark) that does not decode at "
                            f"byte {err.start}; re-save the file as UTF-8") from None
    head = raw[:4096]
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            raise DataError(f"{path}: UTF-16 text without a byte-order mark (every other byte "
                            "is NUL); re-save the file as UTF-8")
        raise DataError(f"{path}: binary data (NUL bytes): not a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: byte 0x{raw[err.start]:02x} is not UTF-8; "
                        "re-save the file as UTF-8") from None


@dataclass
class Rows:
    """Some data rows, column by column: ``columns[j]`` holds field ``j`` of each row."""

    first: int  # the data row number (from 1) of the first row
    lines: np.ndarray  # (n,) physical line each row starts on
    columns: list[list[str]]

    def __len__(self) -> int:
        return len(self.lines)


def _check_header(path: str | Path, header: list[str], has_rows: bool) -> None:
    if len(header) == 1:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in header[0]:
                raise DataError(f"{path}: the header has one column holding '{sep}': the file "
                                f"looks {name}-delimited; save it comma-separated")
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen and name:
            raise DataError(f"{path}: column '{name}' appears twice in the header "
                            f"(positions {seen[name] + 1} and {i + 1}); rename one")
        seen[name] = i
    if not has_rows:
        raise DataError(f"{path}: header only, no data rows")


def _width_error(path: str | Path, row: int, line: int, n: int, width: int) -> DataError:
    return DataError(f"{where(path, row=row, line=line)}: {n} fields where the header has "
                     f"{width}; fix the row's delimiters or quoting")


def _split_plain(path: str | Path, text: str, start: int, width: int,
                 chunk_rows: int) -> Iterator[Rows]:
    """Rows of text without quotes or carriage returns: plain ``str.split``, block by block."""
    row, line0, pos = 1, 2, start  # the header is line 1
    block_chars = max(4096, chunk_rows * max(8, width * 8))
    while pos < len(text):
        end = text.find("\n", min(pos + block_chars, len(text)))
        end = len(text) if end < 0 else end + 1
        lines = text[pos:end].split("\n")
        if lines[-1] == "":
            lines.pop()  # the piece after the block's last newline
        kept = [i for i, s in enumerate(lines) if s]
        body = [lines[i] for i in kept] if len(kept) < len(lines) else lines
        counts = [s.count(",") for s in body]
        if any(c != width - 1 for c in counts):
            i = next(k for k, c in enumerate(counts) if c != width - 1)
            raise _width_error(path, row + i, line0 + kept[i], counts[i] + 1, width)
        if body:
            flat = ",".join(body).split(",")
            yield Rows(row, np.asarray(kept, np.int64) + line0,
                       [flat[j::width] for j in range(width)])
        row += len(body)
        line0 += len(lines)
        pos = end


def _split_csv(path: str | Path, reader: Iterator[list[str]], line_num, width: int,
               chunk_rows: int) -> Iterator[Rows]:
    """Rows from the ``csv`` module (quoted fields, newlines inside them)."""
    row = 1
    last_line = line_num()
    while True:
        rows: list[list[str]] = []
        starts: list[int] = []
        try:
            for r in reader:
                start, last_line = last_line + 1, line_num()
                if not r:
                    continue  # a blank line
                if len(r) != width:
                    raise _width_error(path, row + len(rows), start, len(r), width)
                rows.append(r)
                starts.append(start)
                if len(rows) == chunk_rows:
                    break
        except csv.Error as err:
            raise DataError(f"{path}: line {line_num()}: not a readable CSV ({err})") from None
        if not rows:
            return
        yield Rows(row, np.asarray(starts, np.int64), [list(c) for c in zip(*rows, strict=True)])
        row += len(rows)


def read_rows(path: str | Path, text: str,
              chunk_rows: int = CHUNK_ROWS) -> tuple[list[str], Iterator[Rows]]:
    """The header and the data rows in chunks; blank lines carry nothing."""
    if not text.strip():
        raise DataError(f"{path}: empty file; expected a header line and data rows")
    if '"' in text or "\r" in text:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(r for r in reader if r)
        except csv.Error as err:
            raise DataError(f"{path}: line {reader.line_num}: not a readable CSV ({err})") \
                from None
        header = [h.strip() for h in header]
        chunks = _split_csv(path, reader, lambda: reader.line_num, len(header), chunk_rows)
    else:
        start = len(text) - len(text.lstrip("\n"))
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        header = [h.strip() for h in text[start:end].split(",")]
        # text before the header is blank lines: count them into the line numbers
        body_start = end + 1
        lead = text[:start].count("\n")
        chunks = _shift(_split_plain(path, text, body_start, len(header), chunk_rows), lead)
    first = next(chunks, None)
    _check_header(path, header, first is not None)

    def all_chunks() -> Iterator[Rows]:
        yield first
        yield from chunks

    return header, all_chunks()


def _shift(chunks: Iterator[Rows], lead: int) -> Iterator[Rows]:
    for c in chunks:
        if lead:
            c.lines += lead
        yield c


def require_columns(path: str | Path, header: Sequence[str], columns: Sequence[str],
                    fix: str = COLUMNS_FIX) -> None:
    """Raise naming every required column the header lacks, and what is expected."""
    missing = [c for c in dict.fromkeys(columns) if c not in header]
    if not missing:
        return
    hints = []
    for col in missing:
        near = difflib.get_close_matches(col, [h for h in header if h not in columns], n=1)
        if near:
            hints.append(f"'{col}' -> '{near[0]}'?")
    hint = f"; did you mean {', '.join(hints)}" if hints else ""
    names = ", ".join(f"'{c}'" for c in missing)
    raise DataError(
        f"{path}: column{'s' if len(missing) > 1 else ''} {names} not found; expected columns "
        f"{list(dict.fromkeys(columns))}, the header has {list(header)}{hint}; {fix}"
    )
