"""Arguments checked before any work: one line each, and exit code 2 (nothing ran)."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forecast.frame import ReadLimits
from forecast.predict.outputs import previous_outputs

MODES = ("forecast", "backtest")


class ArgumentError(ValueError):
    """A bad argument: the run does nothing (exit code 2)."""


@dataclass(frozen=True)
class Options:
    """A run's checked options."""

    mode: str = "forecast"
    batch_size: int = 64
    max_file_mb: float = 256.0
    max_rows: int = 2_000_000
    fsync_each: bool = False

    @property
    def limits(self) -> ReadLimits:
        return ReadLimits(int(self.max_file_mb * 2**20), self.max_rows)


def _positive(name: str, value: object, integer: bool = True) -> int | float:
    if isinstance(value, bool):
        raise ArgumentError(f"{name}={value}: expected a positive number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ArgumentError(f"{name}={value}: not a number; expected a positive "
                            f"{'whole ' if integer else ''}number") from None
    if not number > 0 or number == float("inf") or (integer and number != int(number)):
        raise ArgumentError(f"{name}={value}: expected a positive {'whole ' if integer else ''}"
                            "number")
    return int(number) if integer else number


def check_options(mode: object = "forecast", batch_size: object = 64,
                  max_file_mb: object = 256, max_rows: object = 2_000_000,
                  fsync_each: object = False) -> Options:
    """:class:`Options` from raw values, or an :class:`ArgumentError` naming the bad one."""
    if mode not in MODES:
        raise ArgumentError(f"mode={mode}: not a mode; use mode=forecast or mode=backtest")
    if not isinstance(fsync_each, bool):
        raise ArgumentError(f"fsync_each={fsync_each}: expected true or false")
    return Options(str(mode), _positive("batch_size", batch_size),
                   _positive("max_file_mb", max_file_mb, integer=False),
                   _positive("max_rows", max_rows), fsync_each)


def check_output_dir(output_dir: str | Path) -> Path:
    """The output folder, created if needed, or an :class:`ArgumentError`."""
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"output_dir={path}: is a file, not a folder; name a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArgumentError(f"output_dir={path}: cannot create the folder ({err.strerror}); "
                            "name a folder you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ArgumentError(f"output_dir={path}: cannot write to the folder; name a folder "
                            "you can write to")
    return path


def _in_folder(folder: Path) -> list[Path]:
    """A folder's ``*.csv`` and ``*.csv.gz``, without outputs of earlier runs."""
    skip = previous_outputs(folder)
    return sorted(f for pat in ("*.csv", "*.csv.gz") for f in folder.glob(pat)
                  if not f.name.endswith(".forecast.csv") and f.name not in skip)


def resolve_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by paths, globs and folders, each once; an item that names nothing is an
    :class:`ArgumentError`. What a file is (a pipe, a loop of links) is checked when it is read,
    as one failed row of the summary."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    if not items:
        raise ArgumentError("inputs: empty; set inputs=FILE, a folder, a glob or a list")
    files: list[Path] = []
    for item in items:
        text = str(item)
        try:
            p = Path(text)
            if p.is_dir():
                found = _in_folder(p)
            elif glob.has_magic(text):
                found = []
                for f in sorted(glob.glob(text, recursive=True)):  # a folder fails when read
                    if Path(f).name not in previous_outputs(Path(f).parent):
                        found.append(Path(f))
            else:
                found = [p] if os.path.lexists(p) else []
        except (OSError, ValueError) as err:  # a NUL byte, a name too long, ...
            raise ArgumentError(f"inputs: '{text}' is not a usable path ({err})") from None
        if not found:
            raise ArgumentError(f"inputs: '{text}' names no file (no CSV file matches); check "
                                "the path or glob")
        files += found
    seen: dict[str, Path] = {}
    for f in files:
        seen.setdefault(os.path.realpath(f), f)  # realpath: links to one file count once
    return list(seen.values())
