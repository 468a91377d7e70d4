"""Issue 16 point 1: the config is checked completely before any data is read.

Each bad value of the issue's table is refused by `check` and `run` alike with exit
status 2 and one line naming the key; several problems are reported together; column
names are compared with the files' headers only (reading the data would fail here:
the data readers are replaced by a trap).
"""

from __future__ import annotations

import pytest
import yaml

from retention_study import cli
from retention_study.config import StudyConfig, resolve_config
from retention_study.config_file import check_columns, load_config
from retention_study.data import load, readers
from retention_study.errors import ConfigError
from retention_study.runner import run as one_run

HEADER = "customer_id,start_date,end_date,plan,region,satisfaction,exit_reason\n"


@pytest.fixture
def world(tmp_path):
    """Three small event files; only their headers should ever be read by a config check."""
    (tmp_path / "customers.csv").write_text(HEADER + "C1,2025-01-01,,basic,north,3,\n")
    (tmp_path / "price.csv").write_text("customer_id,effective_date,monthly_price\n"
                                        "C1,2025-01-01,10\n")
    (tmp_path / "contact.csv").write_text("customer_id,contact_date,direction\n"
                                          "C1,2025-02-01,outbound\n")
    return tmp_path


@pytest.fixture
def no_data_reads(monkeypatch):
    """Fail the test if anything reads the data beyond the header."""
    def trap(*args, **kwargs):
        raise AssertionError("the data was read before the config was checked")
    # Both names: load imported read_frame by name (and imported now, not while patched).
    monkeypatch.setattr(readers, "read_frame", trap)
    monkeypatch.setattr(load, "read_frame", trap, raising=False)
    monkeypatch.setattr(one_run, "execute_notebook", trap)
    monkeypatch.setattr(one_run, "describe_inputs", trap)


def config_file(folder, text: str | None = None, **sections) -> str:
    raw = {"name": "probe",
           "data": {"customers": str(folder / "customers.csv"),
                    "price_events": str(folder / "price.csv"),
                    "contact_events": str(folder / "contact.csv"), "as_of": "2026-06-30"}}
    for sec, values in sections.items():
        raw[sec] = raw.get(sec, {}) | values if isinstance(values, dict) else values
    path = folder / "probe.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, [line for line in err.splitlines() if "error" in line or "FAILED" in line]


# One row per bad value of the issue-16 table: (section, key, value, words of the message).
BAD_VALUES = [
    ("study", "alpha", "0.05", "study.alpha must be a finite number in (0, 1)"),
    ("study", "alpha", 2, "study.alpha must be a number in (0, 1), not 2"),
    ("study", "alpha", 0, "study.alpha must be a number in (0, 1), not 0"),
    ("study", "alpha", float("nan"), "study.alpha must be a finite number"),
    ("study", "seed", "abc", "study.seed must be a whole number >= 0, not 'abc'"),
    ("study", "lag_days", "thirty", "study.lag_days must be a whole number >= 0"),
    ("study", "min_departures", "x", "study.min_departures must be a whole number >= 1"),
    ("report", "timeout_per_cell", "abc", "report.timeout_per_cell must be a finite number > 0"),
    ("study", "cv_folds", 1.5, "study.cv_folds must be a whole number >= 2, not 1.5"),
    ("study", "cv_folds", 1, "study.cv_folds must be a whole number >= 2, not 1"),
    ("study", "cv_folds", -3, "study.cv_folds must be a whole number >= 2, not -3"),
    ("study", "bootstrap", -5, "study.bootstrap must be a whole number >= 1, not -5"),
    ("study", "grid", "year", "study.grid must be one of month, week, day, not 'year'"),
    ("study", "lag_days", -30, "study.lag_days must be a whole number >= 0, not -30"),
    ("study", "contact_cap_months", 0, "study.contact_cap_months must be a number >= 1"),
    ("study", "reason_groups", ["price", "other"], "study.reason_groups must map a group"),
    ("study", "satisfaction_thresholds", [4, 2], "study.satisfaction_thresholds must rise"),
    ("data", "controls", {"plan": 1}, "data.controls must be a list of column names"),
    ("data", "controls", ["plan", "plan"], "data.controls names column 'plan' twice"),
    ("data", "exit_reason", "why_left", "data.exit_reason: no column 'why_left' in"),
    ("data", "segments", ["regoin"], "no column 'regoin' in"),
    ("report", "timeout_per_cell", True, "report.timeout_per_cell must be a finite number"),
    ("data", "as_of", "30/13/2026", "data.as_of cannot read '30/13/2026' as a date"),
]


@pytest.mark.parametrize("section, name, value, message", BAD_VALUES,
                         ids=[f"{s}.{k}={v!r}" for s, k, v, _ in BAD_VALUES])
def test_check_and_run_refuse_a_bad_value_before_reading_data(
        world, no_data_reads, capsys, section, name, value, message):
    path = config_file(world, **{section: {name: value}})
    status, lines = run_cli(capsys, "check", path)
    assert status == 2
    assert len(lines) == 1 and message in lines[0], lines
    status, lines = run_cli(capsys, "run", path, "--out", str(world / "reports"))
    assert status == 2
    assert len(lines) == 1 and message in lines[0], lines


def test_every_problem_is_reported_at_once_one_line_each(world, no_data_reads, capsys):
    path = config_file(world, study={"alpha": 2, "cv_folds": 1, "grid": "year",
                                     "lag_dyas": 3},
                       data={"controls": ["plan", "nope"], "on_invalid": "drop"})
    status, lines = run_cli(capsys, "check", path)
    assert status == 2
    text = "\n".join(lines)
    for words in ("study.alpha", "study.cv_folds", "study.grid",
                  "unknown key 'study.lag_dyas' (did you mean 'lag_days'?)",
                  "data.on_invalid must be one of error, exclude"):
        assert words in text
    assert len(lines) == 5, lines


def test_header_problems_are_listed_together_with_the_closest_name(world, no_data_reads):
    cfg = resolve_config(yaml.safe_load(open(config_file(
        world, data={"controls": ["Plan"], "segments": ["region", "regio"],
                     "satisfaction": "satisfactoin"}))))
    with pytest.raises(ConfigError) as err:
        check_columns(cfg)
    assert len(err.value.problems) == 3
    assert "data.controls: no column 'Plan'" in err.value.problems[0]
    assert "(did you mean 'plan'?)" in err.value.problems[0]
    assert "(did you mean 'satisfaction'?)" in err.value.problems[2]


def test_a_table_config_checks_its_mapping_against_the_header(tmp_path, no_data_reads):
    table = tmp_path / "t.csv"
    table.write_text("id;Tenure;Left;Fee\n1;3;yes;10\n")
    raw = {"data": {"format": "table", "path": str(table), "duration": "tenure",
                    "event": {"column": "Left", "values": ["yes"]}, "price": ["Fee"],
                    "id": "ID"}}
    with pytest.raises(ConfigError) as err:
        check_columns(resolve_config(raw))
    assert [p.split(": ", 1)[1] for p in err.value.problems] == [
        f"data.duration: no column 'tenure' in {table} (did you mean 'Tenure'?)",
        f"data.id: no column 'ID' in {table} (did you mean 'id'?)"]


def test_a_table_without_its_mapping_is_refused():
    with pytest.raises(ConfigError) as err:
        resolve_config({"data": {"format": "table"}})
    assert [p.split(": ", 1)[1] for p in err.value.problems] == [
        "data.path is required when data.format is 'table'",
        "data.duration is required when data.format is 'table'",
        "data.event is required when data.format is 'table'"]


def test_a_duplicate_yaml_key_is_refused(world, capsys):
    path = config_file(world, text="name: a\nstudy:\n  alpha: 0.05\n  alpha: 0.1\n")
    status, lines = run_cli(capsys, "check", path)
    assert status == 2
    assert lines == [f"retention-study: error: {path}: key 'alpha' appears twice "
                     "(lines 3 and 4)"]


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", b"name: a\x00b\n"],
                         ids=["binary", "nul-byte"])
def test_a_binary_config_is_exit_2(world, capsys, content):
    path = world / "bad.yaml"
    path.write_bytes(content)
    for command in ("check", "run"):
        status, lines = run_cli(capsys, command, str(path))
        assert status == 2 and len(lines) == 1, lines
        assert str(path) in lines[0]


def test_an_unreadable_config_is_exit_2(world, capsys, monkeypatch):
    path = config_file(world)

    def denied(self):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("pathlib.Path.read_bytes", denied)
    status, lines = run_cli(capsys, "check", path)
    assert status == 2
    assert lines == [f"retention-study: error: {path}: cannot read the config "
                     "(Permission denied)"]


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../etc", "x\\y", "tab\there", ""])
def test_a_run_name_must_be_a_plain_folder_name(world, no_data_reads, capsys, name):
    path = config_file(world, name=name)
    status, lines = run_cli(capsys, "check", path)
    assert status == 2 and len(lines) == 1, lines
    assert "name must" in lines[0]


def test_from_dict_and_to_dict_round_trip_json_plain_values():
    import json

    cfg = StudyConfig.from_dict({"data": {"controls": "plan", "as_of": "2026-03-31T10:00"},
                                 "study": {"lag_days": 30.0}})
    plain = cfg.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert plain["data"]["controls"] == ["plan"]
    assert plain["data"]["as_of"] == "2026-03-31"
    assert plain["study"]["lag_days"] == 30 and isinstance(plain["study"]["lag_days"], int)
    assert StudyConfig.from_dict(plain) == cfg


def test_observation_start_must_precede_as_of():
    with pytest.raises(ConfigError, match="data.observation_start .2026-07-01. must be before"):
        resolve_config({"data": {"observation_start": "2026-07-01"}})


def test_load_config_reads_only_headers_of_the_sample_configs(no_data_reads):
    from retention_study.config import CONFIGS_DIR

    for path in sorted(CONFIGS_DIR.glob("*.yaml")):
        assert load_config(path)["name"]


def test_an_override_is_checked_like_the_file(world, no_data_reads, capsys):
    path = config_file(world)
    status, lines = run_cli(capsys, "check", path, "-p", "study.alpha=five percent",
                            "-p", "data.where={plan: a, plan: b}")
    assert status == 2
    assert lines == ["retention-study: error: -p data.where={plan: a, plan: b}: key 'plan' "
                     "appears twice (lines 1 and 1)"]
    status, lines = run_cli(capsys, "check", path, "-p", "study.alpha=five percent")
    assert status == 2
    assert lines == [f"retention-study: error: {path}: study.alpha must be a finite number "
                     "in (0, 1), not 'five percent'"]
