"""The typed results of a run: what ``results.json`` holds, read and written in one place.

:class:`Results` is the interface between computing (``pipeline.assemble_results``
builds it) and telling (``narrative``, ``claims``, the notebook, the runner's index read
it). ``Results.to_json()`` is ``results.json``, with a ``schema_version``;
:meth:`Results.from_json` reads it back, old runs included (a key an older version did
not write takes its default). ``results.schema.json``, shipped with the package, is the
JSON Schema of the current version, generated from these classes
(:func:`json_schema`); the tests validate every results.json they produce against it.

The records read as such (tests, model fits, rate bands, claims) are classes of their
own. The sections the study's own modules define (segments, reasons, loyalty, the
what-if levers, cross-validation...) and the effect rows (one row format shared with
the models' DataFrames, the plots and the measure vocabulary) are typed as the JSON
objects they are (``dict[str, Any]``, :data:`Table`).

Examples
--------
>>> r = Results(name="demo", verdict="contact",
...             rates_by_contact_band=[RateBand("0-3 months", 10.0, 2, 20.0, 2.4, 72.2, 9)])
>>> back = Results.from_json(r.to_json())
>>> back == r, back.rates_by_contact_band[0].rate_per_100, back.schema_version
(True, 20.0, 1)
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retention_study.errors import RetentionStudyError

#: Bumped whenever the keys change; :meth:`Results.from_dict` upgrades older versions.
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "results.schema.json"
#: A table as results.json holds it: one JSON object per row.
Table = list[dict[str, Any]]


class ResultsError(RetentionStudyError):
    """A results.json that is not what :class:`Results` reads (names the key)."""

    exit_status = 1


@dataclass(frozen=True)
class HazardRatio:
    """One coefficient of one block model (``BlockModels.summary``)."""

    model: str
    covariate: str
    coef: float | None
    se: float | None
    hr: float | None
    hr_lower: float | None
    hr_upper: float | None
    p: float | None


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio test of the ``big`` model against the nested ``small`` one."""

    test: str
    big: str
    small: str
    statistic: float | None
    df: int
    p: float | None


@dataclass(frozen=True)
class LRTests:
    """The two tests the verdict reads (None where a block is not measured) and all tests."""

    price_given_contact: LRTest | None = None
    contact_given_price: LRTest | None = None
    all: list[LRTest] = field(default_factory=list)


@dataclass(frozen=True)
class ModelFit:
    """A block model's log-likelihood, parameters and AIC."""

    model: str
    loglik: float | None
    n_params: int
    aic: float | None


@dataclass(frozen=True)
class RateBand:
    """Departures per 100 customer-years in one band of a measure, with its interval."""

    band: str
    customer_years: float | None
    departures: int
    rate_per_100: float | None
    lower: float | None
    upper: float | None
    customers: int


@dataclass(frozen=True)
class Claim:
    """One practitioners' claim decided from the results (``claims.check_claims``)."""

    claim: int
    title: str
    status: str
    number: str
    why: str


@dataclass(frozen=True)
class Results:
    """Everything a run found, as ``results.json`` holds it (keys in the file's order)."""

    schema_version: int = SCHEMA_VERSION
    name: str = ""
    package_version: str = ""
    format: str = "events"
    coverage: dict[str, Any] | None = None
    as_of: str | None = None
    alpha: float = 0.05
    verdict: str | None = None
    verdict_sentence: str | None = None
    verdict_rule: str | None = None
    verdict_evidence: dict[str, Any] = field(default_factory=dict)
    what_if: Table = field(default_factory=list)
    n_customers: int | None = None
    n_departures: int | None = None
    n_episodes: int | None = None
    customer_years: float | None = None
    effects: Table = field(default_factory=list)
    hazard_ratios: list[HazardRatio] = field(default_factory=list)
    lr_tests: LRTests = field(default_factory=LRTests)
    aic: list[ModelFit] = field(default_factory=list)
    cv: dict[str, Any] | None = None
    ph_check: dict[str, Any] = field(default_factory=dict)
    rates_by_contact_band: list[RateBand] | None = None
    rates_by_penalty_band: list[RateBand] | None = None
    km: dict[str, Table] = field(default_factory=dict)
    km_logrank: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    segments: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, Any] = field(default_factory=dict)
    loyalty: dict[str, Any] | None = None
    after_notice: dict[str, Any] | None = None
    reversals: dict[str, Any] | None = None
    robustness: dict[str, Any] = field(default_factory=dict)
    naive: Table | None = None
    definitions: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, Any] = field(default_factory=dict)
    unmeasured: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    timeline_params: dict[str, Any] = field(default_factory=dict)
    late_entry: dict[str, Any] = field(default_factory=dict)
    confounding: dict[str, Any] | None = None
    evidence_grade: dict[str, Any] | None = None
    claims: list[Claim] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The plain JSON object (what :meth:`to_json` writes)."""
        return _encode(self)

    def to_json(self) -> str:
        """``results.json``: the same text for the same results, byte for byte.

        Examples
        --------
        >>> Results(name="demo").to_json().splitlines()[1:3]
        ['  "schema_version": 1,', '  "name": "demo",']
        """
        return json.dumps(self.to_dict(), indent=2, default=str, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, payload: Any) -> Results:
        """Results from a parsed results.json (the one place its keys are looked up).

        A key this version does not know is refused (:class:`ResultsError` naming it);
        a key an older run lacks takes its default; a run written before
        ``schema_version`` existed (version 0) is read as it would be written now.

        Examples
        --------
        >>> old = {"verdict": "price", "rates_by_contact_band": [{"band": "0-3 months",
        ...        "customer_years": 10.0, "departures": 2, "rate_per_100": 20.0, "lower": 2.4,
        ...        "upper": 72.2, "customers": 9, "rate": 20.0}]}
        >>> r = Results.from_dict(old)
        >>> r.schema_version, r.rates_by_contact_band[0].rate_per_100
        (1, 20.0)
        >>> Results.from_dict({"verdict": 3})
        Traceback (most recent call last):
        ...
        retention_study.analysis.results.ResultsError: results.json: verdict: expected str or null, got int
        """
        if isinstance(payload, dict) and payload.get("schema_version", 0) < SCHEMA_VERSION:
            payload = _upgrade(payload)
        return _decode(cls, payload, "")

    @classmethod
    def from_json(cls, text: str) -> Results:
        """Results from the text of a results.json (see :meth:`from_dict`)."""
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise ResultsError(f"results.json: not JSON ({exc})") from None
        return cls.from_dict(payload)

    @classmethod
    def read(cls, path: str | Path) -> Results:
        """Results from a results.json file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            return cls.from_json(text)
        except ResultsError as exc:
            raise ResultsError(str(exc).replace("results.json", str(path), 1)) from None


def _upgrade(payload: dict[str, Any]) -> dict[str, Any]:
    """A results.json of an older version as the current version writes it.

    Version 0 (before ``schema_version``): rate bands carried the rate twice, as
    ``rate_per_100`` and ``rate``.
    """
    rest = {k: v for k, v in payload.items() if k != "schema_version"}
    payload = {"schema_version": SCHEMA_VERSION, **rest}
    for key in ("rates_by_contact_band", "rates_by_penalty_band"):
        if isinstance(payload.get(key), list):
            payload[key] = [{k: v for k, v in band.items() if k != "rate"}
                            if isinstance(band, dict) else band for band in payload[key]]
    return payload


# --------------------------------------------------------------------------- (de)coding

_PRIMITIVES: dict[type, tuple[type, ...]] = {
    str: (str,), bool: (bool,), int: (int,), float: (int, float),
}
_NAMES = {str: "str", bool: "bool", int: "int", float: "float", type(None): "null"}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(tp: Any, value: Any, path: str, shown: Any = None) -> Any:
    shown = shown or tp  # the type an error names (``str or null``, not ``str``)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:
            return _decode(kinds[0], value, path, tp) if value is not None else _fail(tp, value, path)
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(shown, value, path)
        hints, names = _hints(tp), {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ResultsError(f"results.json: {_join(path, unknown[0])}: unknown key")
        known = {k: _decode(hints[k], v, _join(path, k)) for k, v in value.items()}
        try:
            return tp(**known)
        except TypeError:
            missing = [f.name for f in dataclasses.fields(tp) if f.name not in known
                       and f.default is dataclasses.MISSING
                       and f.default_factory is dataclasses.MISSING]
            raise ResultsError(f"results.json: {_join(path, missing[0])}: missing") from None
    if origin is list:
        if not isinstance(value, list):
            _fail(shown, value, path)
        return [_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(shown, value, path)
        return {k: _decode(args[1], v, _join(path, k)) for k, v in value.items()}
    ok = _PRIMITIVES[tp]
    if not isinstance(value, ok) or (tp is not bool and isinstance(value, bool)):
        _fail(shown, value, path)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if dataclasses.is_dataclass(tp):
        return "an object"
    if typing.get_origin(tp) is list:
        return "a list"
    if typing.get_origin(tp) is dict:
        return "an object"
    return _NAMES.get(tp, str(tp))


def _fail(tp: Any, value: Any, path: str) -> typing.NoReturn:
    got = "null" if value is None else type(value).__name__
    raise ResultsError(f"results.json: {path}: expected {_describe(tp)}, got {got}")


# --------------------------------------------------------------------------- JSON Schema

_SCHEMA_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
                 type(None): "null"}


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(a, defs) for a in args]}
    if dataclasses.is_dataclass(tp):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # placeholder: a class refers to itself at most once
            hints = _hints(tp)
            names = [f.name for f in dataclasses.fields(tp)]
            defs[tp.__name__] = {
                "type": "object", "description": (tp.__doc__ or "").strip().splitlines()[0],
                "properties": {n: _schema(hints[n], defs) for n in names},
                "required": names, "additionalProperties": False,
            }
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if origin is list:
        return {"type": "array", "items": _schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(args[1], defs)}
    return {"type": _SCHEMA_TYPES[tp]}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json at :data:`SCHEMA_VERSION` (``results.schema.json``).

    Examples
    --------
    >>> s = json_schema()
    >>> s["properties"]["schema_version"], s["required"][:2]
    ({'const': 1}, ['schema_version', 'name'])
    """
    defs: dict[str, Any] = {}
    top = _schema(Results, defs)["$ref"].rsplit("/", 1)[-1]
    body = defs.pop(top)
    body["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"retention-study/results/{SCHEMA_VERSION}",
            "title": "results.json of a retention-study run", **body,
            "$defs": dict(sorted(defs.items()))}


def write_schema(path: Path = SCHEMA_FILE) -> Path:
    """Write :func:`json_schema` to ``path`` (run after changing a class here)."""
    path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    return path
