"""Settings checked before any work: the entry points hand their composed config, as plain
containers, to :func:`check_train`, :func:`check_evaluate` or :func:`check_select`, which
refuse the first unknown key, missing value, wrong type or out-of-range value in one line
naming the key and the allowed values (:class:`SettingsError`)."""

from forecast.settings.evaluation import check_evaluate, check_select
from forecast.settings.rules import SettingsError
from forecast.settings.training import check_train

__all__ = ["SettingsError", "check_evaluate", "check_select", "check_train"]
