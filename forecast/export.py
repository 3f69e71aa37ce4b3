"""Export a checkpoint to ONNX: the full model and the streaming step.

``python -m forecast.export checkpoint=PATH format=onnx output_dir=DIR`` writes

- ``model.onnx``: scaled features ``x`` [batch, time, n_features] -> ``forecast``
  [batch, time, H] (dense, as ``ForecastModule.forward``; batch and time dynamic), and
  for a quantile checkpoint ``quantiles`` [batch, time, H, Q] (``forward_quantiles``);
- ``step.onnx`` (causal checkpoints only): ``x_t`` [batch, n_features] and
  ``state_0 ..`` (one per block [batch, channels, (k - 1) * d_j], and with a linear path
  its past inputs [batch, F, max(P, Q) - 1]) -> ``forecast`` [batch, H]
  (quantile checkpoints: and ``quantiles`` [batch, H, Q]) and ``next_state_0 ..`` (the
  same shapes): :func:`forecast.stream.step`, state in,
  state out; a zero state is a series' start;
- ``export.json``: receptive field, horizon, feature names, state shapes, data spec.

Both graphs come from ``torch.export`` through ``torch.onnx.export(dynamo=True)``
(TorchScript, the older path, is deprecated in torch). Needs the ``export`` extra
(``onnx``, ``onnxscript``, ``onnxruntime`` for the parity check).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from forecast.files import atomic_write_bytes, write_json
from forecast.module import CheckpointError, ForecastModule
from forecast.predict import load_model
from forecast.stream import StreamStep, zero_state

log = logging.getLogger("forecast.export")
FORMATS = ("onnx",)


class _WithQuantiles(torch.nn.Module):
    """A quantile model's dense outputs for export: x -> (forecast, quantiles)."""

    def __init__(self, model: ForecastModule) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x), self.model.forward_quantiles(x)


def _onnx_bytes(module: torch.nn.Module, args: tuple, names: tuple[list[str], list[str]],
                dynamic: tuple) -> bytes:
    """One module as ONNX bytes, written through a temporary file."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "graph.onnx"
        torch.onnx.export(module, args, path, dynamo=True, input_names=names[0],
                          output_names=names[1], dynamic_shapes=dynamic, external_data=False,
                          verbose=False)
        return path.read_bytes()


def export_onnx(model: ForecastModule, output_dir: str | Path) -> list[Path]:
    """Write ``model.onnx``, ``step.onnx`` (causal only) and ``export.json``; their paths."""
    out = Path(output_dir)
    model = model.float().eval()
    f = int(model.hparams.n_features)
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    x = torch.zeros(2, model.receptive_field + 1, f)
    levels = model.hparams.get("quantiles")
    outputs = ["forecast", "quantiles"] if levels else ["forecast"]
    written = [atomic_write_bytes(out / "model.onnx", _onnx_bytes(
        _WithQuantiles(model) if levels else model, (x,), (["x"], outputs),
        ({0: batch, 1: time},)))]
    info = {"receptive_field": model.receptive_field, "horizon": int(model.hparams.horizon),
            "quantiles": levels,
            "n_features": f, "causal": bool(model.hparams.causal),
            "data_spec": model.hparams.get("data_spec")}
    if model.hparams.causal:
        state = zero_state(model, 2)
        n = len(state)
        names = ([*(f"state_{j}" for j in range(n))], [*(f"next_state_{j}" for j in range(n))])
        written.append(atomic_write_bytes(out / "step.onnx", _onnx_bytes(
            StreamStep(model), (x[:, 0], *state),
            (["x_t", *names[0]], [*outputs, *names[1]]),
            ({0: batch}, tuple({0: batch} for _ in state)))))
        info["state_shapes"] = [["batch", int(s.shape[1]), int(s.shape[2])] for s in state]
    else:
        log.warning("model '%s' is not causal: no streaming step (it reads steps after t); "
                    "model.onnx only", model.hparams.name)
    written.append(write_json(out / "export.json", info))
    return written


def run(checkpoint: str | Path, output_dir: str | Path, format: str = "onnx") -> int:
    """Export; the exit code (0 ok, 2 refused)."""
    if format not in FORMATS:
        log.error("format=%s is not supported; use format=onnx", format)
        return 2
    try:
        model, _ = load_model(checkpoint)
    except CheckpointError as err:
        log.error("%s", err)
        return 2
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        log.error("ONNX export needs the export extra: pip install -e '.[export]'")
        return 2
    for path in export_onnx(model, output_dir):
        log.info("wrote %s", path)
    return 0


def main() -> int:
    """``python -m forecast.export ...``: the Hydra shell around :func:`run`."""
    import hydra  # the entry point alone needs Hydra
    from omegaconf import DictConfig

    from forecast.cli import first_missing, run_hydra

    result = {"code": 2}

    @hydra.main(version_base="1.3", config_path="../configs", config_name="export")
    def _main(cfg: DictConfig) -> None:
        key = first_missing(cfg, ("checkpoint", "output_dir"))
        if key is not None:
            log.error("%s is required: python -m forecast.export checkpoint=PATH "
                      "format=onnx output_dir=DIR", key)
            return
        result["code"] = run(cfg.checkpoint, cfg.output_dir, str(cfg.format))

    failed = run_hydra(_main)
    return result["code"] if failed is None else failed

if __name__ == "__main__":
    sys.exit(main())
