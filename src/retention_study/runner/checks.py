"""The checks a management page must pass before a run is ok: privacy, inert, offline.

Each failed check fails the run (exit 1) and keeps the page from being mailed around:
a page showing any customer ID of the input data is deleted; a page holding anything
that would run code (scripts, event handlers, ``javascript:`` links: text from the
data that escaped escaping) or that would fetch anything from the internet (scripts,
styles, fonts, images) is renamed.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

from retention_study.runner.execute import RunFailed
from retention_study.runner.manifest import input_specs


def check_page(page: str, cfg: dict[str, Any], run_dir: Path, manifest: dict[str, Any]) -> None:
    """Every check, privacy first: a page that leaks IDs is deleted whatever else is wrong.

    A page that would run code or fetch from the internet is renamed (``report-not-inert.html``,
    ``report-not-offline.html``): like a leak, it must not be mailed around; analysts
    have ``report.ipynb``.

    Raises
    ------
    RunFailed
        The first check the page fails (exit status 1).
    """
    check_privacy(page, cfg, run_dir, manifest)
    for found, renamed, problem in (
        (active_markup(page), "report-not-inert.html",
         "holds {n} element(s) that would run code (first: {first}); text from the data "
         "must be escaped"),
        (external_references(page), "report-not-offline.html",
         "loads {n} resource(s) from the internet (first: {first}); it must work offline"),
    ):
        if found:
            (run_dir / "report.html").rename(run_dir / renamed)
            raise RunFailed(1, "the management HTML " + problem.format(n=len(found),
                                                                        first=found[0][:80]))


# --------------------------------------------------------------------------- privacy

_TOKEN = re.compile(r"[^\s<>\"'=;,()\[\]{}|/\\:&*]+")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+", re.IGNORECASE)


def customer_ids(cfg: dict[str, Any]) -> set[str]:
    """The customer keys of the input data (empty when a table has no ``data.id``)."""
    from retention_study.data.readers import read_frame

    data = cfg["data"]
    if data["format"] == "events":
        specs, column = [str(data["customers"])], "customer_id"
    elif data.get("id"):
        specs, column = input_specs(cfg), data["id"]
    else:
        return set()
    ids: set[str] = set()
    for spec in specs:
        frame = read_frame(spec, table=data.get("table"), delimiter=data.get("delimiter"),
                           encoding=data.get("encoding"))
        if column in frame.columns:
            ids |= set(frame[column].dropna().astype(str).str.strip())
    return ids - {""}


def checkable_ids(ids: set[str]) -> set[str]:
    """IDs distinctive enough to search for.

    Short all-digit keys ("17") cannot be told apart from counts and years in a
    report, so only keys with a non-digit or at least 6 characters are checked.

    Examples
    --------
    >>> sorted(checkable_ids({"17", "2024", "C-017", "1234567"}))
    ['1234567', 'C-017']
    """
    return {i for i in ids if len(i) >= 6 or not i.isdigit()}


def find_leaked_ids(page: str, ids: set[str]) -> set[str]:
    """Customer IDs that occur as whole tokens in an HTML page (inline images ignored).

    Examples
    --------
    >>> sorted(find_leaked_ids("<td>C-017</td><td>C-0170x</td>", {"C-017", "C-99"}))
    ['C-017']
    """
    text = html.unescape(_DATA_URI.sub(" ", page))
    tokens = set(_TOKEN.findall(text))
    tokens |= {t.strip(".!?%") for t in tokens}
    leaked = ids & tokens
    # Keys that contain a separator character are not single tokens: search them as text.
    odd = {i for i in ids - leaked if _TOKEN.fullmatch(i) is None}
    return leaked | {i for i in odd if i in text}


def check_privacy(page: str, cfg: dict[str, Any], run_dir: Path,
                   manifest: dict[str, Any]) -> None:
    """Fail the run (the page deleted) when the page shows a customer ID of the input data.

    The counts of IDs searched for go into ``manifest['privacy_check']``.
    """
    ids = customer_ids(cfg)
    checked = checkable_ids(ids)
    leaked = find_leaked_ids(page, checked)
    manifest["privacy_check"] = {"ids": len(ids), "ids_checked": len(checked),
                                 "leaked": len(leaked)}
    if leaked:
        # The page must not survive to be mailed around; analysts have report.ipynb.
        (run_dir / "report.html").unlink()
        raise RunFailed(1, f"the management HTML showed {len(leaked)} customer ID(s) "
                            "from the input data; report.html was deleted")


# --------------------------------------------------------------------------- offline

_REMOTE = re.compile(r"^\s*(?:https?:|ftp:)?//", re.IGNORECASE)
_CSS_REMOTE = re.compile(r"url\(\s*['\"]?\s*((?:https?:)?//[^)'\"\s]*)|@import\s+['\"]([^'\"]+)",
                         re.IGNORECASE)
#: Attributes a browser fetches on load (links in <a href> are only followed on a click).
_FETCHED = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src",
            "audio": "src", "embed": "src", "track": "src", "input": "src", "object": "data",
            "link": "href"}


class _Fetches(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        key = _FETCHED.get(tag)
        if key and _REMOTE.match(values.get(key) or ""):
            self.urls.append(values[key] or "")
        if tag == "img" and _REMOTE.search(values.get("srcset") or ""):
            self.urls.append(values["srcset"] or "")
        self._css(values.get("style") or "")
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self._css(data)

    def _css(self, text: str) -> None:
        self.urls += [a or b for a, b in _CSS_REMOTE.findall(text)]


def external_references(page: str) -> list[str]:
    """URLs an HTML page would fetch from the network when opened (scripts, styles, images...).

    Examples
    --------
    >>> external_references('<a href="https://x.org">ok</a><img src="data:image/png;base64,">')
    []
    >>> external_references('<script src="https://cdn.x/require.js"></script>')
    ['https://cdn.x/require.js']
    """
    return _read(_Fetches(), page).urls


# --------------------------------------------------------------------------- inert

#: Elements and attributes that would run code or embed another document in a reader's browser.
_ACTIVE_TAGS = frozenset({"script", "iframe", "object", "embed", "frame", "frameset", "applet",
                          "base", "form"})
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "data"})


class _Active(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            elif name in _URL_ATTRS and re.match(r"\s*(javascript|vbscript):", value or "", re.I):
                self.found.append(f"<{tag} {name}={(value or '')[:30]}>")


def active_markup(page: str) -> list[str]:
    """Elements and attributes of a page that would run code when opened (none expected).

    The management report is static: it has no script of its own, so any of these
    came from the data through a path that forgot to escape it.

    Examples
    --------
    >>> active_markup('<p>&lt;script&gt;</p><img src="data:image/png;base64,">')
    []
    >>> active_markup('<p>x<svg onload="alert(1)"></svg><a href="javascript:go()">y</a></p>')
    ['<svg onload>', '<a href=javascript:go()>']
    """
    return _read(_Active(), page).found


_Parser = TypeVar("_Parser", bound=HTMLParser)


def _read(parser: _Parser, page: str) -> _Parser:
    parser.feed(page)
    parser.close()
    return parser
