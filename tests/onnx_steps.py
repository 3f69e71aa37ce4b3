"""Helpers for the export tests: export a model, step ``step.onnx`` on its own state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def run_steps(session, x: np.ndarray, feeds: list[np.ndarray]) -> np.ndarray:
    """Step ``session`` through x [B, n, F] from the state ``feeds``, each step's state
    out fed back in: the point forecasts [B, n, H]."""
    outs = []
    for t in range(x.shape[1]):
        got, *feeds = session.run(None, {"x_t": x[:, t],
                                         **{f"state_{j}": s for j, s in enumerate(feeds)}})
        outs.append(got)
    return np.stack(outs, axis=1)


def export(model, out: Path) -> tuple[dict, Any]:
    """Export ``model`` to ``out`` (skipping without the export extra): (export.json's
    contents, the onnxruntime module)."""
    pytest.importorskip("onnxscript", reason="ONNX export needs the export extra (.[export])")
    ort = pytest.importorskip("onnxruntime", reason="the parity check needs the export extra")
    from forecast.export import export_onnx

    export_onnx(model, out)
    return json.loads((out / "export.json").read_text()), ort
