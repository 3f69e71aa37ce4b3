"""Schema of ``evaluate.py``'s config (``configs/evaluate.yaml``); the baselines group is
checked by the baselines themselves when they are built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forecast.settings.rules import Rule, SettingsError, at_least, check_section, key, within

POSITIVE = at_least(1)


@dataclass(frozen=True)
class EvaluateSettings:
    """Top level of ``configs/evaluate.yaml``."""

    baselines: dict = key()
    runs: list[str] | None = key()
    search: list[str] = key()
    station: str = key()
    units: str = key()
    figure_lead: int = key(POSITIVE)
    week_start: str | None = key()
    audit_batch: int = key(POSITIVE)
    audit_rows: int = key(POSITIVE)
    docs_dir: str | None = key()
    batch_size: int = key(POSITIVE)
    calibration_days: int | None = key(POSITIVE)
    calibration_scaled: bool = key()
    calibration_rate: float | None = key(Rule(lambda v: 0 < v <= 1, "in (0, 1]"))
    field: bool = key()
    point_run: str | None = key()
    point: dict = key()
    map_time: str | None = key()
    gif_lead: int = key(POSITIVE)
    gif_hours: int = key(POSITIVE)


@dataclass(frozen=True)
class PointSettings:
    """``point``: the grid point compared with a 1-D run (``point_run``)."""

    name: str = key()
    lat: float = key(within(-90, 90, high_open=False))
    lon: float = key(within(-180, 360, high_open=False))


def check_evaluate(cfg: Mapping[str, Any]) -> None:
    """Refuse the first bad setting of a composed ``evaluate.yaml`` (plain containers)."""
    check_section(EvaluateSettings, "", cfg)
    check_section(PointSettings, "point", cfg.get("point") or {})


def _timedelta(value: Any) -> bool:
    import pandas as pd  # only when a selection is checked

    try:
        return pd.Timedelta(str(value)) > pd.Timedelta(0)
    except ValueError:
        return False


POSITIVE_SPAN = Rule(_timedelta, "a positive pandas Timedelta, e.g. 30D or 336h")


@dataclass(frozen=True)
class SelectSettings:
    """Top level of ``configs/select.yaml`` (``selection.py``); each variant's training
    settings are checked as ``train.py``'s, by :func:`check_train`."""

    baselines: dict = key()
    variants: dict | None = key()
    folds: int = key(POSITIVE)
    fold_length: str = key(POSITIVE_SPAN)
    stop_length: str = key(POSITIVE_SPAN)
    seeds: list[int] = key(Rule(lambda v: len(v) > 0 and len(set(v)) == len(v),
                                "at least one seed, each once"))
    train_overrides: list[str] = key()
    units: str = key()
    batch_size: int = key(POSITIVE)


def check_select(cfg: Mapping[str, Any]) -> None:
    """Refuse the first bad setting of a composed ``select.yaml`` (plain containers)."""
    check_section(SelectSettings, "", cfg)
    if not cfg.get("variants") and not cfg.get("baselines"):
        raise SettingsError("variants and baselines are both empty: nothing to compare; "
                            "choose variants=default (or another file in configs/variants)")
    for name, overrides in (cfg.get("variants") or {}).items():
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise SettingsError(f"variants.{name}={overrides!r}: expected a list of training "
                                "overrides such as ['model.channels=16']")
