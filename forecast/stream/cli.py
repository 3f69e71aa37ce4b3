"""``python -m forecast.stream checkpoint=PATH input=FILE output=FILE [follow=true|false]``.

Reads the CSV from its start; with ``follow=true`` (the default) keeps reading rows as
another process appends them (complete lines only), until interrupted. Each new
observation's H forecasts are appended to ``output`` (long format, as
``forecast.predict``: series, ``cutoff``, ``timestamp``, ``step``, ``forecast``) and
flushed at once. After each batch of rows the state (read offset, output length,
every series' repair and stream state) is saved atomically to ``state`` (default
``OUTPUT.state``); a restart resumes from it, first cutting the output back to the
length saved with it, so a crash between the two writes repeats no line. Without a
saved state the command re-warms from the file's start and writes the output anew.
"""

from __future__ import annotations

import csv
import io
import logging
import signal
import sys
import time
from pathlib import Path

import torch

from forecast.files import atomic_write_bytes
from forecast.frame import DataError
from forecast.module import CheckpointError
from forecast.predict import load_model
from forecast.stream import check_streamable
from forecast.stream.follow import Follower

log = logging.getLogger("forecast.stream")
CHUNK = 1 << 22  # bytes read per batch of rows
STATE_VERSION = 1


def _rows(data: bytes, first_line: int) -> list[tuple[int, list[str]]]:
    """Complete lines -> (row number, fields); blank lines skipped. Row r is line r + 1."""
    out = []
    for i, line in enumerate(data.split(b"\n")[:-1]):
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        if text.strip():
            out.append((first_line + i - 1, next(csv.reader(io.StringIO(text)))))
    return out


class Stream:
    """One input file followed into one output file, with its saved state."""

    def __init__(self, checkpoint: str | Path, input: str | Path, output: str | Path,
                 state: str | Path | None = None) -> None:
        self.model, spec = load_model(checkpoint)
        check_streamable(self.model)
        self.input, self.output = Path(input), Path(output)
        self.state_path = Path(state) if state else Path(f"{output}.state")
        self.follower = Follower(self.model, spec, self.input)
        self.offset, self.line = 0, 1  # bytes and lines of the input consumed

    def open(self) -> None:
        """Resume from the saved state, or start the output anew."""
        if not self.input.is_file():
            raise DataError(f"{self.input}: file not found")
        if self.state_path.is_file() and self.output.is_file():
            saved = torch.load(self.state_path, weights_only=True)
            if (saved.get("version") == STATE_VERSION and saved["input"] == str(self.input)
                    and self.output.stat().st_size >= saved["output_bytes"]
                    and self.input.stat().st_size >= saved["offset"]):
                with self.output.open("r+b") as f:
                    f.truncate(saved["output_bytes"])
                self.offset, self.line = saved["offset"], saved["line"]
                self.follower.set_header(saved["header"])
                self.follower.load_dict(saved["follower"])
                log.info("%s: resumed at line %d from %s", self.input, self.line,
                         self.state_path)
                return
            log.warning("%s does not match %s or %s: re-warming from the start",
                        self.state_path, self.input, self.output)
        self.output.parent.mkdir(parents=True, exist_ok=True)

    def poll(self) -> int:
        """Process the complete lines appended since the last call; the rows read."""
        with self.input.open("rb") as f:
            size = f.seek(0, 2)
            if size < self.offset:
                raise DataError(f"{self.input}: the file shrank from {self.offset} to {size} "
                                "bytes (replaced or truncated); restart without the saved state")
            f.seek(self.offset)
            data = f.read(CHUNK)
        end = data.rfind(b"\n") + 1
        if end == 0:
            return 0
        data = data[:end]
        lines = data.count(b"\n")
        if not self.follower.header:
            first, _, data = data.partition(b"\n")
            header = next(csv.reader([first.decode("utf-8-sig", errors="replace").strip()]))
            self.follower.set_header([h.strip() for h in header])
            with self.output.open("w") as out:  # a fresh start writes the output anew
                out.write(self.follower.header_line())
            rows = _rows(data, self.line + 1)
        else:
            rows = _rows(data, self.line)
        text = "".join(self.follower.feed(rows))
        with self.output.open("a") as out:
            out.write(text)
            out.flush()
        self.offset += end
        self.line += lines
        self._save()
        return len(rows)

    def _save(self) -> None:
        buf = io.BytesIO()
        torch.save({"version": STATE_VERSION, "input": str(self.input), "offset": self.offset,
                    "line": self.line, "output_bytes": self.output.stat().st_size,
                    "header": self.follower.header, "follower": self.follower.to_dict()}, buf)
        atomic_write_bytes(self.state_path, buf.getvalue())


def run(checkpoint: str | Path, input: str | Path, output: str | Path, follow: bool = True,
        state: str | Path | None = None, poll_seconds: float = 0.5) -> int:
    """Stream forecasts for ``input`` into ``output``; the exit code (0 ok, 2 refused)."""
    try:
        stream = Stream(checkpoint, input, output, state)
        stream.open()
        while True:
            n = stream.poll()
            if n == 0 and not follow:
                break
            if n == 0:
                time.sleep(poll_seconds)
        if not stream.follower.header:
            raise DataError(f"{input}: empty file; expected a header line and data rows")
    except (CheckpointError, DataError, ValueError) as err:
        log.error("%s", str(err).splitlines()[0])
        return 2
    except KeyboardInterrupt:
        log.info("stopped")
    log.info("%s: %d rows skipped as bad; forecasts in %s", input, stream.follower.bad_rows,
             output)
    return 0


def main() -> int:
    """The Hydra shell around :func:`run`."""
    import hydra  # the entry point alone needs Hydra
    from omegaconf import DictConfig

    from forecast.cli import first_missing, run_hydra

    result = {"code": 2}

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    configs = str(Path(__file__).resolve().parents[2] / "configs")

    @hydra.main(version_base="1.3", config_path=configs, config_name="stream")
    def _main(cfg: DictConfig) -> None:
        key = first_missing(cfg, ("checkpoint", "input", "output"))
        if key is not None:
            log.error("%s is required: python -m forecast.stream checkpoint=PATH input=FILE "
                      "output=FILE [follow=true|false]", key)
            return
        result["code"] = run(cfg.checkpoint, cfg.input, cfg.output, bool(cfg.follow),
                             cfg.state, float(cfg.poll_seconds))

    signal.signal(signal.SIGTERM, _stop)  # a stop request ends the loop cleanly
    failed = run_hydra(_main)
    return result["code"] if failed is None else failed

if __name__ == "__main__":
    sys.exit(main())
