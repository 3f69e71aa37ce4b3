"""ONNX export: the full model and the streaming step agree with PyTorch under onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx_steps import run_steps

from forecast.export import export_onnx, run
from forecast.module import ForecastModule
from forecast.stream import advance, init_state

pytest.importorskip("onnxscript", reason="ONNX export needs the export extra (.[export])")
ort = pytest.importorskip("onnxruntime", reason="the parity check needs the export extra")


def module() -> ForecastModule:
    torch.manual_seed(0)
    return ForecastModule(n_features=5, horizon=3, channels=4, skip_channels=4,
                          dilations=[1, 2, 4], members=2).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[ForecastModule, Path]:
    out = tmp_path_factory.mktemp("onnx")
    model = module()
    export_onnx(model, out)
    return model, out


def test_full_model_matches_pytorch(exported):
    model, out = exported
    session = ort.InferenceSession(str(out / "model.onnx"))
    x = torch.randn(3, 41, 5)  # another batch and length than the export's
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=0, atol=1e-5)


def test_step_carries_the_state_like_pytorch(exported):
    model, out = exported
    session = ort.InferenceSession(str(out / "step.onnx"))
    info = json.loads((out / "export.json").read_text())
    assert info["receptive_field"] == 15 and info["state_shapes"][2] == ["batch", 8, 8]
    x = torch.randn(4, 40, 5)
    with torch.no_grad():
        state = init_state(model, x[:, :20])
        expected, _ = advance(model, x[:, 20:], state)  # [4, 20, H]
        full = model(x)[:, 20:]
    got = run_steps(session, x[:, 20:].numpy(), [s.numpy() for s in state])  # twenty steps
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, full.numpy(), rtol=0, atol=1e-5)


def test_unknown_format_is_refused(tmp_path, caplog):
    assert run(tmp_path / "none.ckpt", tmp_path, format="tflite") == 2
    assert "format=tflite is not supported; use format=onnx" in caplog.text
