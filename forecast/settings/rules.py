"""The checker behind the settings schemas: a schema is a dataclass whose fields are the
allowed keys of one config section, typed by their annotations, each with an optional
:class:`Rule` (the allowed values) in its metadata.

It reads plain containers (dicts, lists, numbers, strings), as the entry points get from
``OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)``; it knows nothing of
Hydra. Every refusal is one :class:`SettingsError` line naming the key, the value and what
is allowed.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from forecast.settings.signatures import ARGUMENTS

MISSING = "???"  # OmegaConf's mark of a value the user must give


class SettingsError(ValueError):
    """A setting that is unknown, missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class Rule:
    """The allowed values of one key: ``ok(value)`` and how to say it (``text``)."""

    ok: Callable[[Any], bool]
    text: str


def key(rule: Rule | None = None) -> Any:
    """A schema field: optional in the config (the constructor's default applies)."""
    return dataclasses.field(default=None, metadata={"rule": rule} if rule else {})


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f">= {low}")


def above(low: float) -> Rule:
    return Rule(lambda v: v > low, f"> {low}")


def within(low: float, high: float, high_open: bool = True) -> Rule:
    if high_open:
        return Rule(lambda v: low <= v < high, f"in [{low}, {high})")
    return Rule(lambda v: low <= v <= high, f"in [{low}, {high}]")


def between(low: float, high: float) -> Rule:
    """Strictly inside (low, high)."""
    return Rule(lambda v: low < v < high, f"in ({low}, {high})")


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


def each(rule: Rule, non_empty: bool = True) -> Rule:
    """Every item of a list satisfies ``rule`` (and the list is not empty)."""
    return Rule(lambda v: (bool(v) or not non_empty) and all(rule.ok(x) for x in v),
                f"a {'non-empty ' if non_empty else ''}list, each {rule.text}")


def either(*rules: Rule) -> Rule:
    return Rule(lambda v: any(_safe(r, v) for r in rules), " or ".join(r.text for r in rules))


def _safe(rule: Rule, value: Any) -> bool:
    try:
        return bool(rule.ok(value))
    except TypeError:  # a rule for numbers asked about a string, ...
        return False


def _is(value: Any, kind: Any) -> bool:
    """Whether a plain value matches a type annotation (bool is not an int here)."""
    if kind is Any:
        return True
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, list) and all(_is(v, item) for v in value)
    if origin is dict or kind is dict:
        return isinstance(value, dict)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def describe(kind: Any) -> str:
    """An annotation in words: ``int | None`` -> 'an int or null'."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(k) for k in typing.get_args(kind))
    if kind is type(None):
        return "null"
    if origin is list:
        return f"a list of {describe(typing.get_args(kind)[0]).split(' ', 1)[1]}s"
    if origin is dict or kind is dict:
        return "a mapping {key: value}"
    names = {int: "an int", float: "a number", bool: "a bool (true or false)", str: "a string"}
    return names.get(kind, "any value")


def fail(where: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"{where}={value!r}: allowed: {allowed}")


def check_section(schema: type, section: str, values: Mapping[str, Any],
                  extra: Mapping[str, str] | None = None) -> None:
    """Refuse unknown keys, missing (``???``) values, wrong types and values outside each
    field's rule. ``extra``: keys allowed beyond the schema's, unchecked (name -> why)."""
    hints = typing.get_type_hints(schema)
    names = [f.name for f in dataclasses.fields(schema)]
    extra = extra or {}
    for name, value in values.items():
        where = f"{section}.{name}" if section else name
        if name not in hints and name not in extra:
            allowed = ", ".join([*names, *extra])
            raise SettingsError(f"{where}: unknown key; allowed keys of "
                                f"{section or 'the top level'}: {allowed}")
        if value == MISSING:
            raise SettingsError(f"{where} is required: set it on the command line "
                                f"({where}=...)")
        if name not in hints:
            continue
        rule = schema.__dataclass_fields__[name].metadata.get("rule")
        if not _is(value, hints[name]):
            also = f" {rule.text}" if rule else ""
            raise SettingsError(f"{where}={value!r}: expected {describe(hints[name])}{also}")
        if rule is not None and value is not None and not _safe(rule, value):
            raise fail(where, value, rule.text)


def arguments(target: str, section: str, keys: Iterable[str] = ()) -> list[str]:
    """The constructor arguments of the class a group's ``_target_`` names: from
    :data:`forecast.settings.signatures.ARGUMENTS` (no import) for this project's classes,
    and for others when it holds every one of ``keys`` (a newer Lightning may take more),
    else from the class itself."""
    static = ARGUMENTS.get(target)
    if static is not None and (target.startswith("forecast.") or set(keys) <= set(static)):
        return list(static)
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise fail(f"{section}._target_", target, "an importable class") from None
    return [p.name for p in inspect.signature(cls).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
