"""Schema of ``evaluate.py``'s config (``configs/evaluate.yaml``); the baselines group is
checked by the baselines themselves when they are built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forecast.settings.rules import Rule, at_least, check_section, key, within

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
