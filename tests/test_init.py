"""``retention-study init``: a starter config from a company's files that passes
``check`` on them; its guesses are compared with the hand-written configs of the same
files (configs/ibm_telco.yaml, configs/bigml_telecom.yaml) and with the simulated
sample's known layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from retention_study import cli
from retention_study.config_file import load_config
from retention_study.data.cells import normalise_tokens
from retention_study.data.load import load_study_data
from retention_study.errors import ConfigError
from retention_study.init import starter_config

ROOT = Path(__file__).resolve().parents[1]
REAL = Path("../shared/data/real")
EVENTS = ("customers", "price_events", "contact_events")


def _init(tmp_path: Path, *files) -> tuple[dict, Path]:
    out = tmp_path / "starter.yaml"
    assert cli.main(["init", *map(str, files), "-o", str(out)]) == 0
    return yaml.safe_load(out.read_text()), out


def test_init_on_the_sample_csvs_passes_check(tmp_path, small_sample, capsys):
    files = [small_sample / f"{k}.csv" for k in EVENTS]
    # in another order: the files are told apart by their columns
    cfg, out = _init(tmp_path, files[2], files[0], files[1])
    data = cfg["data"]
    assert data["format"] == "events" and data["columns"] == {}
    assert [data[k] for k in EVENTS] == [str(f) for f in files]
    assert data["controls"] == ["plan", "region"] and data["satisfaction"] == "satisfaction"
    assert data["exit_reason"] == "exit_reason"
    dates = [pd.to_datetime(pd.read_csv(f)[c]).max() for f in files
             for c in pd.read_csv(f, nrows=0).columns if c.endswith("_date")]
    assert data["as_of"] == max(dates).date().isoformat()
    capsys.readouterr()
    assert cli.main(["check", str(out)]) == 0
    assert "ready for analysis" in capsys.readouterr().out


def test_init_on_ibm_telco_guesses_what_the_hand_written_config_says(tmp_path, capsys):
    cfg, out = _init(tmp_path, REAL / "ibm_telco_customer_churn.csv")
    hand = load_config(ROOT / "configs" / "ibm_telco.yaml")["data"]
    data = cfg["data"]
    for key in ("format", "id", "duration", "duration_unit", "event", "price", "contact",
                "contact_kind", "segments"):
        assert data[key] == hand[key], key
    assert set(hand["controls"]) <= set(data["controls"]) | {"Contract"}
    text = out.read_text()
    assert "# left out of price: TotalCharges (11 blank cells)" in text
    assert "  contact: [TechSupport]  # named like contact" in text
    capsys.readouterr()
    assert cli.main(["check", str(out)]) == 0
    assert "ok: 7032 customers ready for analysis" in capsys.readouterr().out


def test_init_on_both_bigml_files(tmp_path):
    files = [REAL / "telecom_churn_bigml_80.csv", REAL / "telecom_churn_bigml_20.csv"]
    cfg, out = _init(tmp_path, *files)
    hand = load_config(ROOT / "configs" / "bigml_telecom.yaml")["data"]
    for key in ("path", "duration", "price", "contact", "contact_kind", "controls"):
        assert cfg["data"][key] == hand[key], key
    assert cfg["data"]["event"]["column"] == hand["event"]["column"]
    assert normalise_tokens(cfg["data"]["event"]["values"]).tolist() == \
        normalise_tokens(hand["event"]["values"]).tolist() == ["1", "1"]
    assert cfg["data"]["duration_unit"] == "months"  # wrong (days): the comment says check it
    assert "duration_unit: months  # guessed from the name: check it" in out.read_text()
    assert load_study_data(load_config(out)).n_customers == 3328


def test_init_maps_a_dutch_export(tmp_path, small_sample):
    names = {"customers": {"customer_id": "Klantnr", "start_date": "Startdatum",
                           "end_date": "Einddatum", "notice_date": "Opzegdatum"},
             "price_events": {"customer_id": "Klantnr", "effective_date": "Ingangsdatum",
                              "monthly_price": "Maandprijs"},
             "contact_events": {"customer_id": "Klantnr", "contact_date": "Datum",
                                "direction": "Richting"}}
    files = []
    for key in EVENTS:
        frame = pd.read_csv(small_sample / f"{key}.csv", dtype=str).rename(columns=names[key])
        if key == "contact_events":
            frame["Richting"] = frame["Richting"].map({"outbound": "Uitgaand",
                                                       "inbound": "Inkomend"})
        files.append(tmp_path / f"{key}_nl.csv")
        frame.to_csv(files[-1], index=False, sep=";")
    cfg, out = _init(tmp_path, *files)
    assert cfg["data"]["columns"] == names
    assert cfg["data"]["direction_values"] == {"outbound": ["Uitgaand"], "inbound": ["Inkomend"]}
    reference = load_study_data(load_config(ROOT / "configs" / "example_events.yaml", [
        f"data.{k}={small_sample / k}.csv" for k in EVENTS] + [
        f"data.as_of={cfg['data']['as_of']}", "data.observation_start=null"]))
    data = load_study_data(load_config(out))
    assert data.n_customers == reference.n_customers
    assert data.contact_events["direction"].value_counts().to_dict() == \
        reference.contact_events["direction"].value_counts().to_dict()


def test_init_refuses_what_it_cannot_guess(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    with pytest.raises(ConfigError, match="no duration column found"):
        starter_config([path])
    out = tmp_path / "exists.yaml"
    out.write_text("name: x\n")
    assert cli.main(["init", str(REAL / "ibm_telco_customer_churn.csv"), "-o", str(out)]) == 2
    assert out.read_text() == "name: x\n"


def test_init_prints_without_out(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("Klantnr,Looptijd,Opgezegd,Pakket\nA,3,ja,a\nB,5,nee,b\nC,2,nee,a\n")
    assert cli.main(["init", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Starter config written by `retention-study init`")
    data = yaml.safe_load(text)["data"]
    assert (data["id"], data["duration"], data["event"]) == (
        "Klantnr", "Looptijd", {"column": "Opgezegd", "values": ["ja"]})
