"""Settings checked before any work: every shipped config and documented override passes;
each kind of bad setting is refused in one line naming the key and the allowed values."""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIGS, TINY, compose_train, csv_overrides
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from test_evaluate import compose_evaluate

import evaluate
import selection
import train
from forecast.data import ForecastDataModule
from forecast.fields.data import FieldDataModule
from forecast.fields.module import FieldModule
from forecast.module import ForecastModule
from forecast.settings import SettingsError, check_evaluate, check_select, check_train
from forecast.settings.signatures import ARGUMENTS, STRATEGIES
from forecast.settings.training import (
    DataSettings,
    FieldDataSettings,
    FieldModelSettings,
    ModelSettings,
)

CSV = ["data=csv", "data.path=f.csv", "data.time_column=time", "data.target=temp"]


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def check(overrides: list[str]) -> None:
    check_train(plain(compose_train(overrides)))


@pytest.mark.parametrize("overrides", [
    [], ["model=standard"], ["data=era5_uk", "model=causal3d"],
    ["data=era5_uk", "model=standard3d"], ["data=field", "model=causal3d", "data.path=f.nc",
                                           "data.variable=t2m"],
    ["trainer=tiny", "logger=mlflow"], ["trainer=gpu", "logger=tensorboard"],
    ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
    ["trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=[0,1]"],
    # the README's overrides and the design variants of configs/variants/model_notes.yaml
    ["seed=1", "model.members=4", "model.linear_lags=0", "model.impl=mask",
     "model.channels=64", "model.dilations=[1,2,4,8,16,32,64,128]", "patience=8",
     "ema_decay=0", "trainer.max_steps=1200"],
    ["model.dropout=0.1", "model.channels=16", "model.skip_channels=32", "data.covariates=[]",
     "data.angular=[]"],
    [*CSV, "data.freq=10min", "data.time_format='%d.%m.%Y %H:%M:%S'", "data.max_gap=12",
     "data.bounds={temp:[-60,130]}", "data.calendar=[day]",
     "data.splits={train:[2009-01-01,2014-12-31],val:[2015-01-01,2015-12-31],"
     "test:[2016-01-01,2016-12-31]}"],
    [*CSV, "data.fractions=[0.7,0.15,0.15]", "horizon=6", "model.dilations=[1,2,4,8]",
     "data.span=48", "data.train_stride=3", "data.batch_size=8"],
])
def test_shipped_configs_and_documented_overrides_pass(overrides, monkeypatch):
    # the trackers' packages are optional extras: count them as installed here (whether one
    # is missing is test_a_tracker_that_is_not_installed_names_its_extra's question)
    import importlib.util

    from forecast.settings.running import LOGGER_EXTRAS

    real, trackers = importlib.util.find_spec, {m for _, m in LOGGER_EXTRAS.values()}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real("json") if name in trackers else real(name, *a))
    check(overrides)


def test_the_test_suites_tiny_config_passes(tmp_path):
    check([*TINY, *csv_overrides(tmp_path / "series.csv")])


S, F = ("model=standard",), ("data=era5_uk", "model=causal3d")
CSV_BASE, DDP = tuple(CSV), ("trainer=ddp",)
BAD = [  # (config composed from these overrides, then these keys set, the expected line)
    ((), {"model.lr": -1}, r"^model\.lr=-1: allowed: > 0$"),
    (S, {"model.kernel_size": 4}, r"^model\.kernel_size=4: allowed: an odd size with centred "
                                  r"padding"),
    (S, {"model.level_window": 24}, r"^model\.level_window=24: allowed: an odd window with "
                                    r"a centred mean"),
    ((), {"model.level_window": -1}, r"^model\.level_window=-1: allowed: >= 0$"),
    ((), {"model.level_scale": -0.5}, r"^model\.level_scale=-0.5: allowed: >= 0$"),
    (F, {"model.causal": False, "model.kernel_time": 2},
     r"^model\.kernel_time=2: allowed: an odd size"),
    ((), {"horizon": 0}, r"^horizon=0: allowed: >= 1$"),
    ((), {"data.splits.train": ["2013-09-01", "2013-08-31"]},
     r"^data\.splits\.train=.*: allowed: an end at or after the start \(2013-09-01\)"),
    ((), {"data.splits.val": ["2013-08-15", "2013-10-15"]},
     r"^data\.splits\.val=.*a start after train ends \(2013-08-31\).*without overlap"),
    ((), {"data.splits": {"train": ["2013-09-01", "2013-10-15"],
                          "val": ["2013-01-01", "2013-08-31"],
                          "test": ["2013-10-16", "2013-12-31"]}},
     r"^data\.splits\.val=.*a start after train ends"),
    ((), {"data.splits.test": None}, r"^data\.splits=.*all of train, val, test"),
    ((), {"data.splits.train": ["someday", "2013-08-31"]},
     r"^data\.splits\.train='someday'.*timestamp"),
    (CSV_BASE, {"data.fractions": [0.5, 0.5, 0.2]}, r"^data\.fractions=.*summing to 1$"),
    ((), {"trainer.foo": 1}, r"^trainer\.foo: unknown key; allowed keys of trainer: .*max_steps"),
    ((), {"model.chanels": 4}, r"^model\.chanels: unknown key; allowed keys of model: "
                               r".*channels"),
    ((), {"data.targte": "t"}, r"^data\.targte: unknown key; allowed keys of data: .*target"),
    ((), {"ephocs": 3}, r"^ephocs: unknown key; allowed keys of the top level: seed, horizon"),
    ((), {"model.dropout": 1.0}, r"^model\.dropout=1\.0: allowed: in \[0, 1\)$"),
    ((), {"model.dilations": [1, 0, 4]}, r"^model\.dilations=\[1, 0, 4\]: allowed: a non-empty "
                                         r"list, each >= 1$"),
    ((), {"model.dilations": []}, r"^model\.dilations=\[\]: allowed: a non-empty list"),
    ((), {"patience": -1}, r"^patience=-1: allowed: >= 0$"),
    ((), {"trainer.max_steps": 0}, r"^trainer\.max_steps=0: allowed: >= 1 or -1 \(no limit\)$"),
    ((), {"model.impl": "masked"}, r"^model\.impl='masked': allowed: one of pad, mask$"),
    (DDP, {"trainer.strategy": "dpp"}, r"^trainer\.strategy='dpp': allowed: one of auto, ddp, "
                                       r"ddp_spawn"),
    ((), {"trainer.devices": 0}, r"^trainer\.devices=0: allowed: >= 1"),
    ((), {"trainer.accelerator": "gpus"}, r"^trainer\.accelerator='gpus': allowed: one of auto"),
    ((), {"trainer.logger": False}, r"^trainer\.logger: .*logger=csv\|tensorboard\|mlflow"),
    ((), {"trainer.val_check_interval": 0.0},
     r"^trainer\.val_check_interval=0\.0: allowed: a fraction in \(0, 1\] or a count >= 1$"),
    ((), {"ema_decay": 1}, r"^ema_decay=1: allowed: in \[0, 1\)$"),
    ((), {"seed": -3}, r"^seed=-3: allowed: in \[0, 4294967296\)$"),
    ((), {"data.calendar": ["month"]}, r"^data\.calendar=\['month'\]: allowed: a list, each one "
                                       r"of day, week, year, day_plus_year, day_minus_year$"),
    ((), {"data.bounds.temp": [130, -60]}, r"^data\.bounds\.temp=\[130, -60\]: allowed: \[low, "
                                           r"high\]"),
    ((), {"data.angular": ["wind"]}, r"^data\.angular=\['wind'\]: allowed: covariates only"),
    ((), {"model.horizon": 3}, r"^model\.horizon=3: allowed: the data's horizon \(24\)"),
    ((), {"model.cosine": True, "trainer.max_steps": -1, "data.refit": False},
     r"^trainer\.max_steps=-1: allowed: a positive step budget when model\.cosine=true"),
    ((), {"model.cosine": True},
     r"^model\.cosine=True: allowed: false with data\.refit=true"),
    (("data=era5_uk",), {}, r"^model=causal with data=.*FieldDataModule: field nets"),
    ((*F, *DDP), {}, r"^trainer\.strategy=.*field runs do not train across devices"),
    (F, {"resume": True}, r"^resume=True: allowed: null for field runs"),
    (("data=csv",), {}, r"^data\.path is required: set it on the command line "
                        r"\(data\.path=\.\.\.\)$"),
    ((), {"model._target_": "forecast.module.Nothing"},
     r"^model\._target_='forecast\.module\.Nothing': allowed: an importable class$"),
    ((), {"logger.flush_every": 3}, r"^logger\.flush_every: unknown key; allowed keys of "
                                    r"CSVLogger"),    ((), {"model.quantiles": [0.1, 0.5, 1.0]},
     r"^model\.quantiles=\[0\.1, 0\.5, 1\.0\]: allowed: increasing levels inside \(0, 1\) "
     r"holding the median 0\.5"),
    ((), {"model.quantiles": [0.9, 0.5, 0.1]}, r"^model\.quantiles=\[0\.9, 0\.5, 0\.1\]: "
                                               r"allowed: increasing levels"),
    ((), {"model.quantiles": [0.1, 0.9]}, r"^model\.quantiles=\[0\.1, 0\.9\]: allowed: .*"
                                          r"holding the median 0\.5"),
    ((), {"model.quantiles": []}, r"^model\.quantiles=\[\]: allowed: increasing levels"),
]


@functools.cache
def composed(overrides: tuple[str, ...]) -> dict:
    return plain(compose_train(list(overrides)))


def edited(overrides: tuple[str, ...], edits: dict) -> dict:
    cfg = copy.deepcopy(composed(overrides))
    for dotted, value in edits.items():
        *path, last = dotted.split(".")
        node = cfg
        for part in path:
            node = node[part]
        node[last] = value
    return cfg


@pytest.mark.parametrize("overrides,edits,expected", BAD)
def test_bad_settings_are_refused_in_one_line(overrides, edits, expected):
    with pytest.raises(SettingsError, match=expected) as info:
        check_train(edited(overrides, edits))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override,expected", [
    ("model.channels=abc", r"^model\.channels='abc': expected an int >= 1$"),
    ("model.causal=maybe", r"^model\.causal='maybe': expected a bool"),
    ("model.lr=1e-3x", r"^model\.lr='1e-3x': expected a number > 0$"),
])
def test_command_line_words_of_the_wrong_type_are_refused(override, expected):
    with pytest.raises(SettingsError, match=expected):
        check([override])


def test_ddp_in_a_sweep_on_one_machine_is_refused_unless_a_cluster_started_it():
    cfg = composed(("trainer=ddp",))
    with pytest.raises(SettingsError, match=r"^trainer\.strategy=.*a single-process trainer in "
                                            r"a multirun .*hydra/launcher=slurm$"):
        check_train(cfg, multirun=True, env={})
    check_train(cfg, multirun=True, env={"SLURM_NTASKS": "4"})
    check_train(cfg, multirun=False, env={})
    check_train(composed(()), multirun=True, env={})


def test_a_tracker_that_is_not_installed_names_its_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(SettingsError, match=r"^logger=mlflow needs the mlflow package: pip "
                                            r"install -e \"\.\[mlflow\]\"$"):
        check(["logger=mlflow"])


@pytest.mark.parametrize("schema,cls", [(ModelSettings, ForecastModule),
                                        (FieldModelSettings, FieldModule),
                                        (DataSettings, ForecastDataModule),
                                        (FieldDataSettings, FieldDataModule)])
def test_schemas_type_only_constructor_arguments(schema, cls):
    """A schema key the class does not take would pass the check and fail when built;
    (a constructor argument the schema lacks passes unchecked, as for the trainer)."""
    params = set(inspect.signature(cls).parameters) - {"n_features", "data_spec"}
    assert set(schema.__dataclass_fields__) - {"_target_"} <= params


def test_evaluate_settings():
    check_evaluate(plain(compose_evaluate([])))
    check_evaluate(plain(compose_evaluate(["runs=[a,b]", "field=true", "point_run=r",
                                           "week_start=2013-11-01", "docs_dir=docs"])))
    for override, expected in [("figure_lead=0", r"^figure_lead=0: allowed: >= 1$"),
                               ("+sead=1", r"^sead: unknown key; allowed keys of the top level"),
                               ("point.lat=100", r"^point\.lat=100: allowed: in \[-90, 90\]$"),
                               ("audit_batch=many", r"^audit_batch='many': expected an int"),
                               ("field=maybe", r"^field='maybe': expected a bool"),
                               ("calibration_rate=10",
                                r"^calibration_rate=10: allowed: in \(0, 1\]$")]:
        with pytest.raises(SettingsError, match=expected):
            check_evaluate(plain(compose_evaluate([override])))


def test_cli_refuses_a_bad_setting_with_exit_2_before_reading_data(tmp_path):
    cmd = [sys.executable, str(Path(train.__file__).resolve()), "model.dropout=1.5",
           "data.path=/nonexistent.csv"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("model.dropout=1.5: allowed: in [0, 1)")
    (run,) = (tmp_path / "outputs" / "train").iterdir()
    assert not (run / "config.yaml").exists()  # nothing of a run: not even the config


@pytest.mark.parametrize("entry", [train, evaluate, selection])
def test_a_bad_override_exits_2_as_a_bad_setting_does(entry, monkeypatch):
    """Hydra exits 1 when it cannot compose: before main() has checked the settings that
    is an argument error, exit 2 (a run that fails after the check exits 1: the real entry
    points in test_predict_robust and test_evaluate)."""
    def hydra_refuses() -> None:
        raise SystemExit(1)

    monkeypatch.setattr(entry, "main", hydra_refuses)
    assert entry.cli() == 2
    monkeypatch.setattr(entry, "main", lambda: None)
    assert entry.cli() == 0


def test_selection_checks_every_variants_settings_before_reading_data(tmp_path):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="select", overrides=["variants=model_notes",
                                                       "+variants.fast=['model.lr=-0.1']"])
        cfg.train_overrides = [*TINY, *csv_overrides(tmp_path / "absent.csv")]
        with pytest.raises(SettingsError, match=r"^variant fast: model\.lr=-0\.1: allowed: "
                                                r"> 0$"):
            selection.run_selection(cfg, tmp_path / "select")


def test_selection_settings():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        def composed(overrides: list[str]) -> dict:
            return plain(compose(config_name="select", overrides=overrides))

        check_select(composed(["variants=heads", "seeds=[0,1]", "fold_length=336h"]))
        for override, expected in [
                ("folds=0", r"^folds=0: allowed: >= 1$"),
                ("folds=abc", r"^folds='abc': expected an int"),
                ("fold_length=abc", r"^fold_length='abc': allowed: a positive pandas Timedelta"),
                ("stop_length=-3D", r"^stop_length='-3D': allowed: a positive pandas"),
                ("seeds=[]", r"^seeds=\[\]: allowed: at least one seed, each once$"),
                ("seeds=[0,0]", r"^seeds=\[0, 0\]: allowed: at least one seed, each once$"),
                ("+variants.x=fast", r"^variants\.x='fast': expected a list of training "
                                     r"overrides"),
                ("+sead=1", r"^sead: unknown key; allowed keys of the top level")]:
            with pytest.raises(SettingsError, match=expected):
                check_select(composed([override]))
        nothing = {**composed(["variants=none"]), "baselines": {}}
        with pytest.raises(SettingsError, match=r"^variants and baselines are both empty"):
            check_select(nothing)


def test_selection_names_a_variant_that_does_not_compose(tmp_path):
    """An override Hydra cannot apply is a bad setting of that variant, not a traceback."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = plain(compose(config_name="select", overrides=[
            "variants=none", "+variants.odd=['model.nosuch=1']"]))
        with pytest.raises(SettingsError, match=r"^variant odd: ConfigCompositionException: "
                                                r"Could not override 'model\.nosuch'"):
            selection.check_variants(cfg)
        cfg["variants"] = {"odd": ["model=nosuch"]}
        with pytest.raises(SettingsError, match=r"^variant odd: MissingConfigException: "
                                                r".*'model/nosuch'"):
            selection.check_variants(cfg)


def test_selection_cli_exits_2_on_a_bad_variant_and_1_on_a_failed_run(tmp_path):
    """The real entry point: a variant Hydra cannot compose is one line and exit 2 before
    any data is read; a run that fails (its data file is absent) is one line and exit 1."""
    script = str(Path(selection.__file__).resolve())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(*args: str) -> tuple[int, list[str]]:
        proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300, env=env)
        return proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()

    code, lines = run("train_overrides=['model.nosuch=1']")
    assert code == 2, lines[-5:]
    assert len(lines) == 1 and lines[0].endswith(
        "variant (common): ConfigCompositionException: Could not override 'model.nosuch'.")
    code, lines = run(f"train_overrides=['data.path={tmp_path / 'absent.csv'}']")
    assert code == 1, lines[-5:]
    errors = [line for line in lines if "[ERROR]" in line]
    assert len(errors) == 2 and errors[0].endswith("absent.csv: file not found")
    assert "the traceback is in" in errors[1] and "Traceback" not in "\n".join(lines)


@pytest.mark.parametrize("target", sorted(ARGUMENTS))
def test_written_out_signatures_are_the_classes_own(target):
    """The lists that spare the check an import of torch and Lightning are exact."""
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    params = [p.name for p in inspect.signature(cls).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert list(ARGUMENTS[target]) == params


def test_written_out_strategies_are_registered():
    from lightning.pytorch.strategies import StrategyRegistry

    assert set(STRATEGIES) <= set(StrategyRegistry.available_strategies())


def test_a_bad_setting_is_refused_before_torch_or_lightning_is_imported(tmp_path):
    probe, script = tmp_path / "imported.txt", str(Path(train.__file__).resolve())
    code = ("import atexit, runpy, sys\n"
            f"atexit.register(lambda: open({str(probe)!r}, 'w').write(' '.join(sorted("
            "{m.split('.')[0] for m in sys.modules} & {'torch', 'lightning'}))))\n"
            f"sys.argv = [{script!r}, 'model.lr=-1']\n"
            f"sys.path.insert(0, {str(Path(script).parent)!r})  # as python train.py has it\n"
            f"runpy.run_path({script!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (proc.stdout + proc.stderr).strip().endswith("model.lr=-1: allowed: > 0")
    assert probe.read_text() == ""  # neither torch nor lightning was imported
