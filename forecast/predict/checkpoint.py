"""The checkpoint side of a run: the model on its device, and its stored data spec, checked
so that a damaged spec is blamed on the checkpoint and never on an input file."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from forecast.features import CYCLES, DataSpec
from forecast.frame import DataError
from forecast.frame.values import parse_freq
from forecast.module import CheckpointError, ForecastModule, load_checkpoint

log = logging.getLogger("forecast.predict")

NON_CAUSAL_WARNING = (
    "the checkpoint is not causal (causal=False): each of its outputs reads steps after its "
    "own position, which do not exist at a forecast's cutoff (zeros stand in for them), so it "
    "cannot forecast honestly; use a model=causal checkpoint")


def load_model(path: str | Path, device: str = "cpu",
               ckpt: dict | None = None) -> tuple[ForecastModule, DataSpec]:
    """The checkpoint's model in eval mode on ``device`` and its data spec, or a
    :class:`CheckpointError` (``ckpt``: the file's contents, when already read)."""
    try:
        model = load_checkpoint(path, map_location="cpu", ckpt=ckpt)
    except CheckpointError:
        raise
    except Exception as err:  # torch's safe unpickler fails on junk with assorted errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: "
                              f"{first}); pass a .ckpt written by train.py") from None
    spec = model_spec(model, path)
    return model.to(device).eval(), spec


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _numbers(value: object, n: int) -> bool:
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in value))


def _spec_problem(raw: dict, spec: DataSpec, n_features: int) -> str | None:
    """What is wrong with a stored spec, or None."""
    if not (isinstance(spec.time_column, str) and spec.time_column
            and isinstance(spec.target, str) and spec.target):
        return "time_column and target must be names"
    if not _strings(spec.covariates) or (spec.series_id is not None
                                         and not isinstance(spec.series_id, str)):
        return "covariates must be a list of names, series_id a name or null"
    try:
        parse_freq("", str(spec.freq))
    except DataError:
        return f"freq {spec.freq!r} is not a frequency"
    if not isinstance(spec.max_gap, int) or isinstance(spec.max_gap, bool) or spec.max_gap < 0:
        return f"max_gap {spec.max_gap!r} is not a count of steps"
    if spec.time_format is not None and not isinstance(spec.time_format, str):
        return f"time_format {spec.time_format!r} is not a format"
    n = len(spec.value_columns)
    if not _numbers(spec.mean, n) or not _numbers(spec.std, n) or any(s <= 0 for s in spec.std):
        return f"the scaler statistics (mean, std) are not {n} finite numbers with std > 0"
    if not isinstance(spec.bounds, dict) or any(
            k not in spec.value_columns or not _numbers(v, 2) or v[0] > v[1]
            for k, v in spec.bounds.items()):
        return "bounds must map value columns to [low, high]"
    if not isinstance(spec.calendar, list) or any(c not in CYCLES for c in spec.calendar):
        return f"calendar {spec.calendar!r} names unknown cycles (known: {list(CYCLES)})"
    if not isinstance(spec.angular, list) or any(c not in spec.covariates for c in spec.angular):
        return f"angular {spec.angular!r} must name covariates"
    if spec.n_features != n_features:
        return f"it makes {spec.n_features} features, the model reads {n_features}"
    return None


def model_spec(model: ForecastModule, path: str | Path = "model") -> DataSpec:
    """The data spec stored in the checkpoint, checked, or a :class:`CheckpointError`."""
    raw = model.hparams.get("data_spec")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: the checkpoint carries no data spec (hparams.data_spec); "
                              "it was not written by train.py")
    try:
        spec = DataSpec.from_dict(raw)
        problem = _spec_problem(raw, spec, int(model.hparams.n_features))
    except (TypeError, ValueError, AttributeError) as err:
        problem = f"{type(err).__name__}: {err}"
    if problem is not None:
        raise CheckpointError(f"{path}: the checkpoint's stored data spec is damaged "
                              f"({problem}); re-train, or use another checkpoint")
    return spec


def check_device(device: object) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` where CUDA is there; otherwise a ``ValueError``."""
    try:
        dev = torch.device(str(device))
    except RuntimeError:
        raise ValueError(f"device={device}: not a device; use device=cpu or device=cuda") \
            from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device={device}: not supported; use device=cpu or device=cuda")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device}: CUDA is not available on this machine; use "
                         "device=cpu")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device}: this machine has {torch.cuda.device_count()} CUDA "
                         "devices (cuda:0 ...); pick one of them")
    return dev
