"""Batch forecasts over CSV files, file by file and series by series, never one bad file
stopping the others, in bounded memory.

Library: :func:`forecast_files` (plain arguments, no Hydra) and :func:`run` (check the
arguments, load the checkpoint, forecast, write ``summary.csv``, return the exit code).
Entry point: ``python -m forecast.predict checkpoint=PATH inputs=GLOB_OR_DIR_OR_LIST
output_dir=DIR [mode=forecast|backtest] [--verbose]`` (Hydra, ``configs/predict.yaml``).

- ``mode=forecast``: one origin per series, its last timestamp (the cutoff); the H steps
  after it are forecast from the R steps (receptive field) up to it.
- ``mode=backtest``: every origin of the file with R steps of history and H observed
  targets in one segment; forecasts with the actuals beside them, and ``metrics.csv``.

The jobs, one module each: :mod:`~forecast.predict.args` (arguments, inputs),
:mod:`~forecast.predict.checkpoint` (model, stored spec, device),
:mod:`~forecast.predict.checks` (one file against the spec),
:mod:`~forecast.predict.batching` (windows through the model, chunk by chunk),
:mod:`~forecast.predict.outputs` (output names and folder, streamed CSV),
:mod:`~forecast.predict.summary` (results, scores, ``summary.csv``),
:mod:`~forecast.predict.runner` (the batch itself),
:mod:`~forecast.predict.command` (the command: arguments, signals, summary, exit code).
"""

from __future__ import annotations

from forecast.predict.args import MODES, ArgumentError, resolve_inputs
from forecast.predict.checkpoint import load_model, model_spec
from forecast.predict.command import run
from forecast.predict.outputs import output_name
from forecast.predict.runner import forecast_files
from forecast.predict.summary import (
    ALL_SERIES,
    EXIT_NOTHING_RAN,
    EXIT_OK,
    EXIT_SOME_FAILED,
    SUMMARY_COLUMNS,
    Result,
    write_summary,
)

__all__ = ["ALL_SERIES", "EXIT_NOTHING_RAN", "EXIT_OK", "EXIT_SOME_FAILED", "MODES",
           "SUMMARY_COLUMNS", "ArgumentError", "Result", "forecast_files", "load_model",
           "model_spec", "output_name", "resolve_inputs", "run", "write_summary"]
