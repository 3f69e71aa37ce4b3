"""Entry points' error reporting: one line per error on the console, the traceback in the
log file (Hydra's ``<run dir>/<name>.log``), or on the console too with ``--verbose``.

Usage in a Hydra entry point::

    if __name__ == "__main__":
        take_verbose_flag()  # before Hydra parses the command line
        main()               # whose body runs inside ``with one_line_errors(log):``
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

VERBOSE_FLAGS = ("--verbose", "-v")
_state = {"verbose": False}


def take_verbose_flag(argv: list[str] | None = None) -> bool:
    """Remove ``--verbose`` / ``-v`` from the command line (Hydra would refuse it); whether it
    was there."""
    argv = sys.argv if argv is None else argv
    found = any(a in VERBOSE_FLAGS for a in argv[1:])
    argv[1:] = [a for a in argv[1:] if a not in VERBOSE_FLAGS]
    _state["verbose"] = _state["verbose"] or found
    return found


def one_line(err: BaseException) -> str:
    """An error as one line: its message for a bad input or argument (``ValueError``), with
    its type for anything else."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, ValueError | FloatingPointError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _file_handlers() -> list[logging.FileHandler]:
    seen, out = set(), []
    for logger in (logging.getLogger(), *logging.Logger.manager.loggerDict.values()):
        for h in getattr(logger, "handlers", []):
            if (isinstance(h, logging.FileHandler) and id(h) not in seen
                    and h.baseFilename != os.devnull):
                seen.add(id(h))
                out.append(h)
    return out


@contextmanager
def one_line_errors(log: logging.Logger, code: int = 1,
                    verbose: bool | None = None) -> Iterator[None]:
    """Turn an exception escaping the block into one logged line and ``SystemExit(code)``;
    the traceback goes to the log files (and the console when verbose)."""
    verbose = _state["verbose"] if verbose is None else verbose
    try:
        yield
    except Exception as err:  # reported, then the process exits
        log.error("%s", one_line(err))
        if verbose:
            log.error("traceback of the error above:", exc_info=True)
        else:
            record = log.makeRecord(log.name, logging.ERROR, __file__, 0,
                                    "traceback of the error above:", (), sys.exc_info())
            files = _file_handlers()
            for h in files:
                h.handle(record)
            where = f"in {files[0].baseFilename}" if files else "with --verbose"
            log.error("(the traceback is %s)", where if files else f"shown {where}")
        raise SystemExit(code) from None


def first_missing(cfg: Mapping, keys: Sequence[str]) -> str | None:
    """The first of ``keys`` a composed entry-point config leaves unset (???, null, "")."""
    from omegaconf import OmegaConf  # called from entry points' main() only

    for key in keys:
        if OmegaConf.is_missing(cfg, key) or cfg[key] in (None, ""):
            return key
    return None


_SETTINGS = {"passed": False}  # check_config's verdict on the command running now


def settings_code() -> int:
    """Exit code of a failed command: 1 once :func:`check_config` passed its settings (a
    run that failed), 2 before (a bad override or setting)."""
    return 1 if _SETTINGS["passed"] else 2


def run_hydra(hydra_main: Callable[[], None],
              failed: Callable[[], int] = lambda: 2) -> int | None:
    """Call a ``@hydra.main`` function: None when it returned, else ``failed()``, the exit
    code of a failure (Hydra exits 1 on a bad override; :func:`one_line_errors` exits too)."""
    _SETTINGS["passed"] = False
    try:
        hydra_main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            return failed()
    return None


def check_config(cfg: Mapping, check: Callable[[dict], None], log: logging.Logger,
                 code: int = 2) -> None:
    """Hand a composed entry-point config, as plain containers, to a settings check
    (:mod:`forecast.settings`); a refusal is one logged line and ``SystemExit(code)``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from forecast.settings import SettingsError

    _SETTINGS["passed"] = False
    try:
        check(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
    except (SettingsError, OmegaConfBaseException) as err:
        log.error("%s", one_line(err))
        raise SystemExit(code) from None
    _SETTINGS["passed"] = True
