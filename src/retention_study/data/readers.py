"""Read one input table from CSV, Parquet, DuckDB or SQLite into a DataFrame.

Files are read as the user sees them: CSV cells stay strings (``""`` for a blank
cell) so that the checks in :mod:`retention_study.data.load` can say exactly which cell
is wrong instead of pandas guessing types silently. Every frame gets two helper
columns, ``_file`` (where the row came from) and ``_row`` (1-based data row number,
header not counted), used only in error messages.
"""

from __future__ import annotations

import csv
import logging
import sqlite3
from pathlib import Path

import pandas as pd

from retention_study.config import LOGGER_NAME
from retention_study.errors import DataContractError

log = logging.getLogger(LOGGER_NAME)

FILE_COL = "_file"
ROW_COL = "_row"
DB_SUFFIXES = (".duckdb", ".sqlite", ".db", ".sqlite3")
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"


def split_spec(spec: str, table: str | None = None) -> tuple[Path, str | None]:
    """Split ``FILE.duckdb::TABLE`` into a path and a table name.

    Examples
    --------
    >>> split_spec("crm.sqlite::customers")
    (PosixPath('crm.sqlite'), 'customers')
    >>> split_spec("customers.csv")
    (PosixPath('customers.csv'), None)
    """
    text = str(spec)
    if "::" in text:
        path, name = text.rsplit("::", 1)
        return Path(path), name or table
    return Path(text), table


def sniff_encoding(raw: bytes) -> str:
    """Guess a CSV's encoding: UTF-8 (with or without BOM) when it decodes, else latin-1.

    Examples
    --------
    >>> sniff_encoding("café".encode("latin-1"))
    'latin-1'
    >>> sniff_encoding("café".encode("utf-8"))
    'utf-8'
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # Excel's "Unicode text": every other byte is NUL
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # latin-1 decodes any byte: the usual encoding of older European exports.
        return "latin-1"
    return "utf-8"


def sniff_delimiter(text: str) -> str:
    """Guess a CSV's delimiter among ``, ; TAB |`` from its first lines.

    Examples
    --------
    >>> sniff_delimiter("a;b;c\\n1;2,5;3\\n")
    ';'
    """
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        # One-column files or odd quoting: pick the delimiter most common in the header.
        header = lines[0] if lines else ""
        return max(_DELIMITERS, key=header.count) if any(d in header for d in _DELIMITERS) else ","


def _read_csv(path: Path, delimiter: str | None, encoding: str | None) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataContractError("file is empty", file=str(path), kind="empty_file")
    # The whole file: a non-UTF-8 byte may first appear far down a UTF-8-looking file.
    encoding = encoding or sniff_encoding(raw)
    _refuse_nul_bytes(raw, path, encoding)
    sample = raw[:_SNIFF_BYTES].decode(encoding, errors="replace")
    delimiter = delimiter or sniff_delimiter(sample)
    log.debug("%s: reading CSV (delimiter %r, encoding %s)", path, delimiter, encoding)
    try:
        return pd.read_csv(path, sep=delimiter, encoding=encoding, dtype=str,
                           keep_default_na=False, skipinitialspace=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataContractError(f"cannot parse CSV: {msg}", file=str(path),
                                kind="unreadable") from None


def _refuse_nul_bytes(raw: bytes, path: Path, encoding: str) -> None:
    """NUL bytes in a text CSV: pandas would silently cut each such cell at the NUL."""
    if encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")) or b"\x00" not in raw:
        return
    text = raw.decode(encoding, errors="replace")
    lines = text.splitlines()
    # line 1 is the header, so a line's number minus one is its data row
    rows = [i for i, line in enumerate(lines) if "\x00" in line]
    where = "in the header" if rows and rows[0] == 0 else ""
    raise DataContractError(f"NUL bytes in the file {where}(binary data or a mis-saved "
                            "export; save it again as UTF-8 CSV)".replace("  ", " "),
                            file=str(path), rows=[r for r in rows if r > 0],
                            kind="nul_bytes")


def _read_database(path: Path, table: str | None) -> pd.DataFrame:
    where = f"{path}::{table}" if table else str(path)
    if not table:
        raise DataContractError("a database file needs a table: use FILE::TABLE or data.table",
                                file=where, kind="missing_table")
    quoted = '"' + table.replace('"', '""') + '"'
    if path.suffix.lower() == ".duckdb":
        import duckdb

        try:
            with duckdb.connect(str(path), read_only=True) as con:
                return con.execute(f"SELECT * FROM {quoted}").df()
        except duckdb.Error as exc:
            raise DataContractError(f"cannot read table: {str(exc).splitlines()[0]}",
                                    file=where, kind="missing_table") from None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            return pd.read_sql_query(f"SELECT * FROM {quoted}", con)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataContractError(f"cannot read table: {str(exc).splitlines()[0]}",
                                file=where, kind="missing_table") from None


def read_frame(spec: str, *, table: str | None = None, delimiter: str | None = None,
               encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet file or a DuckDB/SQLite table, with ``_file``/``_row`` columns.

    Parameters
    ----------
    spec : str
        A path; ``FILE.duckdb::TABLE``, ``FILE.sqlite::TABLE`` or ``FILE.db::TABLE``
        for a database table.
    table : str, optional
        Table name when ``spec`` is a database file without ``::TABLE``.
    delimiter, encoding : str, optional
        CSV delimiter and encoding; sniffed when None.

    Returns
    -------
    DataFrame
        CSV cells as strings (blank = ``""``); Parquet and database columns as stored.

    Raises
    ------
    DataContractError
        ``kind`` is ``missing_file``, ``empty_file``, ``header_only``, ``missing_table``,
        ``duplicate_column`` or ``unreadable``.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.csv")
    >>> _ = open(p, "w").write("id;name\\n1;Zoë\\n")
    >>> read_frame(p)[["id", "name", "_row"]].values.tolist()
    [['1', 'Zoë', 1]]
    """
    path, table = split_spec(spec, table)
    where = f"{path}::{table}" if table and path.suffix.lower() in DB_SUFFIXES else str(path)
    if not path.is_file():
        raise DataContractError("file not found", file=str(path), kind="missing_file")
    if path.stat().st_size == 0:
        raise DataContractError("file is empty", file=str(path), kind="empty_file")
    suffix = path.suffix.lower()
    if suffix in DB_SUFFIXES:
        frame = _read_database(path, table)
    elif suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for bad files
            raise DataContractError(f"cannot read Parquet: {type(exc).__name__}",
                                    file=str(path), kind="unreadable") from None
    else:
        frame = _read_csv(path, delimiter, encoding)
    if frame.empty:
        raise DataContractError("no data rows (header only)", file=where, kind="header_only")
    frame.columns = [str(c).strip() for c in frame.columns]
    # "plan" and " plan" are one column once stripped: which one a check read would be
    # a guess (and pandas would hand a frame where a column is expected).
    twice = frame.columns[frame.columns.duplicated()]
    if len(twice):
        raise DataContractError("column name appears twice (after trimming spaces)",
                                file=where, column=twice[0], kind="duplicate_column")
    frame = frame.reset_index(drop=True)
    frame[FILE_COL] = where
    frame[ROW_COL] = range(1, len(frame) + 1)
    return frame


def read_header(spec: str, *, table: str | None = None, delimiter: str | None = None,
                encoding: str | None = None) -> list[str] | None:
    """The column names of a CSV, Parquet file or database table, reading only the header.

    Returns None when the file cannot be opened or parsed here: :func:`read_frame`
    says why, as a data contract error, when the data is read.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.csv")
    >>> _ = open(p, "w").write("id; plan \\n1;a\\n")
    >>> read_header(p)
    ['id', 'plan']
    """
    path, table = split_spec(spec, table)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        suffix = path.suffix.lower()
        if suffix in DB_SUFFIXES:
            names = _database_header(path, table) if table else None
        elif suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = list(pq.read_schema(path).names)
        else:
            names = _csv_header(path, delimiter, encoding)
    except Exception as exc:  # noqa: BLE001 - the loader reports unreadable files
        log.debug("%s: cannot read the header: %s", spec, exc)
        return None
    return None if names is None else [str(n).strip() for n in names]


def _csv_header(path: Path, delimiter: str | None, encoding: str | None) -> list[str] | None:
    with path.open("rb") as fh:
        raw = fh.read(_SNIFF_BYTES)
    # Whole lines only: a cut through a UTF-8 character would look like latin-1.
    raw = raw[: raw.rfind(b"\n") + 1] or raw
    encoding = encoding or sniff_encoding(raw)
    sample = raw.decode(encoding, errors="replace")
    delimiter = delimiter or sniff_delimiter(sample)
    # The first record, not the first line: a quoted header name may hold a newline.
    rows = csv.reader(sample.lstrip("\ufeff").splitlines(keepends=True), delimiter=delimiter)
    return next(rows, None)


def _database_header(path: Path, table: str) -> list[str]:
    quoted = '"' + table.replace('"', '""') + '"'
    if path.suffix.lower() == ".duckdb":
        import duckdb

        with duckdb.connect(str(path), read_only=True) as con:
            return [d[0] for d in con.execute(f"SELECT * FROM {quoted} LIMIT 0").description]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return [d[0] for d in con.execute(f"SELECT * FROM {quoted} LIMIT 0").description]
