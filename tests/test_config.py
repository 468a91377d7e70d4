"""Config: defaults, unknown keys, overrides, dates kept as ISO strings."""

from __future__ import annotations

import pandas as pd
import pytest

from retention_study.config import resolve_config
from retention_study.config_file import apply_overrides, load_config, parse_override
from retention_study.config_keys import parse_date
from retention_study.errors import ConfigError


def test_defaults_fill_missing_keys():
    cfg = resolve_config({"name": "x", "study": {"lag_days": 30}})
    assert cfg["name"] == "x" and cfg["study"]["lag_days"] == 30  # what is given stays
    # what is missing takes the default the README documents ("The run config")
    assert cfg["study"]["alpha"] == 0.05 and cfg["study"]["cv_folds"] == 5
    assert cfg["study"]["bootstrap"] == 200 and cfg["study"]["equivalence_margin"] == 0.05
    assert cfg["data"]["on_invalid"] == "error" and cfg["data"]["controls"] == []


def test_yaml_date_becomes_iso_string(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\ndata:\n  as_of: 2026-06-30\n  controls: plan\n")
    cfg = load_config(path)
    assert cfg["data"]["as_of"] == "2026-06-30"
    assert cfg["data"]["controls"] == ["plan"]


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match="did you mean 'as_of'"):
        resolve_config({"data": {"asof": "2026-01-01"}})


def test_bad_choice_and_bad_date():
    with pytest.raises(ConfigError, match="data.format"):
        resolve_config({"data": {"format": "flat"}})
    with pytest.raises(ConfigError, match="data.as_of"):
        resolve_config({"data": {"as_of": "30/13/2026"}})


def test_overrides_are_dotted_and_typed():
    assert parse_override("study.lag_days=30") == (["study", "lag_days"], 30)
    raw = apply_overrides({"study": {"alpha": 0.05}}, ["study.alpha=0.01", "name=b"])
    assert raw == {"study": {"alpha": 0.01}, "name": "b"}
    with pytest.raises(ConfigError):
        parse_override("study.alpha")


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_parse_date_normalises():
    assert parse_date("2026-06-30T13:00", "x") == pd.Timestamp("2026-06-30")
