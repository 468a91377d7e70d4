"""Named exceptions. The CLI turns them into one line on stderr and an exit status.

Exit status 2 means bad input (data or config: the user can fix it); 1 means the
analysis itself failed.
"""

from __future__ import annotations

from collections.abc import Sequence


class RetentionStudyError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_status = 1


class ConfigError(RetentionStudyError):
    """The run configuration (YAML or ``-p key=value``) is wrong.

    Parameters
    ----------
    problems : str or sequence of str
        One problem, or every problem found (each one line, naming the key).

    Examples
    --------
    >>> e = ConfigError(["study.alpha must be in (0, 1)", "study.grid must be month"])
    >>> e.problems
    ['study.alpha must be in (0, 1)', 'study.grid must be month']
    >>> str(e).splitlines()[1]
    'study.grid must be month'
    """

    exit_status = 2

    def __init__(self, problems: str | Sequence[str]) -> None:
        items = [problems] if isinstance(problems, str) else list(problems)
        # One line per problem, whatever a value held (cron mails read line by line).
        self.problems = [" ".join(str(p).split()) for p in items]
        super().__init__("\n".join(self.problems))


class DataContractError(RetentionStudyError):
    """Input data breaks the data contract.

    Parameters
    ----------
    message : str
        What is wrong, in plain words.
    file : str, optional
        The file (or table) concerned.
    column : str, optional
        The column concerned.
    rows : sequence of int, optional
        Offending row numbers as a user sees them in the file (1 = first data row).
    kind : str, optional
        A short machine-readable reason, e.g. ``"duplicate_id"``; tests assert on it.

    Examples
    --------
    >>> e = DataContractError("duplicate customer_id", file="c.csv", column="customer_id",
    ...                       rows=[3, 7], kind="duplicate_id")
    >>> str(e)
    'c.csv: column customer_id: duplicate customer_id (rows 3, 7)'
    """

    exit_status = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rows: Sequence[int] | None = None,
        kind: str = "invalid",
    ) -> None:
        self.message = message
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else []
        self.kind = kind
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.column:
            parts.append(f"column {self.column}")
        text = ": ".join(parts + [self.message])
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = f" and {len(self.rows) - 5} more" if len(self.rows) > 5 else ""
            text += f" (rows {shown}{more})"
        # One line on stderr, whatever the message held (cron mails read line by line).
        return " ".join(text.split())


class DataContractErrors(DataContractError):
    """Several contract problems found in one pass over the data, one line each.

    A user fixing a file wants every problem of it at once, not one per run. The
    attributes (``kind``, ``file``, ``column``, ``rows``) are those of the first
    problem; ``problems`` holds them all and ``str()`` is one line per problem, at
    most ``limit`` lines plus a line saying how many more there are.

    Examples
    --------
    >>> e = DataContractErrors([DataContractError("bad date", file="c.csv", column="d",
    ...                                           rows=[2]),
    ...                         DataContractError("no variance", file="c.csv", column="p")])
    >>> print(e)
    c.csv: column d: bad date (rows 2)
    c.csv: column p: no variance
    >>> e.kind, len(e.problems)
    ('invalid', 2)
    """

    def __init__(self, problems: Sequence[DataContractError], limit: int = 20) -> None:
        self.problems = list(problems)
        self.limit = limit
        first = self.problems[0]
        super().__init__(first.message, file=first.file, column=first.column, rows=first.rows,
                         kind=first.kind)

    def _format(self) -> str:
        lines = [str(p) for p in self.problems[: self.limit]]
        more = len(self.problems) - self.limit
        if more > 0:
            lines.append(f"... and {more} more problems")
        return "\n".join(lines)


class AnalysisError(RetentionStudyError):
    """The analysis could not produce a trustworthy answer (e.g. too few departures)."""

    exit_status = 1
