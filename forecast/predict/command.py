"""The command: arguments checked, checkpoint loaded, the batch run under Ctrl-C and SIGTERM,
``summary.csv`` written whatever happens, and the exit code."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from forecast.files import sweep_stale
from forecast.module import CheckpointError, read_checkpoint
from forecast.predict.args import (
    ArgumentError,
    Options,
    check_options,
    check_output_dir,
    resolve_inputs,
)
from forecast.predict.checkpoint import check_device, load_model
from forecast.predict.outputs import plan_output_dir
from forecast.predict.runner import forecast_files
from forecast.predict.summary import (
    EXIT_NOTHING_RAN,
    Result,
    exit_code,
    failed,
    log_summary,
    write_summary,
)

log = logging.getLogger("forecast.predict")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, a scheduler, ``docker stop``), raised where the work
    is, as Ctrl-C raises :class:`KeyboardInterrupt`, so the summary is still written."""

    signum = int(signal.SIGTERM)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; the previous
    handler comes back after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(checkpoint: str | Path, inputs: str | Path | Sequence[str | Path],
        output_dir: str | Path, mode: str = "forecast", batch_size: object = 64,
        device: str = "cpu", max_file_mb: object = 256, max_rows: object = 2_000_000,
        fsync_each: object = False) -> int:
    """Check the arguments, load, forecast, summarise; the exit code (0 all ok, 1 some
    failed, 2 nothing ran: a bad argument, checkpoint or input path)."""
    from forecast.fields.module import is_field_checkpoint, load_field_checkpoint

    try:  # read once; a bad file is reported below, in the order the arguments are checked
        ckpt = read_checkpoint(checkpoint)
    except CheckpointError:
        ckpt = None
    if ckpt is not None and is_field_checkpoint(ckpt["hyper_parameters"]):
        from forecast.fields.predict import run_fields  # NetCDF maps in, CF NetCDF out

        return run_fields(load_field_checkpoint(checkpoint, device, ckpt), inputs, output_dir)
    try:
        opts: Options = check_options(mode, batch_size, max_file_mb, max_rows, fsync_each)
        dev = check_device(device)
        out = check_output_dir(output_dir)
        paths = resolve_inputs(inputs)
        model, _ = load_model(checkpoint, str(dev), ckpt)
    except (ArgumentError, ValueError, CheckpointError) as err:
        log.error("%s", err)
        return EXIT_NOTHING_RAN
    folder = plan_output_dir(out, paths, opts.mode)
    sweep_stale(folder)
    log.info("forecasting %d files with %s on %s (receptive field %d, horizon %d), mode=%s",
             len(paths), checkpoint, dev, model.receptive_field, model.hparams.horizon,
             opts.mode)
    done: dict[int, list[Result]] = {}
    stopped: BaseException | None = None
    try:
        with terminate_as_interrupt(), torch.inference_mode():
            forecast_files(model, paths, folder, opts.mode, opts.batch_size,
                           limits=opts.limits, fsync_each=opts.fsync_each, done=done)
    except BaseException as err:  # the summary is written all the same, then it goes on
        stopped = err
    results = [r for i in sorted(done) for r in done[i]]
    if stopped is not None:
        why = type(stopped).__name__ + (f": {stopped}" if str(stopped) else "")
        results += [failed(p, f"{p}: not forecast: the run stopped early ({why})")
                    for i, p in enumerate(paths) if i not in done]
    log_summary(results)
    write_summary(results, folder, opts.mode)
    log.info("outputs in %s", folder.resolve())
    if stopped is not None:
        raise stopped
    return exit_code(results)
