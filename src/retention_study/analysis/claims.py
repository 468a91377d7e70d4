"""Check the practitioners' claims (``CLAIMS.md``) against a study's results.

:func:`check_claims` reads the numbered bold titles of the claims file and decides
each claim from a run's :class:`~retention_study.analysis.results.Results`. What it reads:

``alpha``; ``lr_tests`` (each block given the other, claim 1; the Holm-adjusted
``verdict_evidence`` p-values when present, as the verdict reads them); ``effects``
(the adjusted model's; the contact-recency effect is covariate ``months_since_contact``,
else the one whose unit or label mentions outbound contact or time since contact:
claims 2, 5); ``rates_by_contact_band`` (claim 2); ``segments`` (claim 3);
``loyalty`` (claim 4); ``after_notice``
(:func:`retention_study.analysis.after_notice.after_notice_shares`) and ``naive``
(claim 5); ``reasons`` (claim 6: its ``cause_specific`` row of group "price",
covariate ``months_since_contact``); ``reversals`` (claim 7: ``{"after_discount":
{"reversed", "notices"}, "after_contact": {...}}``; no run computes it yet, so claim 7
is "cannot tell").

A missing key or None means the data could not speak to it: the claim is "cannot
tell". "not supported" means the data could speak and did not back the claim (the
effect is absent, too small to detect, or the other way round).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from scipy import stats

from retention_study.analysis.results import LRTest, RateBand, Results
from retention_study.errors import AnalysisError

log = logging.getLogger("retention_study")

SUPPORTED, NOT_SUPPORTED, CANNOT_TELL = "supported", "not supported", "cannot tell"
STATUSES = (SUPPORTED, NOT_SUPPORTED, CANNOT_TELL)
CONTACT_EFFECT = re.compile(r"outbound contact|since .*contact|contact recency", re.I)
CONTACT_COVARIATE = re.compile(r"^months_since_contact$")
MIN_EVENTS = 10
_TITLE = re.compile(r"^\s*(\d+)\.\s+\*\*(.+?)\*\*", re.M)


def parse_claims(path: str | Path) -> pd.DataFrame:
    """Numbered bold titles of a claims file: columns ``claim`` (int) and ``title``.

    Examples
    --------
    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".md", delete=False)
    >>> _ = f.write("Intro\\n\\n1. **Price is rarely the real reason.** Text\\n2. **B.**\\n")
    >>> f.close(); parse_claims(f.name).values.tolist()
    [[1, 'Price is rarely the real reason'], [2, 'B']]
    >>> os.unlink(f.name)
    """
    text = Path(path).read_text(encoding="utf-8")
    found = [(int(n), t.strip().rstrip(".").strip()) for n, t in _TITLE.findall(text)]
    if not found:
        raise AnalysisError(f"{path}: no numbered bold claim titles found")
    return pd.DataFrame(found, columns=["claim", "title"])


# --------------------------------------------------------------------------- formatting
def _p(p) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _ci(d: dict, key: str = "hr", lo: str = "lower", hi: str = "upper") -> str:
    return f"{d[key]:.2f} ({d[lo]:.2f}-{d[hi]:.2f})"


def _lr_text(test: LRTest) -> str:
    return f"LR {test.statistic:.1f}, {_p(test.p)}" if test.statistic is not None else _p(test.p)


def _verdict(status: str, number: str, why: str) -> dict:
    return {"status": status, "number": number, "why": why}


def _cannot(why: str) -> dict:
    return _verdict(CANNOT_TELL, "", why)


def _find_effect(effects, pattern: re.Pattern = CONTACT_EFFECT) -> dict | None:
    """The contact-recency effect: by covariate name, else by its unit or label text."""
    found = [e for e in effects or [] if e.get("hr") is not None]
    for e in found:
        if CONTACT_COVARIATE.search(str(e.get("covariate", ""))):
            return e
    for e in found:
        if pattern.search(f"{e.get('unit', '')} {e.get('label', '')}"):
            return e
    return None


def _effect_text(e: dict) -> str:
    return f"HR {_ci(e)} per {e['unit']}" if e.get("unit") else f"HR {_ci(e)}: {e['label']}"


# --------------------------------------------------------------------------- claims
def _claim_price(r: Results, alpha: float) -> dict:
    given_contact, given_price = r.lr_tests.price_given_contact, r.lr_tests.contact_given_price
    pc = given_contact.p if given_contact else None
    cp = given_price.p if given_price else None
    if pc is None or cp is None:
        return _cannot("the data does not measure both price and supplier contact, so their "
                       "contributions cannot be weighed against each other")
    number = (f"price given contact {_lr_text(given_contact)}; "
              f"contact given price {_lr_text(given_price)}")
    # The verdict tests the two blocks together (Holm); the claim must not read the same
    # two tests at a laxer level and contradict it.
    ev = r.verdict_evidence
    pc_holm, cp_holm = ev.get("p_price_given_contact_holm"), ev.get("p_contact_given_price_holm")
    if pc_holm is not None and cp_holm is not None:
        pc, cp = pc_holm, cp_holm
        number += f" (Holm-adjusted: price {_p(pc)}, contact {_p(cp)})"
    if r.verdict:
        number += f"; verdict: {r.verdict}"
    verdict = _decide_price(pc, cp, alpha, number)
    return {**verdict, "why": verdict["why"] + _snapshot_caveat(r)}


def _snapshot_caveat(r: Results) -> str:
    """A one-row-per-customer table measures price and contact once, not over time."""
    if r.format != "table":
        return ""
    roles = r.roles
    cols = ", ".join(list(roles.get("price") or []) + list(roles.get("contact") or []))
    what = f" ({cols})" if cols else ""
    return (f"; caution: price and contact are single snapshot columns{what}, not dated "
            "histories, so this is an association at one moment")


def _decide_price(pc: float, cp: float, alpha: float, number: str) -> dict:
    if cp < alpha <= pc:
        return _verdict(SUPPORTED, number, "contact adds to a model that already has price; "
                        "price adds nothing detectable once contact is known")
    if pc < alpha:
        extra = "" if cp < alpha else ", while contact adds nothing detectable"
        return _verdict(NOT_SUPPORTED, number, f"price still explains departures once contact "
                        f"is accounted for{extra}")
    return _verdict(NOT_SUPPORTED, number, "neither block adds detectably to the other; the "
                    "data does not show that attention rather than price drives departures")


def _rates_trend(rates: list[RateBand] | None) -> tuple[str, int] | None:
    """Text and direction (+1 rising, -1 falling, 0 unclear) from first to last band."""
    rows = [x for x in rates or [] if x.rate_per_100 is not None]
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    text = (f"{a.band}: {a.rate_per_100:.1f} vs {b.band}: {b.rate_per_100:.1f} "
            f"departures per 100 customer-years")
    if None in (a.lower, a.upper, b.lower, b.upper):
        return text, 0
    direction = 1 if b.lower > a.upper else -1 if b.upper < a.lower else 0
    return text, direction


def _by_interval(lower: float, upper: float, number: str, above: str, below: str,
                 spans: str) -> dict:
    """Supported when the interval lies above 1; not supported below 1 or across it."""
    if lower > 1:
        return _verdict(SUPPORTED, number, above)
    return _verdict(NOT_SUPPORTED, number, below if upper < 1 else spans)


def _claim_attention(r: Results, alpha: float) -> dict:
    effect = _find_effect(r.effects)
    trend = _rates_trend(r.rates_by_contact_band)
    if effect is None and trend is None:
        return _cannot("the data has no dates of supplier contact, so time since the last "
                       "contact cannot be measured")
    if effect is None:
        text, direction = trend
        status = SUPPORTED if direction > 0 else NOT_SUPPORTED
        why = ("departure rates rise with time since the last contact" if direction > 0 else
               "departure rates do not clearly rise with time since the last contact")
        return _verdict(status, text, why)
    number = _effect_text(effect)
    if trend is not None:
        number += f"; {trend[0]}"
    return _by_interval(
        effect["lower"], effect["upper"], number,
        above="the longer since the supplier's last contact, the likelier a customer leaves, "
              "with price and the controls held fixed",
        below="customers long without contact leave less, not more",
        spans="no detectable rise in departures with time since the last contact (the "
              "interval includes no effect)")


def _claim_satisfied(r: Results, alpha: float) -> dict:
    sat = r.segments.get("satisfaction")
    if not sat:
        return _cannot("the data has no satisfaction score")
    rows = {x["segment"]: x for x in sat.get("summary") or []}
    s = rows.get("satisfied")
    if s is None or s.get("oe") is None or s.get("departures", 0) < MIN_EVENTS:
        n = 0 if s is None else s.get("departures", 0)
        return _cannot(f"too few departures among satisfied customers ({n}) to tell")
    rates = ", ".join(f"{k} {v['rate']:.1f}" for k, v in rows.items() if v.get("rate") is not None)
    number = (f"satisfied: observed/expected under a straight-line score effect "
              f"{_ci(s, 'oe', 'oe_lower', 'oe_upper')}; rates per 100 customer-years: {rates}")
    return _by_interval(
        s["oe_lower"], s["oe_upper"], number,
        above="merely satisfied customers leave more often than their score predicts",
        below="satisfied customers leave less often than their score predicts",
        spans="satisfied customers leave about as often as their score predicts; departures "
              "fall or rise smoothly with the score")


def _claim_loyalty(r: Results, alpha: float) -> dict:
    loy = r.loyalty or {}
    table = loy.get("summary") or []
    if len(table) < 2:
        return _cannot("the data has no new-customer prices to compare existing customers' "
                       "prices with")
    first, last = table[0], table[-1]
    number = (f"{last['band']}: {last['mean_pct_above']:.1f}% above the new-customer price "
              f"({100 * last['share_paying_more']:.0f}% pay more) vs {first['band']}: "
              f"{first['mean_pct_above']:.1f}%")
    hr = loy.get("hazard_ratio")
    if hr and hr.get("hr") is not None:
        number += f"; HR {hr.get('label', 'loyalty penalty')} {_ci(hr)}"
    gap = last["mean_pct_above"] - first["mean_pct_above"]
    if gap > 1 and last["share_paying_more"] > 0.5:
        return _verdict(SUPPORTED, number, "long-standing customers pay more than new "
                        "customers for the same product, and the gap grows with tenure")
    return _verdict(NOT_SUPPORTED, number, "long-standing customers do not typically pay "
                    "more than new customers")


def _claim_wake_up(r: Results, alpha: float) -> dict:
    an = r.after_notice or {}
    if not an.get("available"):
        return _cannot(an.get("why") or "the data records no notice dates with contact or "
                       "price histories")
    parts, wake = [], False
    for key, what in (("outbound_contacts", "outbound contacts"), ("price_cuts", "price cuts")):
        d = an.get(key) or {}
        if d.get("rate_ratio") is None:
            continue
        parts.append(f"{what}: {100 * d['share_after_notice']:.0f}% after a notice, rate after "
                     f"vs before notice {_ci(d, 'rate_ratio')}")
        wake = wake or d["lower"] > 1
    if not parts:
        return _cannot("too few contacts or price changes around notices to tell")
    naive, adjusted = _find_effect(r.naive), _find_effect(r.effects)
    if naive and adjusted:
        parts.append(f"contact HR naive {naive['hr']:.2f} vs adjusted {adjusted['hr']:.2f}")
    if wake:
        return _verdict(SUPPORTED, "; ".join(parts), "suppliers contact customers or cut "
                        "prices more often after a notice than before it")
    return _verdict(NOT_SUPPORTED, "; ".join(parts), "contacts and price cuts are no more "
                    "frequent after a notice than before it")


def _price_leavers_contact_hr(rs: dict) -> dict | None:
    rows = (rs.get("cause_specific") or {}).get("summary") or []
    for row in rows:
        if row.get("group") == "price" and CONTACT_COVARIATE.search(str(row.get("covariate"))):
            return row if row.get("lower") is not None else None
    return None


def _claim_ask_why(r: Results, alpha: float) -> dict:
    """Decided on the cause-specific model of "price" leavers: does time since contact
    predict them too? Risk sets compare customers at the same tenure, which a raw
    leavers-versus-stayers comparison (stayers are read at as_of) does not."""
    rs = r.reasons
    if not rs.get("available"):
        return _cannot("the data records no stated exit reasons")
    hr = _price_leavers_contact_hr(rs)
    rows = {x["group"]: x for x in rs.get("stated_vs_revealed") or []}
    price, stayed, col = rows.get("price"), rows.get("stayed"), "months_since_contact"
    raw = None
    if price and stayed and price.get(f"{col}_mean") is not None:
        raw = (f"months since last contact at departure: 'price' leavers "
               f"{price[f'{col}_mean']:.1f} vs stayers now {stayed[f'{col}_mean']:.1f}")
    if hr is None:
        return _cannot("stated reasons exist, but there is no model of 'price' leavers "
                       "with time since contact (too few of them, or no contact dates)")
    number = f"'price' leavers: HR {_ci(hr)} per month since the last outbound contact"
    number += f"; {raw}" if raw else ""
    if hr["lower"] > 1:
        return _verdict(SUPPORTED, number, "customers who said they left over price were also "
                        "more likely to leave the longer they had gone without contact: the "
                        "stated reason is not the whole story")
    return _verdict(NOT_SUPPORTED, number, "time since contact does not predict departures "
                    "of customers who said they left over price; what they said fits the data")


def _claim_reversals(r: Results, alpha: float) -> dict:
    rev = r.reversals
    if not rev:
        return _cannot("the data does not record reversed notices")
    d, c = rev.get("after_discount") or {}, rev.get("after_contact") or {}
    if min(d.get("notices", 0), c.get("notices", 0)) < MIN_EVENTS:
        return _cannot("too few notices followed by a discount or by a contact to compare")
    table = [[d["reversed"], d["notices"] - d["reversed"]],
             [c["reversed"], c["notices"] - c["reversed"]]]
    p = stats.fisher_exact(table).pvalue
    sd, sc = d["reversed"] / d["notices"], c["reversed"] / c["notices"]
    number = (f"reversed after a discount {100 * sd:.0f}% of {d['notices']}, after a contact "
              f"without discount {100 * sc:.0f}% of {c['notices']} ({_p(p)})")
    if p < alpha and sc > sd:
        return _verdict(SUPPORTED, number, "attention wins back more notices than discounts do")
    if p < alpha:
        return _verdict(NOT_SUPPORTED, number, "discounts win back more notices than contact "
                        "does")
    return _verdict(NOT_SUPPORTED, number, "no detectable difference between discounts and "
                    "contact in winning back notices")


CHECKS: dict[int, Callable[[Results, float], dict]] = {
    1: _claim_price, 2: _claim_attention, 3: _claim_satisfied, 4: _claim_loyalty,
    5: _claim_wake_up, 6: _claim_ask_why, 7: _claim_reversals,
}


def check_claims(results: Results, claims_path: str | Path) -> pd.DataFrame:
    """Decide each claim of the claims file from a study's results.

    Parameters
    ----------
    results : Results
        A run's results; what is None or empty there means "cannot tell".
    claims_path : path
        ``CLAIMS.md``; its numbered bold titles give the rows.

    Returns
    -------
    DataFrame
        ``claim``, ``title``, ``status`` ("supported" | "not supported" |
        "cannot tell"), ``number`` (the deciding figures as text), ``why``.

    Examples
    --------
    >>> from retention_study.config import CLAIMS_FILE
    >>> from retention_study.analysis.results import LRTest, LRTests, Results
    >>> tests = LRTests(LRTest("price | contact", "both", "contact", 1.8, 2, 0.4),
    ...                 LRTest("contact | price", "both", "price", 13.8, 2, 0.001))
    >>> t = check_claims(Results(lr_tests=tests), CLAIMS_FILE)
    >>> t.loc[0, "status"], t.loc[1, "status"]
    ('supported', 'cannot tell')
    """
    alpha = float(results.alpha)
    rows = []
    for claim, title in parse_claims(claims_path).itertuples(index=False):
        check = CHECKS.get(claim)
        try:
            verdict = check(results, alpha) if check else _cannot("no check defined for it")
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("claim %d: results incomplete (%s)", claim, exc)
            verdict = _cannot(f"the results needed to check it are incomplete ({exc})")
        rows.append({"claim": claim, "title": title, **verdict})
    return pd.DataFrame(rows, columns=["claim", "title", "status", "number", "why"])
