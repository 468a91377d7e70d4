"""The study notebook's parameters: config sections papermill can override key by key.

papermill replaces a whole dict parameter, so the notebook's parameters cell builds
each section with :func:`notebook_parameters` (a :class:`Section` that also takes
``section.key = value``), and :func:`notebook_config` merges what papermill injected
with the package's defaults into a checked config.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from retention_study.config import SECTIONS, merge_sections, resolve_config
from retention_study.config_keys import suggest
from retention_study.errors import ConfigError

# --------------------------------------------------------------------------- the notebook


class Section(dict):
    """A config section in the notebook: a dict that also takes ``section.key = value``.

    ``papermill -p study.lag_days 30`` injects the line ``study.lag_days = 30``.

    Examples
    --------
    >>> study = Section({"lag_days": 0}); study.lag_days = 30; study
    {'lag_days': 30}
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


#: The notebook's own defaults (its parameters cell), which partial papermill dicts merge with.
NOTEBOOK_DEFAULTS: dict[str, dict[str, Any]] = {}


def notebook_parameters(section: str, values: dict[str, Any]) -> Section:
    """Remember ``values`` as the notebook's defaults of ``section``; return them as a Section.

    The notebook's parameters cell calls this, so that ``-y '{"data": {"on_invalid":
    "exclude"}}'`` (which papermill injects as a whole new dict) changes one key and
    keeps the notebook's other defaults (see :func:`notebook_config`).
    """
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section '{section}'{suggest(section, list(SECTIONS))}")
    NOTEBOOK_DEFAULTS[section] = copy.deepcopy(dict(values))
    return Section(values)


def notebook_config(name: str, data: Mapping | None, study: Mapping | None,
                    report: Mapping | None) -> dict[str, Any]:
    """The notebook's parameters merged over its own defaults, checked.

    Examples
    --------
    >>> _ = notebook_parameters("data", {"on_invalid": "error", "controls": ["plan"]})
    >>> cfg = notebook_config("x", {"on_invalid": "exclude"}, None, None)
    >>> cfg["data"]["on_invalid"], cfg["data"]["controls"]
    ('exclude', ['plan'])
    >>> NOTEBOOK_DEFAULTS.clear()
    """
    given = {"name": name, "data": data or {}, "study": study or {}, "report": report or {}}
    raw = merge_sections({k: v for k, v in NOTEBOOK_DEFAULTS.items()}, given)
    return resolve_config(raw, where="notebook parameters")
