"""Ledger arithmetic: rows in minus every exclusion equals rows analysed."""

from retention_study.data.ledger import Ledger


def test_rows_analysed_and_summary():
    led = Ledger()
    led.rows_in("customers", 100)
    led.exclude("customers", "duplicate customer_id", 3)
    led.exclude("customers", "joined after as_of", 5, kind="out_of_scope")
    led.note("customers", "blank TotalCharges read as missing", 2)
    led.exclude("customers", "nothing", 0)
    assert led.rows_analysed("customers") == 92
    s = led.summary
    assert list(s["step"]) == ["rows in", "duplicate customer_id", "joined after as_of",
                               "blank TotalCharges read as missing", "rows analysed"]
    assert s["rows"].tolist() == [100, -3, -5, 2, 92]
    d = led.to_dict()
    assert d["rows_analysed"] == {"customers": 92}
    assert len(d["excluded"]) == 2 and len(d["notes"]) == 1
