"""Batch forecasting of fields: NetCDF maps in, CF NetCDF forecast maps out.

For each input file the field checkpoint reads the last R frames and writes the maps
of the next H steps as ``<stem>.forecast.nc``: the variable on (lead_time, y, x) with
a scalar ``forecast_reference_time`` (the last input frame) and a ``time`` coordinate
(valid time = reference time + lead time). Every file is validated first; a bad file
is reported in one line and skipped, the others are still written, atomically.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from forecast.fields.data import field_inputs
from forecast.fields.module import FieldModule
from forecast.fields.reading import open_field
from forecast.files import atomic_write_text, atomic_write_with
from forecast.frame import DataError

log = logging.getLogger(__name__)


def resolve_nc(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """NetCDF files named by paths, globs and folders (a folder: its ``*.nc`` files)."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    files: list[Path] = []
    for item in items:
        p = Path(str(item))
        if p.is_dir():
            files += sorted(f for f in p.glob("*.nc") if not f.name.endswith(".forecast.nc"))
        elif glob.has_magic(str(item)):
            files += sorted(Path(f) for f in glob.glob(str(item)))
        else:
            files.append(p)
    return list(dict.fromkeys(files))


def is_field_input(inputs: str | Path | Sequence[str | Path]) -> bool:
    return any(str(p).endswith(".nc") for p in resolve_nc(inputs))


def forecast_dataset(model: FieldModule, path: Path) -> xr.Dataset:
    """The next H maps after the last frame of ``path`` as a CF dataset (one line on error)."""
    spec = model.hparams.data_spec
    dims = spec["dims"]
    names = {a: d for a, d in zip(("time", "y", "x"), dims, strict=True)}
    try:
        field = open_field(path, spec["variable"], **names)
    except DataError as err:
        if "has no axis" not in str(err):
            raise
        field = open_field(path, spec["variable"])  # other axis names: infer them
    r = model.receptive_field
    if field.step.value != spec["step_ns"]:
        raise DataError(f"{path}: variable '{field.variable}', axis '{field.dims[0]}': step "
                        f"{field.step} != the checkpoint's {pd.Timedelta(spec['step_ns'])}")
    if field.shape != (len(spec["y"]), len(spec["x"])):
        raise DataError(f"{path}: variable '{field.variable}': grid {field.shape} != the "
                        f"checkpoint's {(len(spec['y']), len(spec['x']))}; crop or regrid it")
    if len(field) < r:
        raise DataError(f"{path}: variable '{field.variable}', axis '{field.dims[0]}': "
                        f"{len(field)} frames; the model reads the last {r}")
    n = len(field)
    scaled = (field.frames(n - r, n) - spec["mean"]) / spec["std"]
    x = torch.from_numpy(field_inputs(scaled, field.times[n - r :], spec["calendar"]))[None]
    with torch.inference_mode():
        out = model(x)[0, -1].double().numpy() * spec["std"] + spec["mean"]  # [H, Y, X]
    ref = pd.Timestamp(int(field.times[-1]), tz="UTC").tz_localize(None)
    lead = pd.to_timedelta(np.arange(1, out.shape[0] + 1) * spec["step_ns"], unit="ns")
    ty, tx = field.dims[1], field.dims[2]
    return xr.Dataset(
        {field.variable: (("lead_time", ty, tx), out.astype(np.float32), {
            "units": field.units, "long_name": f"forecast of {field.variable}"})},
        coords={
            "lead_time": ("lead_time", lead.values, {"standard_name": "forecast_period"}),
            "forecast_reference_time": ((), np.datetime64(ref, "ns"),
                                        {"standard_name": "forecast_reference_time"}),
            "time": ("lead_time", (ref + lead).values, {"standard_name": "time"}),
            ty: (ty, field.y, field.data.coords[ty].attrs if ty in field.data.coords else {}),
            tx: (tx, field.x, field.data.coords[tx].attrs if tx in field.data.coords else {}),
        },
        attrs={"Conventions": "CF-1.8", "source": f"forecast of {path.name} by a "
               f"{'causal' if model.hparams.causal else 'non-causal'} field net "
               f"(receptive field {r} steps)"},
    )


def forecast_field_files(model: FieldModule, inputs: str | Path | Sequence[str | Path],
                         output_dir: str | Path) -> list[tuple[str, str, str]]:
    """Forecast every file; (file, status, reason or output path) per file."""
    results = []
    for path in resolve_nc(inputs):
        out = Path(output_dir) / (path.name.removesuffix(".nc") + ".forecast.nc")
        try:
            ds = forecast_dataset(model, path)
        except DataError as err:
            log.error("%s", err)
            results.append((str(path), "failed", str(err)))
            continue
        atomic_write_with(out, lambda tmp, ds=ds: ds.to_netcdf(tmp, engine="netcdf4"))
        log.info("%s -> %s", path, out)
        results.append((str(path), "ok", str(out)))
    return results


def run_fields(model: FieldModule, inputs: str | Path | Sequence[str | Path],
               output_dir: str | Path) -> int:
    """Forecast the files and write ``summary.csv``; 0 when all succeeded, 1 otherwise."""
    results = forecast_field_files(model, inputs, output_dir)
    if not results:
        log.error("no input file to forecast; set inputs=FILE.nc, a folder, a glob or a list")
        return 2
    summary = pd.DataFrame(results, columns=["file", "status", "reason_or_output"])
    atomic_write_text(Path(output_dir) / "summary.csv", summary.to_csv(index=False))
    n_ok = sum(s == "ok" for _, s, _ in results)
    log.info("summary: %d ok, %d failed; outputs in %s", n_ok, len(results) - n_ok,
             Path(output_dir).resolve())
    return 0 if n_ok == len(results) else 1
