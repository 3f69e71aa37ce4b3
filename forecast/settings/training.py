"""Schemas of ``train.py``'s config: the top level and the ``model`` and ``data`` groups,
for series and for fields (the ``trainer`` and ``logger`` groups: :mod:`.running`).
:func:`check_train` refuses a bad setting in one line before any data is read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from forecast.levels import check_levels
from forecast.settings.rules import (
    Rule,
    SettingsError,
    above,
    arguments,
    at_least,
    check_section,
    each,
    fail,
    key,
    one_of,
    within,
)
from forecast.settings.running import check_launch, check_logger, check_trainer

SPLITS = ("train", "val", "test")
CYCLES = ("day", "week", "year", "day_plus_year", "day_minus_year")  # forecast.features.CYCLES
POSITIVE = at_least(1)
DILATIONS = each(POSITIVE)
# quantile levels: the model's own rule, refused as the model would refuse them
LEVELS = Rule(lambda v: _levels_ok(v), "increasing levels inside (0, 1) holding the median "
              "0.5, e.g. [0.05,0.1,0.5,0.9,0.95]")


def _levels_ok(levels: list[float]) -> bool:
    try:
        return bool(check_levels(levels))
    except ValueError:
        return False


@dataclass(frozen=True)
class TrainSettings:
    """Top level of ``configs/train.yaml`` (the groups are checked by their own schemas)."""

    seed: int = key(within(0, 2**32))
    horizon: int = key(POSITIVE)
    patience: int = key(at_least(0))
    eval_batch_size: int = key(POSITIVE)
    field_minutes: float = key(above(0))
    ema_decay: float = key(within(0, 1))
    resume: str | bool | None = key()
    checkpoint_every: int = key(at_least(0))
    model: dict = key()
    data: dict = key()
    trainer: dict = key()
    logger: dict | None = key()


@dataclass(frozen=True)
class NetSettings:
    """The keys every model group shares."""

    _target_: str = key()
    name: str | None = key()
    causal: bool = key()
    channels: int = key(POSITIVE)
    dilations: list[int] | None = key(DILATIONS)
    lr: float = key(above(0))
    weight_decay: float = key(at_least(0))
    horizon: int = key(POSITIVE)


@dataclass(frozen=True)
class ModelSettings(NetSettings):
    """``model=causal|standard``: :class:`forecast.module.ForecastModule`."""

    skip_channels: int = key(POSITIVE)
    kernel_size: int = key(POSITIVE)
    dropout: float = key(within(0, 1))
    members: int = key(POSITIVE)
    linear_lags: int = key(at_least(0))
    feature_lags: int = key(POSITIVE)
    linear_alpha: float = key(at_least(0))
    linear_lr: float = key(at_least(0))
    linear_only: list[str] | None = key()
    warmup_steps: int = key(at_least(0))
    cosine: bool = key()
    impl: str = key(one_of("pad", "mask"))
    quantiles: list[float] | None = key(LEVELS)
    level_window: int = key(at_least(0))
    level_features: list[str] | None = key()
    level_scale: float = key(at_least(0))
    horizon_weights: str = key(one_of("uniform", "inverse_error"))


@dataclass(frozen=True)
class FieldModelSettings(NetSettings):
    """``model=causal3d|standard3d``: :class:`forecast.fields.module.FieldModule`."""

    kernel_time: int = key(POSITIVE)
    kernel_space: int = key(POSITIVE)


@dataclass(frozen=True)
class DataSettings:
    """``data=nyc_weather|csv``: :class:`forecast.data.ForecastDataModule`."""

    _target_: str = key()
    path: str = key()
    time_column: str = key()
    target: str = key()
    covariates: list[str] = key()
    series_id: str | None = key()
    freq: str | None = key()
    time_format: str | None = key()
    max_gap: int = key(at_least(0))
    bounds: dict | None = key()
    splits: dict | None = key()
    fractions: list[float] = key()
    horizon: int = key(POSITIVE)
    span: int = key(POSITIVE)
    train_stride: int = key(POSITIVE)
    batch_size: int = key(POSITIVE)
    num_workers: int = key(at_least(0))
    checksum: str | None = key()
    calendar: list[str] | None = key(each(one_of(*CYCLES), non_empty=False))
    angular: list[str] = key()
    refit: bool = key()


@dataclass(frozen=True)
class FieldDataSettings:
    """``data=era5_uk|field``: :class:`forecast.fields.data.FieldDataModule`."""

    _target_: str = key()
    path: str = key()
    variable: str = key()
    time: str | None = key()
    y: str | None = key()
    x: str | None = key()
    checksum: str | None = key()
    splits: dict | None = key()
    fractions: list[float] = key()
    horizon: int = key(POSITIVE)
    span: int = key(POSITIVE)
    train_stride: int = key(POSITIVE)
    crop: int = key(at_least(0))
    batch_size: int = key(POSITIVE)
    chunk_steps: int | None = key(POSITIVE)
    max_memory_mb: float = key(above(0))
    calendar: list[str] = key(each(one_of(*CYCLES), non_empty=False))
    num_workers: int = key(at_least(0))


def _timestamp(where: str, value: Any, end: bool) -> datetime:
    """``value`` as a naive UTC datetime: ISO 8601 directly, other spellings through pandas
    (imported only then: it costs a third of a second)."""
    text = str(value).strip()
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        import pandas as pd  # the data module reads these spellings too

        try:
            ts = pd.Timestamp(text).to_pydatetime()
        except ValueError:
            raise fail(where, value, "a timestamp such as 2013-01-01 or 2013-01-01T06:00") \
                from None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    if end and len(text) <= 10:  # a date alone: the whole day is included
        ts = ts + timedelta(days=1) - timedelta(microseconds=1)
    return ts


def check_splits(splits: Mapping | None, fractions: list[float] | None, section: str) -> None:
    """All three splits as [start, end], each starting before it ends, in order and apart;
    or else fractions: three positive numbers summing to 1."""
    if splits:
        stray = sorted(set(splits) - set(SPLITS))
        if stray:
            raise fail(f"{section}.splits", dict(splits), f"the keys {', '.join(SPLITS)} "
                       f"(not {', '.join(stray)})")
        given = [s for s in SPLITS if splits.get(s)]
        if given and len(given) < len(SPLITS):
            raise fail(f"{section}.splits", dict(splits), "all of train, val, test as "
                       "[start, end], or data.splits=null to split by data.fractions")
        previous = None
        for name in given:
            where, bounds = f"{section}.splits.{name}", splits[name]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise fail(where, bounds, "[start, end]")
            start, end = _timestamp(where, bounds[0], False), _timestamp(where, bounds[1], True)
            if end < start:
                raise fail(where, bounds, f"an end at or after the start ({bounds[0]})")
            if previous is not None and start <= previous[1]:
                raise fail(where, bounds, f"a start after {previous[0]} ends "
                           f"({splits[previous[0]][1]}): splits in the order train, val, "
                           "test, without overlap")
            previous = (name, end)
    if fractions is not None and not splits and (
            len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6):
        raise fail(f"{section}.fractions", fractions, "3 positive numbers summing to 1")


def check_group(schema: type, section: str, values: Mapping) -> None:
    """A group's keys: the schema's, typed and ranged, and any other argument of its
    ``_target_`` class, unchecked."""
    target = str(values.get("_target_", ""))
    known = [a for a in arguments(target, section, [k for k in values if k != "_target_"])
             if a not in schema.__dataclass_fields__ and a not in ("n_features", "data_spec")]
    check_section(schema, section, values, extra={a: "" for a in known})


def check_series(model: Mapping, data: Mapping) -> None:
    check_group(ModelSettings, "model", model)
    check_group(DataSettings, "data", data)
    causal = model.get("causal", True)
    k = model.get("kernel_size")
    if not causal and k is not None and k % 2 == 0:
        raise fail("model.kernel_size", k, "an odd size with centred padding "
                   "(model.causal=false, as in model=standard)")
    lags, q = model.get("linear_lags"), model.get("feature_lags")
    if not causal and lags and q is not None and q % 2 == 0:
        raise fail("model.feature_lags", q, "an odd number with centred padding "
                   "(model.causal=false)")
    w = model.get("level_window")
    if not causal and w and w > 1 and model.get("level_features") and w % 2 == 0:
        raise fail("model.level_window", w, "an odd window with a centred mean "
                   "(model.causal=false)")
    bounds = data.get("bounds") or {}
    for col, pair in bounds.items():
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int | float) for v in pair) or pair[0] >= pair[1]):
            raise fail(f"data.bounds.{col}", pair, "[low, high] with low < high")
    covariates = data.get("covariates") or []
    stray = [c for c in data.get("angular") or [] if c not in covariates]
    if stray:
        raise fail("data.angular", data["angular"], f"covariates only ({covariates})")
    if data.get("refit") and model.get("cosine"):
        raise fail("model.cosine", True, "false with data.refit=true (the refit trains for the "
                   "early-stopped step count, where a cosine would decay to 0, unlike the net "
                   "validated), or set data.refit=false")


def check_fields(model: Mapping, data: Mapping) -> None:
    check_group(FieldModelSettings, "model", model)
    check_group(FieldDataSettings, "data", data)
    for name, always in (("kernel_space", True), ("kernel_time", False)):
        k = model.get(name)
        if (always or not model.get("causal", True)) and k is not None and k % 2 == 0:
            raise fail(f"model.{name}", k, "an odd size (centred padding)")


def check_train(cfg: Mapping[str, Any], multirun: bool = False,
                env: Mapping[str, str] | None = None) -> None:
    """Refuse the first bad setting of a composed ``train.yaml`` (plain containers);
    ``multirun``: a Hydra sweep, started in an environment ``env`` (os.environ)."""
    check_section(TrainSettings, "", cfg)
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    field_model = str(model.get("_target_", "")).endswith("FieldModule")
    field_data = str(data.get("_target_", "")).endswith("FieldDataModule")
    if field_model != field_data:
        raise SettingsError(
            f"model={model.get('name')} with data={data.get('_target_')}: field nets "
            "(model=causal3d|standard3d) go with field data (data=era5_uk|field), series "
            "nets (model=causal|standard) with series data (data=nyc_weather|csv)")
    (check_fields if field_data else check_series)(model, data)
    trainer = cfg.get("trainer") or {}
    if field_data and (trainer.get("strategy") not in (None, "auto", "single_device")
                       or trainer.get("devices") not in (None, 1, "1")):
        raise fail("trainer.strategy", trainer.get("strategy"), "one process (trainer=default "
                   "or gpu): field runs do not train across devices")
    if field_data and cfg.get("resume"):
        raise fail("resume", cfg["resume"], "null for field runs (data=era5_uk|field): they do "
                   "not resume; start the run again without resume")
    check_splits(data.get("splits"), data.get("fractions"), "data")
    if model.get("horizon") != data.get("horizon"):
        raise fail("model.horizon", model.get("horizon"),
                   f"the data's horizon ({data.get('horizon')}): set horizon=N, which both follow")
    check_trainer(trainer)
    check_launch(trainer, multirun, os.environ if env is None else env)
    if model.get("cosine") and trainer.get("max_steps", -1) < 1:
        raise fail("trainer.max_steps", trainer.get("max_steps"),
                   "a positive step budget when model.cosine=true (it decays over it)")
    if cfg.get("logger"):
        check_logger(cfg["logger"])
