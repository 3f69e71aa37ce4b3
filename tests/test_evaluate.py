"""End to end: evaluate.py finds tiny runs, scores them with baselines, audits, reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS, TINY, compose_train, csv_overrides, make_series
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import evaluate
import train
from forecast.evaluation import runs as discovery
from forecast.report.results import BEGIN, END
from forecast.report.results import main as readme_main

ENTRY_KEYS = ("teacher_forced_mae", "honest_mae", "honest_rmse", "mae_by_horizon")
PNGS = ("forecast_week.png", "mae_by_horizon.png", "teacher_forced_vs_honest.png",
        "receptive_field.png")
# the tiny data: horizon 6, ridge on one day of lags so that the short series suffices
SMALL = ["baselines.ridge.lags=24", "baselines.gradient_boosting.max_models=2",
         "baselines.gradient_boosting.max_iter=5", "baselines.gradient_boosting.lags=[0,1,23]",
         "audit_rows=24", "audit_batch=2", "figure_lead=3"]


def compose_evaluate(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def tiny_train(csv: Path, out: Path, model: str, seed: int) -> Path:
    """A tiny training run, as the `tiny_run` fixture makes, at a chosen path."""
    cfg = compose_train([f"model={model}", f"seed={seed}", *TINY, *csv_overrides(csv)])
    train.train(cfg, out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny runs in train.py's layout: outputs/train/<timestamp>_<model>."""
    root = tmp_path_factory.mktemp("project")
    csv = root / "series.csv"
    make_series().to_csv(csv, index=False)
    train_dir = root / "outputs" / "train"
    return {
        "root": root, "csv": csv,
        "causal": tiny_train(csv, train_dir / "2020-01-01_00-00-00-000000_causal", "causal", 0),
        "standard": tiny_train(csv, train_dir / "2020-01-01_00-00-01-000000_standard",
                               "standard", 0),
    }


@pytest.fixture(scope="module")
def evaluated(runs, tmp_path_factory) -> tuple[Path, dict, Path]:
    """`python evaluate.py` with no argument: the newest causal and standard runs."""
    out = tmp_path_factory.mktemp("evaluate")
    docs = tmp_path_factory.mktemp("docs")
    search = f"search=[{runs['root'] / 'outputs' / 'train'}]"
    cfg = compose_evaluate([search, f"docs_dir={docs}", *SMALL])
    return out, evaluate.evaluate(cfg, out), docs


def test_report_metrics_and_figures_are_written(evaluated):
    out, entries, docs = evaluated
    on_disk = json.loads((out / "metrics.json").read_text())
    assert set(on_disk) == {"causal", "standard", "persistence", "seasonal_naive", "ridge",
                            "gradient_boosting"}
    for name, entry in on_disk.items():
        for key in ENTRY_KEYS:
            assert key in entry, (name, key)
        assert len(entry["mae_by_horizon"]) == 6
        assert np.isfinite(entry["honest_mae"]) and entry["honest_mae"] > 0
        # the overall MAE is the mean of the per-step MAEs (every step has the same targets)
        assert np.mean(entry["mae_by_horizon"]) == pytest.approx(entry["honest_mae"], rel=1e-2)
        assert set(entry["stations"]) == {"A", "B"}
    # exactly the same targets for every model and baseline
    assert len({e["n_targets"] for e in on_disk.values()}) == 1
    for png in PNGS:
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, png
    for png in ("leak_teacher_forced_vs_honest.png", "leak_mae_by_horizon.png"):
        assert (docs / png).read_bytes() == (out / {
            "leak_teacher_forced_vs_honest.png": "teacher_forced_vs_honest.png",
            "leak_mae_by_horizon.png": "mae_by_horizon.png"}[png]).read_bytes()
    report = (out / "report.md").read_text()
    assert "## Verdict" in report and "inflation factor of" in report
    for png in PNGS:
        assert f"]({png})" in report
    assert f"{on_disk['standard']['inflation']:.1f}x" in report
    assert f"{on_disk['causal']['honest_mae']:.2f}" in report
    # the strongest baseline is named by its validation score, never the test score
    val = {k: e["val_honest_mae"] for k, e in on_disk.items() if e["kind"] == "baseline"}
    best = min(val, key=val.get)
    assert f"The strongest baseline, chosen on validation, is {best}" in report
    assert all(e["n_targets"] > 0 for e in on_disk.values())


def test_causal_protocols_agree_standard_does_not(evaluated):
    _, entries, _ = evaluated
    c, s = entries["causal"], entries["standard"]
    assert c["max_abs_diff_teacher_forced_vs_honest"] < 1e-3
    assert c["teacher_forced_mae"] == pytest.approx(c["honest_mae"], rel=1e-4)
    assert s["max_abs_diff_teacher_forced_vs_honest"] > 1e-4
    assert s["inflation"] == pytest.approx(s["honest_mae"] / s["teacher_forced_mae"])


def test_audit_of_trained_checkpoints(evaluated):
    _, entries, _ = evaluated
    c, s = entries["causal"]["audit"], entries["standard"]["audit"]
    assert c["receptive_field"] == s["receptive_field"] == 19
    assert (c["measured_past"], c["measured_future"]) == (18, 0)
    assert (s["measured_past"], s["measured_future"]) == (9, 9)
    assert c["bounded"] and s["bounded"]


def test_persistence_score_by_hand(evaluated, runs):
    """Persistence recomputed from the CSV alone, on the origins the report used."""
    _, entries, _ = evaluated
    df = make_series()
    n = entries["persistence"]["n_targets"] // 6 // 2  # origins per series
    errors = []
    for _, part in df.groupby("station"):
        temp = part["temp"].to_numpy()
        # the test split holds the last 15% of the span; its origins are its steps whose
        # 6 targets lie inside it: the last n + 6 steps of each series
        o = np.arange(len(temp) - 6 - n, len(temp) - 6)
        errors.append(np.abs(temp[o, None] - temp[o[:, None] + np.arange(1, 7)]))
    assert entries["persistence"]["honest_mae"] == pytest.approx(np.mean(errors), rel=1e-4)


def test_seeds_of_a_multirun_are_averaged(runs, tmp_path):
    """A sweep folder: the newest model's seeds are all taken; mean and spread reported."""
    sweep = tmp_path / "outputs" / "multirun" / "2020-01-02_00-00-00-000000"
    shutil.copytree(runs["causal"], sweep / "0_causal_seed0")
    tiny_train(runs["csv"], sweep / "1_causal_seed1", "causal", 1)
    shutil.copytree(runs["standard"], sweep / "2_standard_seed0")
    chosen = discovery.newest_runs([str(tmp_path / "outputs" / "multirun")])
    assert sorted((r.name, r.seed) for r in chosen) == [("causal", 0), ("causal", 1),
                                                        ("standard", 0)]
    groups = discovery.group_runs(chosen)
    assert [len(g) for g in groups.values()] == [2, 1]
    cfg = compose_evaluate([f"runs=[{sweep}]", *SMALL])
    entries = evaluate.evaluate(cfg, tmp_path / "eval")
    c = entries["causal"]
    assert c["seeds"] == [0, 1]
    spread = c["spread"]["honest_mae"]
    assert spread["n"] == 2 and spread["std"] > 0
    assert c["honest_mae"] == pytest.approx(np.mean([r["honest_mae"] for r in c["per_run"]]))
    assert entries["standard"]["spread"]["honest_mae"]["std"] is None
    assert "±" in (tmp_path / "eval" / "report.md").read_text()
    # the mean of the two seeds' forecasts is scored too (no ensemble of the single standard)
    ens = entries["causal (mean of 2 seeds)"]
    assert ens["seeds"] == [0, 1] and ens["per_run"] == [] and ens["causal"]
    assert ens["n_targets"] == c["n_targets"]
    # by hand: the two checkpoints' honest forecasts of the test origins, averaged
    from forecast.evaluation.protocols import forecast_origins
    from forecast.features import DataSpec, series_arrays
    from forecast.module import load_checkpoint
    from forecast.report.comparison import data_module

    dm = data_module(chosen[0])
    dm.load()
    preds, target = [], None
    for run in (r for r in chosen if r.name == "causal"):
        m = load_checkpoint(str(run.checkpoint))
        spec = DataSpec.from_dict(m.hparams.data_spec)
        origins = dm.split_origins("test", max(m.receptive_field - 1, 24))  # ridge: 24 lags
        fc = forecast_origins(m, series_arrays(dm.frame, spec), origins, spec, "honest",
                              dm.span)
        preds.append(fc.pred)
        target = fc.target
    err = np.abs((preds[0] + preds[1]) / 2 - target)
    assert ens["honest_mae"] == pytest.approx(float(np.nanmean(err)), rel=1e-5)
    assert ens["honest_mae"] < c["honest_mae"]  # the seeds disagree somewhere
    assert ens["max_abs_diff_teacher_forced_vs_honest"] < 1e-4
    assert not any(k.startswith("standard (mean") for k in entries)
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "causal (mean of 2 seeds)" in report
    assert f"The mean of its 2 seeds' forecasts scores {ens['honest_mae']:.2f}" in report


def test_no_runs_is_refused_with_the_command_that_makes_them(tmp_path):
    cfg = compose_evaluate([f"search=[{tmp_path / 'outputs' / 'train'}]"])
    with pytest.raises(discovery.RunError, match=r"no finished training runs.*python train\.py "
                                                r"model=causal"):
        evaluate.evaluate(cfg, tmp_path / "eval")
    half = tmp_path / "half"
    (half / "checkpoints").mkdir(parents=True)
    (half / "checkpoints" / "best.ckpt").write_bytes(b"")
    cfg = compose_evaluate([f"runs=[{half}]"])
    with pytest.raises(discovery.RunError, match=r"half is not a training run: it lacks "
                                                r"metrics\.json, config\.yaml"):
        evaluate.evaluate(cfg, tmp_path / "eval")


@pytest.mark.parametrize("key,value,shown", [
    ("max_gap", 3, r"max_gap \(12 vs 3\)"),
    ("calendar", ["day"], r"calendar \(None vs \['day'\]\)"),
    ("angular", ["hum"], r"angular \(\[\] vs \['hum'\]\)"), ("span", 64, r"span \(32 vs 64\)"),
])
def test_runs_on_different_data_are_refused(runs, key, value, shown):
    a = discovery.load_run(runs["causal"])
    b = discovery.load_run(runs["standard"])
    b.config["data"]["train_stride"] = 3  # training only: no effect on targets or features
    discovery.check_comparable([a, b])
    b.config["data"][key] = value
    with pytest.raises(discovery.RunError, match=rf"differ in data\.{shown}"):
        discovery.check_comparable([a, b])


def test_readme_table_is_generated_from_results_json(evaluated, tmp_path):
    out, entries, docs = evaluated
    results = json.loads((docs / "results.json").read_text())
    assert results["rows"]["causal"]["honest_mae"] == entries["causal"]["honest_mae"]
    assert results["strongest_baseline"] in {"ridge", "gradient_boosting", "seasonal_naive",
                                             "persistence"}
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{BEGIN}\nstale\n{END}\n\nmore\n")
    args = ["--results", str(docs / "results.json"), "--readme", str(readme)]
    assert readme_main([*args, "--check"]) == 1  # stale table: the check fails
    assert readme_main(args) == 0
    text = readme.read_text()
    assert f"{entries['causal']['honest_mae']:.2f}" in text and text.endswith("\n\nmore\n")
    assert readme_main([*args, "--check"]) == 0


def test_committed_readme_agrees_with_committed_results():
    root = Path(evaluate.__file__).resolve().parent
    assert readme_main(["--results", str(root / "docs" / "results.json"),
                        "--readme", str(root / "README.md"), "--check"]) == 0


def test_cli_refuses_without_runs_in_one_line(tmp_path):
    cmd = [sys.executable, str(Path(evaluate.__file__)), f"hydra.run.dir={tmp_path / 'eval'}",
           f"search=[{tmp_path / 'nothing'}]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "python train.py model=causal" in proc.stdout + proc.stderr


def test_checkpoints_can_be_named_instead_of_run_folders(runs, tmp_path):
    last = runs["causal"] / "checkpoints" / "last.ckpt"
    chosen = discovery.named_runs([str(last), str(runs["standard"])])
    assert [r.checkpoint for r in chosen] == [last,
                                              runs["standard"] / "checkpoints" / "best.ckpt"]
    stray = tmp_path / "stray" / "checkpoints" / "x.ckpt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not a checkpoint")
    with pytest.raises(discovery.RunError, match="no config.yaml in"):
        discovery.named_runs([str(stray)])
