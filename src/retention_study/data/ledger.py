"""The data-quality ledger: nothing is dropped silently.

Every row that leaves the analysis is counted here by table and reason, and the
report shows the ledger. ``kind`` tells an invalid row excluded under
``on_invalid: exclude`` (``"invalid"``) from a row that is legitimately out of
scope (``"out_of_scope"``, e.g. customers who joined after as_of) and from a
redundant copy dropped whatever ``on_invalid`` says because it changes nothing
(``"duplicate"``, an exact copy of a price row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class LedgerEntry:
    table: str
    reason: str
    rows: int
    kind: str = "invalid"  # invalid | out_of_scope | duplicate | note


@dataclass
class Ledger:
    """Rows in, rows out per reason, rows analysed, per table.

    Examples
    --------
    >>> led = Ledger()
    >>> led.rows_in("customers", 10)
    >>> led.exclude("customers", "start_date after as_of", 2, kind="out_of_scope")
    >>> led.rows_analysed("customers")
    8
    >>> led.summary["rows"].tolist()
    [10, -2, 8]
    """

    inputs: dict[str, int] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)

    def rows_in(self, table: str, n: int) -> None:
        self.inputs[table] = int(n)

    def exclude(self, table: str, reason: str, n: int, kind: str = "invalid") -> None:
        """Count ``n`` rows of ``table`` removed for ``reason`` (zero counts are skipped)."""
        if n:
            self.entries.append(LedgerEntry(table, reason, int(n), kind))

    def note(self, table: str, reason: str, n: int) -> None:
        """Count rows that were kept but changed or flagged (e.g. blank charge read as missing)."""
        if n:
            self.entries.append(LedgerEntry(table, reason, int(n), "note"))

    def rows_analysed(self, table: str) -> int:
        out = sum(e.rows for e in self.entries if e.table == table and e.kind != "note")
        return self.inputs.get(table, 0) - out

    @property
    def summary(self) -> pd.DataFrame:
        """One row per table and step: rows in, each exclusion, rows analysed."""
        rows = []
        for table, n in self.inputs.items():
            rows.append({"table": table, "step": "rows in", "kind": "input", "rows": n})
            for e in self.entries:
                if e.table == table:
                    sign = 1 if e.kind == "note" else -1
                    rows.append({"table": table, "step": e.reason, "kind": e.kind, "rows": sign * e.rows})
            rows.append({"table": table, "step": "rows analysed", "kind": "output",
                         "rows": self.rows_analysed(table)})
        return pd.DataFrame(rows, columns=["table", "step", "kind", "rows"])

    def to_dict(self) -> dict:
        return {
            "rows_in": dict(self.inputs),
            "excluded": [e.__dict__ for e in self.entries if e.kind != "note"],
            "notes": [e.__dict__ for e in self.entries if e.kind == "note"],
            "rows_analysed": {t: self.rows_analysed(t) for t in self.inputs},
        }
