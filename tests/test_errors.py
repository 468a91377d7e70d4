from retention_study.errors import AnalysisError, ConfigError, DataContractError


def test_data_contract_error_is_one_line_and_names_culprit():
    e = DataContractError("unparseable date 'x'\nmore", file="a.csv", column="start_date",
                          rows=list(range(1, 9)), kind="bad_date")
    text = str(e)
    assert "\n" not in text
    assert text.startswith("a.csv: column start_date:")
    assert "rows 1, 2, 3, 4, 5 and 3 more" in text
    assert e.exit_status == 2 and e.kind == "bad_date"


def test_exit_statuses():
    assert ConfigError("x").exit_status == 2
    assert AnalysisError("x").exit_status == 1
