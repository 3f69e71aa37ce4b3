"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

Temporary files are named ``.<name>.cf-tmp-<pid>`` so that a later run can tell a stale
one (its process is gone, e.g. after ``kill -9``) from one being written right now, and
remove it with :func:`sweep_stale`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

TMP_MARK = ".cf-tmp-"
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.cf-tmp-(?P<pid>\d+)$")


def temp_name(path: str | os.PathLike) -> str:
    """The temporary name of ``path`` for this process: ``.<name>.cf-tmp-<pid>``."""
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, f".{name}{TMP_MARK}{os.getpid()}")


def temp_path(path: Path) -> Path:
    return Path(temp_name(path))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_stale(folder: str | Path) -> list[Path]:
    """Remove temporary files left in ``folder`` by processes that no longer run."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("%s: removed %d stale temporary files of interrupted runs", folder, len(removed))
    return removed


def sync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (the renames into it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", fsync: bool = True,
                newline: str | None = "") -> Iterator[IO]:
    """A file to write ``path`` through: renamed into place when the block ends without an
    error, removed otherwise. ``fsync=False`` leaves flushing to the OS (a killed process
    still leaves the old or the whole new file; a power cut may not: see :func:`sync_dir`)."""
    path = Path(path)
    tmp = temp_path(path)
    binary = "b" in mode
    # 0o666 less the umask: the mode of any new file (mkstemp would make it 0o600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    f = os.fdopen(fd, mode, **({} if binary else {"encoding": "utf-8", "newline": newline}))
    try:
        with f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_with(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to the temporary name of ``path`` and rename it into place: the few
    system calls :func:`atomic_open` makes, without a file object (for many small files)."""
    tmp = temp_name(path)  # a string: this runs once per output file
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` so that ``path`` holds either its old content or all of the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_with(path, data, fsync)
    return path


def atomic_write_text(path: str | Path, text: str, fsync: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode(), fsync=fsync)


def write_json(path: str | Path, obj: object) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_with(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Let ``write(tmp)`` create the temporary file beside ``path``, then rename it into
    place (for writers that need a file name, such as NetCDF)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
