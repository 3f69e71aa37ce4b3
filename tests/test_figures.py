"""The convolution figures: measured from the layers, written by one command."""

from __future__ import annotations

import json
import logging

from PIL import Image

from forecast.figures import convs
from forecast.figures.__main__ import main


def test_figures_show_the_measured_receptive_fields():
    facts = {}
    for spec in convs.specs():
        for _, stages in spec.models:
            for stage in stages:
                stage.double()
        facts[spec.name] = convs.panels(spec, spec.position)[1]
    r = 2 * (1 + 2 + 4)  # (k - 1) * sum(dilations): the 1-D stacks read R - 1 = 14 steps
    assert facts["causal1d"]["causal"]["reads"] == [[-r, 0]]
    assert facts["same1d"]["same"]["reads"] == [[-r // 2, r // 2]]
    assert facts["causal2d"]["causal"]["reads"] == [[-2, 0], [-2, 2]]
    assert facts["causal3d"]["causal"]["reads"] == [[-3, 0], [-2, 2], [-2, 2]]  # 1 + 2 frames
    assert facts["same3d"]["same"]["reads"] == [[-2, 2], [-2, 2], [-2, 2]]
    assert facts["blindspot"]["naive"]["blind"] > 0
    assert facts["blindspot"]["gated"]["blind"] == 0


def test_command_writes_png_gif_and_measurements(tmp_path):
    measured = convs.write_all(tmp_path, names=["causal1d"])
    assert Image.open(tmp_path / "causal1d.png").format == "PNG"
    with Image.open(tmp_path / "causal1d.gif") as gif:
        assert gif.n_frames == 24  # the output sweeps every step
    assert json.loads((tmp_path / "measured.json").read_text()) == measured
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "causal1d.gif", "causal1d.png", "measured.json"]  # no temporary files left


def test_command_line_refuses_unknown_arguments(caplog, tmp_path):
    with caplog.at_level(logging.ERROR):
        assert main(["convs", f"outdir={tmp_path}"]) == 2
        assert main([]) == 2
    assert "unknown argument 'outdir=" in caplog.text
    assert "usage: python -m forecast.figures {convs}" in caplog.text
    assert not any(tmp_path.iterdir())
