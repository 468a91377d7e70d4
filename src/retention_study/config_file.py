"""A run config file: YAML read strictly, ``key=value`` overrides, the files' headers.

:func:`load_config` is the one way from a YAML path to a checked config dict:
read (duplicate keys refused), overrides applied, defaults merged and checked
(:func:`retention_study.config.resolve_config`), then every column the config names
looked up in its file's header (:func:`check_columns`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from retention_study.config import AUTO_CONTROLS, resolve_config
from retention_study.config_keys import suggest
from retention_study.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``-p key=value`` (dotted keys, YAML values) into a path and a value.

    Examples
    --------
    >>> parse_override("study.lag_days=30")
    (['study', 'lag_days'], 30)
    """
    if "=" not in text:
        raise ConfigError(f"-p {text}: expected key=value")
    name, raw = text.split("=", 1)
    try:
        value = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"-p {text}: the value is not valid YAML") from None
    except ConfigError as exc:
        raise ConfigError(f"-p {text}: {exc}") from None
    return name.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a raw (unmerged) config mapping."""
    raw = copy.deepcopy(raw)
    for text_ in overrides:
        path, value = parse_override(text_)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"-p {text_}: '{part}' is not a section")
        node[path[-1]] = value
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the last one would win silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            name = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if name in seen:
                raise ConfigError(f"key '{name}' appears twice (lines {seen[name]} and {line})")
            seen[name] = line
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _UniqueKeyLoader.construct_mapping)


def read_yaml(path: Path) -> Any:
    """The YAML in ``path``; every way it can be unreadable is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        content = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML config is UTF-8 text)") from None
    try:
        return yaml.load(content, Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None


def load_config(path: str | Path, overrides: list[str] | None = None,
                check_files: bool = True) -> dict[str, Any]:
    """Read a YAML run config, apply ``key=value`` overrides, merge defaults, check.

    With ``check_files`` the column names the config mentions are compared with the
    input files' headers (:func:`check_columns`). Relative data paths are kept
    relative to the working directory (run from the project root, as the README and
    the Makefile do).
    """
    path = Path(path)
    raw = read_yaml(path)
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(raw or {}, overrides or [])
    cfg = resolve_config(raw, where=str(path))
    if check_files:
        check_columns(cfg, where=str(path))
    return cfg


# --------------------------------------------------------------------------- headers


def mentioned_columns(cfg: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(file spec, config key, column) for every column the config names.

    Examples
    --------
    >>> cfg = resolve_config({"data": {"controls": ["plan"], "where": {"region": "n"}}})
    >>> [(k, c) for _, k, c in mentioned_columns(cfg)]
    [('data.controls', 'plan'), ('data.where', 'region')]
    """
    d = cfg["data"]
    # controls: auto names no column; the confounder scan picks them from the data
    named = [(f"data.{k}", c) for k in ("controls", "segments") for c in d[k]
             if not (k == "controls" and d[k] == AUTO_CONTROLS)]
    named += [(f"data.{k}", d[k]) for k in ("satisfaction", "exit_reason") if d[k]]
    named += [("data.where", c) for c in d["where"]]
    if d["format"] == "events":
        # Shape A's own columns (customer_id, dates...) are the data contract's to check.
        return [(str(d["customers"]), k, c) for k, c in named]
    named += [(f"data.{k}", c) for k in ("price", "contact") for c in d[k]]
    named += [(f"data.{k}", d[k]) for k in ("duration", "id") if d[k]]
    if d["event"]:
        named.append(("data.event.column", d["event"]["column"]))
    files = d["path"] if isinstance(d["path"], list) else [d["path"]]
    return [(str(f), k, c) for f in files for k, c in named]


def check_columns(cfg: Mapping[str, Any], where: str = "config") -> None:
    """Every column the config names exists in its file's header (only headers are read).

    A file that cannot be opened is left to the data contract (it names the file).

    Raises
    ------
    ConfigError
        One line per missing column, with the closest header name.
    """
    from retention_study.data.readers import read_header

    d = cfg["data"]
    problems, headers = [], {}
    for spec, name, column in mentioned_columns(cfg):
        if spec not in headers:
            headers[spec] = read_header(spec, table=d["table"], delimiter=d["delimiter"],
                                        encoding=d["encoding"])
        header = headers[spec]
        if header is not None and column not in header:
            problems.append(f"{where}: {name}: no column '{column}' in {spec}"
                            f"{suggest(column, header)}")
    if problems:
        raise ConfigError(problems)
