"""Learning quality on the embedded NYC data (slow: minutes; run with -m slow)."""

from __future__ import annotations

import pytest
from conftest import compose_train

import train

pytestmark = pytest.mark.slow
# one net, raw weights, at most three epochs: about a minute for both models on 2 cores
BUDGET = ["trainer.max_epochs=3", "trainer.enable_progress_bar=false", "model.members=1",
          "ema_decay=0"]


def test_causal_beats_persistence_and_standard_leaks(tmp_path):
    causal = train.train(compose_train(["model=causal", *BUDGET]), tmp_path / "causal")
    standard = train.train(compose_train(["model=standard", *BUDGET]), tmp_path / "standard")
    jfk = causal["stations"]["JFK"]
    # honest forecasts clearly beat persistence on the same origins
    assert jfk["honest_mae"] < 0.85 * jfk["persistence_mae"]
    assert causal["test_teacher_forced_mae"] == pytest.approx(causal["test_honest_mae"], rel=1e-3)
    # the leak: the standard net looks far better teacher-forced, and is worse honestly
    assert standard["test_teacher_forced_mae"] < 0.5 * causal["test_teacher_forced_mae"]
    assert standard["test_honest_mae"] > causal["test_honest_mae"]
