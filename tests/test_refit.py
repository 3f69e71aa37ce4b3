"""data.refit: after early stopping, a fresh net on train + validation for the same steps;
the baselines refit as well, and nothing reads the test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, compose_train, csv_overrides, make_series

import train
from forecast.baselines import Persistence, RidgeLags
from forecast.data import ForecastDataModule
from forecast.evaluation.protocols import collect, station_scores
from forecast.evaluation.runs import load_run
from forecast.report.comparison import ReportOptions, compare_runs, data_module


def datamodule(csv, refit: bool) -> ForecastDataModule:
    dm = ForecastDataModule(str(csv), "time", "temp", ["hum"], "station", horizon=6,
                            refit=refit)
    dm.load()
    return dm


def test_refit_fits_scalers_and_origins_through_validation_never_test(tmp_path):
    csv = tmp_path / "s.csv"
    frame = make_series()
    frame.to_csv(csv, index=False)
    plain, refit = datamodule(csv, False), datamodule(csv, True)
    train_end, val_end = plain.splits["train"][1], plain.splits["val"][1]
    assert refit.fit_end == val_end and plain.fit_end == train_end
    for dm, end in ((plain, train_end), (refit, val_end)):
        last = max(int(a.times[o.max() + 6]) for a, o in zip(dm.arrays, dm.fit_origins(24),
                                                               strict=True))
        assert pd.Timestamp(last, tz="UTC") == end.floor("h")  # the last target it fits
    # the target's scaler: the rows up to the end of validation, not of training
    t = pd.to_datetime(frame["time"], utc=True)
    assert refit.spec.mean[0] == pytest.approx(frame.loc[t <= val_end, "temp"].mean(), rel=1e-5)
    assert plain.spec.mean[0] == pytest.approx(frame.loc[t <= train_end, "temp"].mean(),
                                               rel=1e-5)
    # the test origins do not change
    for a, b in zip(plain.split_origins("test", 24), refit.split_origins("test", 24),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def refit_run(csv, out):
    cfg = compose_train(["model=causal", "seed=0", *TINY, *csv_overrides(csv), "data.refit=true"])
    return train.train(cfg, out)


def test_refit_run_keeps_the_early_stopped_net_and_never_reads_test(tmp_path):
    frame = make_series()
    csv = tmp_path / "s.csv"
    frame.to_csv(csv, index=False)
    metrics = refit_run(csv, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    early = torch.load(ckpts / "early_stopped.ckpt", weights_only=True)
    final = torch.load(ckpts / "best.ckpt", weights_only=True)
    assert metrics["refit_steps"] == early["global_step"] == final["global_step"] > 0
    assert "optimizer_states" in early and "optimizer_states" not in final  # never resumed
    spec_early = early["hyper_parameters"]["data_spec"]
    spec_final = final["hyper_parameters"]["data_spec"]
    assert spec_early["mean"] != spec_final["mean"]  # scalers refit on train + validation
    assert any(not torch.equal(final["state_dict"][k], early["state_dict"][k])
               for k in final["state_dict"])

    # perturb every value of the test split: the refit net is the same, bit for bit
    dm = datamodule(csv, True)
    after = pd.to_datetime(frame["time"], utc=True) > dm.splits["val"][1]
    assert after.sum() > 0
    frame.loc[after, "temp"] += 30.0
    frame.loc[after, "hum"] = 99.0
    frame.to_csv(csv, index=False)
    refit_run(csv, tmp_path / "again")
    again = torch.load(tmp_path / "again" / "checkpoints" / "best.ckpt", weights_only=True)
    for k, v in final["state_dict"].items():
        assert torch.equal(again["state_dict"][k], v), k


def test_evaluate_refits_the_baselines_too_and_names_them_on_validation(tmp_path):
    csv = tmp_path / "s.csv"
    make_series().to_csv(csv, index=False)
    refit_run(csv, tmp_path / "run")
    run = load_run(tmp_path / "run")
    ridge = RidgeLags(horizon=6, lags=24, covariate_lags=3)
    entries = compare_runs([run], {"ridge": ridge}, tmp_path / "eval",
                           ReportOptions(station="A", audit_rows=8, figure_lead=3))
    dm, plain = data_module(run), data_module(run, refit=False)
    dm.load()
    plain.load()
    history = entries["causal"]["receptive_field"] - 1  # the net's context: origins need it

    def honest_mae(fitted_on: ForecastDataModule, origins_of: list[np.ndarray],
                   scored: ForecastDataModule, split: str) -> float:
        b = RidgeLags(horizon=6, lags=24, covariate_lags=3).fit(fitted_on.arrays, origins_of)
        o = scored.split_origins(split, max(history, b.history))
        ref = collect(scored.arrays, o, Persistence(6).predict(scored.arrays, o), scored.spec)
        fc = collect(scored.arrays, o, b.predict(scored.arrays, o), scored.spec)
        return station_scores(fc, ref)["all"]["mae"]

    on_train = honest_mae(plain, plain.split_origins("train", ridge.history), plain, "val")
    on_both = honest_mae(dm, dm.fit_origins(ridge.history), dm, "test")
    assert entries["ridge"]["val_honest_mae"] == pytest.approx(on_train, rel=1e-6)
    assert entries["ridge"]["honest_mae"] == pytest.approx(on_both, rel=1e-6)
    # and not the train-only fit on test
    assert entries["ridge"]["honest_mae"] != pytest.approx(
        honest_mae(plain, plain.split_origins("train", ridge.history), plain, "test"), rel=1e-6)


def test_refit_keeps_the_validated_nets_inputs(tmp_path):
    """calendar: null picks cycles the training span repeats: 20 days of data give a
    training span under two weeks (no weekly cycle) and train + validation over it. The
    refit net keeps the early-stopped net's features; only its scalers change."""
    csv = tmp_path / "s.csv"
    make_series(24 * 20).to_csv(csv, index=False)
    refit_run(csv, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    early = torch.load(ckpts / "early_stopped.ckpt", weights_only=True)["hyper_parameters"]
    final = torch.load(ckpts / "best.ckpt", weights_only=True)["hyper_parameters"]
    assert early["data_spec"]["calendar"] == final["data_spec"]["calendar"] == ["day"]
    assert early["n_features"] == final["n_features"]
    assert datamodule(csv, refit=True).spec.calendar == ["day", "week"]  # what null picks


def test_runs_without_a_refit_key_compare_with_refit_false(tmp_path):
    """Runs trained before data.refit existed trained without it: comparable with
    data.refit=false, refused against data.refit=true (their baselines differ)."""
    from forecast.evaluation.runs import Run, RunError, check_comparable

    data = {"path": "x.csv", "horizon": 6}
    old = Run(tmp_path / "a", {"model": {}, "data": dict(data)})
    check_comparable([old, Run(tmp_path / "b", {"model": {}, "data": {**data, "refit": False}})])
    with pytest.raises(RunError, match=r"data\.refit"):
        check_comparable([old, Run(tmp_path / "c", {"model": {}, "data": {**data, "refit": True}})])


def test_selection_refuses_data_refit_inside_one_variant():
    import selection
    from forecast.settings import SettingsError

    with pytest.raises(SettingsError, match="variant late: data.refit changes how the baselines"):
        selection.check_variants({"train_overrides": [], "variants": {"late": ["data.refit=true"]}})
