"""The command line: exit statuses and one-line errors a scheduler can read."""

from __future__ import annotations

import json

from retention_study import cli


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_simulate_writes_files_and_truth(tmp_path, capsys):
    assert cli.main(["simulate", "--out", str(tmp_path), "--customers", "60", "--seed", "4",
                     "--preset", "price", "--hr-price-gap", "1.2"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["contact_events.csv", "customers.csv", "price_events.csv", "truth.json"]
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["effects"]["hr_price_gap_10pct"] == 1.2  # the option overrides the preset
    assert truth["preset"] == "price"


def test_unknown_preset_is_a_config_error(tmp_path, capsys):
    assert cli.main(["simulate", "--out", str(tmp_path), "--preset", "cheap"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cheap" in line and "contact" in line


def test_missing_config_exits_2(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in _one_line(capsys.readouterr().err)


def test_unexpected_failure_is_one_line_with_status_1(monkeypatch, tmp_path, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("retention_study.config_file.load_config", boom)
    assert cli.main(["check", str(tmp_path / "x.yaml")]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "RuntimeError: disk on fire" in line and "--debug" in line
