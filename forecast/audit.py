"""Leakage audit (moved to :mod:`forecast.evaluation.audit`; importable here as well)."""

from forecast.evaluation.audit import Audit, audit, expected_extents, influence

__all__ = ["Audit", "audit", "expected_extents", "influence"]
