"""Risk sets of start/stop rows, and the one aggregation a Newton step needs.

A row is at risk on (start, stop]: at every event time t of its stratum with
start < t <= stop. :func:`index_risk_sets` works out once per table which event times
("slots", numbered across strata) each row is at risk at - a contiguous range
``first..last`` - so nothing is sorted again at each Newton step.

:func:`risk_set_sums` is then the whole per-step work: for given coefficients it returns,
per slot (stratum, event time), the sums over the risk set of w, w*x and w*x*x' and the
same sums over the rows that depart there (the tied group Efron needs), w being the case
weight times exp(x'beta). Written as a relational query it is

    SELECT slot, SUM(w), SUM(w*x_a), SUM(w*x_a*x_b) FROM rows GROUP BY slot

twice (by the last and by one before the first slot of each row, then a running sum
backwards over the slots) plus one GROUP BY over the departing rows, which is how a DataFrame engine
(DuckDB, Spark) evaluates the same step.

On the study grid every episode lies inside one grid interval, so it is at risk at one
event time at most (``first == last``): the risk set of each event time is then a plain
group-by over the rows of that interval. The index sorts the rows once by (slot, departing
first), so each slot is one contiguous block whose departing rows lead; a step then reads
the covariates once, in cache-sized chunks of one block (x'beta, exp, and the chunk's
sums of w, w*x and w*x*x' by one small matrix product), with no running sums, no gathers
and no temporary of the table's size. Other tables (continuous times, rows spanning
several event times) use the general path: sparse group sums in chunks of rows, then
running sums over slots. Memory is O(rows x p) for the covariates plus O(chunk x p^2)
scratch; nothing of size rows x p^2 is held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

CHUNK_ROWS = 1 << 16  # rows per block of the general path's scratch (rows x p^2 floats)
GRID_CHUNK = 1 << 13  # rows per chunk on the grid path (a chunk's x stays in cache)


@dataclass(frozen=True)
class RiskSetIndex:
    """Which event-time slots each row is at risk at (built once per table).

    Rows never at risk at an event time are left out; ``rows`` gives the original
    position of each kept row, and the kept rows are ordered by their first slot (on the
    grid path: by slot, the departing rows of each slot first).

    Attributes
    ----------
    rows : ndarray of int
        Original positions of the kept rows, in index order.
    first, last : ndarray of int
        First and last slot each kept row is at risk at.
    event_slot : ndarray of int
        Slot of each kept row's departure, -1 when it does not depart.
    times : ndarray of float
        Event time of each slot.
    slot_stratum : ndarray of int
        Stratum code of each slot (slots of one stratum are consecutive, times ascending).
    grid : bool
        Every kept row is at risk at exactly one slot (the fast path).
    bounds : ndarray of int
        Grid path only: kept rows ``bounds[k]:bounds[k+1]`` are the risk set of slot k.
    dead_end : ndarray of int
        Grid path only: rows ``bounds[k]:dead_end[k]`` are the ones departing at slot k.
    """

    rows: np.ndarray
    first: np.ndarray
    last: np.ndarray
    event_slot: np.ndarray
    times: np.ndarray
    slot_stratum: np.ndarray
    grid: bool
    bounds: np.ndarray | None
    dead_end: np.ndarray | None = None

    @property
    def n_slots(self) -> int:
        return len(self.times)

    @property
    def dead_rows(self) -> np.ndarray:
        """Kept rows (index order) that depart."""
        if "_dead" not in self.__dict__:
            object.__setattr__(self, "_dead", np.flatnonzero(self.event_slot >= 0))
        return self.__dict__["_dead"]


def index_risk_sets(start: np.ndarray, stop: np.ndarray, event: np.ndarray,
                    stratum: np.ndarray | None = None) -> RiskSetIndex:
    """Index the risk sets of start/stop rows (times are compared exactly).

    Parameters
    ----------
    start, stop : ndarray of float
        Each row is at risk on (start, stop].
    event : ndarray of bool
        The row ends with a departure at ``stop``.
    stratum : ndarray of int, optional
        Stratum code of each row (0..S-1); risk sets never mix strata.

    Returns
    -------
    RiskSetIndex

    Examples
    --------
    >>> ix = index_risk_sets(np.array([0., 0., 1.]), np.array([1., 2., 2.]),
    ...                      np.array([True, False, True]))
    >>> ix.times.tolist(), ix.first.tolist(), ix.last.tolist(), ix.grid
    ([1.0, 2.0], [0, 0, 1], [0, 1, 1], False)
    """
    n = len(stop)
    codes = np.unique(stratum) if stratum is not None else np.zeros(1, np.int64)
    times, slot_stratum = [], []
    if len(codes) == 1:  # one stratum: whole-array operations, no gathers
        t = np.unique(stop[event])
        first = _count_at_or_before(t, start)
        last = _count_at_or_before(t, stop) - 1
        times, slot_stratum = [t], [np.full(len(t), codes[0], dtype=np.int64)]
        offset = len(t)
    else:
        stratum = np.asarray(stratum, np.int64)
        first = np.full(n, -1, dtype=np.int64)
        last = np.full(n, -2, dtype=np.int64)
        offset = 0
        for code in codes:
            rows = np.flatnonzero(stratum == code)
            t = np.unique(stop[rows][event[rows]])
            first[rows] = offset + _count_at_or_before(t, start[rows])
            last[rows] = offset + _count_at_or_before(t, stop[rows]) - 1
            times.append(t)
            slot_stratum.append(np.full(len(t), code, dtype=np.int64))
            offset += len(t)
    times = np.concatenate(times) if times else np.zeros(0)
    slot_stratum = (np.concatenate(slot_stratum) if slot_stratum
                    else np.zeros(0, np.int64))
    if not np.any(first < last):  # every row at risk at one slot at most: the grid
        return _grid_index(first, last, event, offset, times, slot_stratum)
    event_slot = np.where(event, last, -1)
    at_risk = first <= last
    order = np.flatnonzero(at_risk)
    # few slots (a grid): 16-bit keys get numpy's radix sort
    keys = first[order].astype(np.int16) if offset < 2 ** 15 else first[order]
    order = order[np.argsort(keys, kind="stable")]
    first, last, event_slot = first[order], last[order], event_slot[order]
    return RiskSetIndex(order, first, last, event_slot, times, slot_stratum, False, None)


def _grid_index(first, last, event, k, times, slot_stratum) -> RiskSetIndex:
    """Index of rows each at risk at one slot at most: sorted by (slot, departing first).

    One radix sort of small integer keys; the sorted slots and departure slots are then
    written from the block sizes, not gathered row by row (at 17M rows a gather in sorted
    order misses the cache on every row).
    """
    # key 2*slot for a departure, 2*slot+1 otherwise; rows never at risk sort last.
    # Few slots (a grid): 16-bit keys get numpy's radix sort
    key = first.astype(np.int16 if 2 * k < 2 ** 15 else np.int64)
    key *= 2
    key += ~event
    key[first > last] = 2 * k
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=2 * k + 1)[:2 * k].reshape(k, 2)
    order = order[:counts.sum()]
    sizes = counts.sum(axis=1)
    bounds = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    dead_end = bounds[:-1] + counts[:, 0]
    slots = np.arange(k)
    first = np.repeat(slots, sizes)
    event_slot = np.repeat(np.column_stack([slots, np.full(k, -1)]).ravel(), counts.ravel())
    return RiskSetIndex(order, first, first, event_slot, times, slot_stratum, True, bounds,
                        dead_end)


LOOKUP_MAX = 1 << 20  # whole-number times up to this use a lookup table, not a search


def _count_at_or_before(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each v, the number of event times t <= v (``searchsorted(t, v, "right")``).

    On a grid the event times are whole numbers (grid units): then the count for v is
    the count for floor(v), and a table lookup by floor(v) is several times faster than
    a binary search per row, with the same counts (for any v >= 0, whole or not).
    """
    if len(t) and len(v) and t[0] >= 0 and t[-1] <= LOOKUP_MAX and np.all(t == np.floor(t)):
        lo, hi = v.min(), v.max()
        if lo >= 0 and hi <= LOOKUP_MAX:
            table = np.searchsorted(t, np.arange(int(hi) + 1), side="right")
            table = table.astype(np.int64 if len(t) >= 2 ** 31 else np.int32)
            return table[v.astype(np.int64)]  # truncation = floor for v >= 0
    return np.searchsorted(t, v, side="right")


@dataclass
class RiskSetSums:
    """Per-slot sums of one Newton step (see :func:`risk_set_sums`).

    ``s*`` are over the risk set, ``e*`` over the rows departing at the slot; 0, 1, 2 are
    the sums of w, w*x and w*x*x' (``s2``/``e2`` are None when not asked for).
    ``n_dead`` counts the departures with a positive case weight, ``dead_w`` sums their
    case weights. The w are scaled by exp(-shift) (shift = the largest x'beta), which
    cancels in every ratio; the log-likelihood adds it back.
    """

    s0: np.ndarray
    s1: np.ndarray
    s2: np.ndarray | None
    e0: np.ndarray
    e1: np.ndarray
    e2: np.ndarray | None
    n_dead: np.ndarray
    dead_w: np.ndarray
    shift: float


def risk_set_sums(index: RiskSetIndex, x: np.ndarray, beta: np.ndarray,
                  weights: np.ndarray | None = None, second: bool = True) -> RiskSetSums:
    """Sums of w, w*x, w*x*x' per risk set and per tied group at coefficients ``beta``.

    Parameters
    ----------
    index : RiskSetIndex
    x : ndarray (rows, p)
        Covariates of the kept rows, in index order (``x_all[index.rows]``).
    beta : ndarray (p,)
    weights : ndarray (rows,), optional
        Case weights in index order (0 leaves a row out, e.g. a held-out fold).
    second : bool
        Also compute the p x p sums (the information matrix needs them, the likelihood
        and score do not).

    Returns
    -------
    RiskSetSums

    Examples
    --------
    >>> ix = index_risk_sets(np.array([0., 0., 1.]), np.array([1., 2., 2.]),
    ...                      np.array([True, False, True]))
    >>> s = risk_set_sums(ix, np.array([[1.], [0.], [2.]]), np.array([0.]))
    >>> s.s0.tolist(), s.s1[:, 0].tolist(), s.e0.tolist()
    ([2.0, 2.0], [1.0, 2.0], [1.0, 1.0])
    """
    beta = np.asarray(beta, float).reshape(-1)
    k = index.n_slots
    if index.grid and index.dead_end is not None:
        return _grid_sums(index, x, beta, weights, second)
    eta = x @ beta if x.shape[1] else np.zeros(len(x))
    shift = float(eta.max()) if len(eta) else 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        eta -= shift
        w = np.exp(eta, out=eta)
    if weights is not None:
        w *= weights
    s0, s1, s2 = _range_sums(index.first, index.last, k, x, w, second, index.slot_stratum)
    dead = index.dead_rows
    if weights is not None:
        dead = dead[weights[dead] > 0]
    slots = index.event_slot[dead]
    e0, e1, e2 = _keyed_sums(slots, k, x[dead], w[dead], second)
    n_dead, dead_w = _dead_counts(index, weights)
    return RiskSetSums(s0, s1, s2, e0, e1, e2, n_dead, dead_w, shift)


def _dead_counts(index: RiskSetIndex, weights):
    """Departures with a positive case weight per slot, and the sum of their weights."""
    dead = index.dead_rows
    if weights is None:
        n_dead = np.bincount(index.event_slot[dead], minlength=index.n_slots).astype(float)
        return n_dead, n_dead.copy()
    wd = weights[dead]
    slots = index.event_slot[dead]
    return (np.bincount(slots, wd > 0, minlength=index.n_slots).astype(float),
            np.bincount(slots, wd, minlength=index.n_slots))


def _grid_chunks(index: RiskSetIndex):
    """(lo, hi, slot, departing) of the grid path's chunks: pieces of at most GRID_CHUNK
    rows of one slot's departing rows or of its other rows."""
    k = index.n_slots
    lo = np.column_stack([index.bounds[:-1], index.dead_end]).ravel()
    hi = np.column_stack([index.dead_end, index.bounds[1:]]).ravel()
    slot = np.repeat(np.arange(k), 2)
    departing = np.tile([True, False], k)
    pieces = -(-(hi - lo) // GRID_CHUNK)  # 0 for an empty segment
    starts = np.repeat(lo, pieces) + GRID_CHUNK * (
        np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces))
    ends = np.minimum(starts + GRID_CHUNK, np.repeat(hi, pieces))
    return starts, ends, np.repeat(slot, pieces), np.repeat(departing, pieces)


def thin_grid_index(index: RiskSetIndex, step: int) -> tuple[RiskSetIndex, np.ndarray]:
    """Every ``step``-th row of each slot's departing rows and of its other rows.

    A grid index of a table ``step`` times smaller with the same slots (for starting
    values of a large fit). Returns the index and the positions of its rows among the
    kept rows of ``index`` (to take their covariates and weights).
    """
    k = index.n_slots
    lo = np.column_stack([index.bounds[:-1], index.dead_end]).ravel()
    hi = np.column_stack([index.dead_end, index.bounds[1:]]).ravel()
    taken = -(-(hi - lo) // step)
    pos = np.repeat(lo, taken) + step * (np.arange(taken.sum())
                                         - np.repeat(np.cumsum(taken) - taken, taken))
    counts = taken.reshape(k, 2)
    sizes = counts.sum(axis=1)
    bounds = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    slots = np.arange(k)
    first = np.repeat(slots, sizes)
    event_slot = np.repeat(np.column_stack([slots, np.full(k, -1)]).ravel(), taken)
    sub = RiskSetIndex(index.rows[pos], first, first, event_slot, index.times,
                       index.slot_stratum, True, bounds, bounds[:-1] + counts[:, 0])
    return sub, pos


def _grid_sums(index, x, beta, weights, second) -> RiskSetSums:
    """Grid path of :func:`risk_set_sums`: one pass over the rows in chunks of one block.

    Each chunk is scaled by its own largest x'beta (so exp never overflows within it);
    the chunks' sums are then put on the common scale exp(-shift), shift = the largest
    x'beta of all rows, as the general path has it.
    """
    k = index.n_slots
    p = x.shape[1]
    starts, ends, slot, departing = _grid_chunks(index)
    n = len(starts)
    top = np.zeros(n)
    c0 = np.zeros(n)
    c1 = np.zeros((n, p))
    c2 = np.zeros((n, p, p)) if second else None
    with np.errstate(over="ignore", invalid="ignore"):
        for i, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            xs = x[lo:hi]
            eta = xs @ beta if p else np.zeros(hi - lo)
            t = eta.max()
            eta -= t
            w = np.exp(eta, out=eta)
            if weights is not None:
                w *= weights[lo:hi]
            top[i] = t
            c0[i] = w.sum()
            if p:
                c1[i] = w @ xs
                if second:
                    c2[i] = (xs * w[:, None]).T @ xs
        shift = float(top.max()) if n else 0.0
        scale = np.exp(top - shift)
        c0 *= scale
        c1 *= scale[:, None]
        if second:
            c2 *= scale[:, None, None]
    s0, s1, s2 = _sum_by(slot, k, c0, c1, c2)
    dead = np.flatnonzero(departing)
    e0, e1, e2 = _sum_by(slot[dead], k, c0[dead], c1[dead],
                         c2[dead] if second else None)
    n_dead, dead_w = _dead_counts(index, weights)
    return RiskSetSums(s0, s1, s2, e0, e1, e2, n_dead, dead_w, shift)


def _sum_by(keys, k, c0, c1, c2):
    s0 = np.bincount(keys, c0, minlength=k)
    s1 = np.zeros((k, c1.shape[1]))
    np.add.at(s1, keys, c1)
    if c2 is None:
        return s0, s1, None
    s2 = np.zeros((k, *c2.shape[1:]))
    np.add.at(s2, keys, c2)
    return s0, s1, s2


def _pairs(p: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(p)


def _unpack(flat: np.ndarray, p: int) -> np.ndarray:
    """(k, p(p+1)/2) upper triangles -> (k, p, p) symmetric matrices."""
    ia, ib = _pairs(p)
    out = np.empty((len(flat), p, p))
    out[:, ia, ib] = flat
    out[:, ib, ia] = flat
    return out


def _keyed_sums(keys, k, x, w, second):
    """GROUP BY key: sums of w, w*x, w*x*x' (the departing rows: few, one bincount each)."""
    p = x.shape[1]
    s0 = np.bincount(keys, w, minlength=k)
    s1 = np.zeros((k, p))
    for a in range(p):
        s1[:, a] = np.bincount(keys, w * x[:, a], minlength=k)
    if not second:
        return s0, s1, None
    s2 = np.zeros((k, p, p))
    for a in range(p):
        wx = w * x[:, a]
        for b in range(a, p):
            s2[:, a, b] = s2[:, b, a] = np.bincount(keys, wx * x[:, b], minlength=k)
    return s0, s1, s2


def _range_sums(first, last, k, x, w, second, slot_stratum):
    """Sums over the rows with first <= slot <= last, by running sums from the last slot.

    A row adds at its last slot and is taken off again below its first one; the running
    sum goes backwards in time within each stratum (as R's coxph does), so rows that left
    early never enter later risk sets and cannot cancel there (no late entry: exact).
    """
    p = x.shape[1]
    ia, ib = _pairs(p)
    stratum_first = np.searchsorted(slot_stratum, slot_stratum[first])
    late = first > stratum_first  # entered after the stratum's first event time
    keys = np.concatenate([last, first[late] - 1])
    signs = np.concatenate([np.ones(len(last)), -np.ones(int(late.sum()))])
    rows = np.concatenate([np.arange(len(last)), np.flatnonzero(late)])
    order = np.argsort(rows, kind="stable")  # chunks of rows, each row's entries together
    keys, signs, rows = keys[order], signs[order], rows[order]
    acc0 = np.bincount(keys, signs * w[rows], minlength=k)
    acc1 = np.zeros((k, p))
    acc2 = np.zeros((k, len(ia))) if second else None
    for lo in range(0, len(first), CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS, len(first))
        a, b = np.searchsorted(rows, [lo, hi])
        m = hi - lo
        ind = sparse.csr_matrix((signs[a:b] * w[rows[a:b]], (keys[a:b], rows[a:b] - lo)),
                                shape=(k, m))
        acc1 += ind @ x[lo:hi]
        if second:
            acc2 += ind @ (x[lo:hi][:, ia] * x[lo:hi][:, ib])
    bounds = np.flatnonzero(np.r_[True, slot_stratum[1:] != slot_stratum[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        acc0[lo:hi] = np.cumsum(acc0[lo:hi][::-1])[::-1]
        acc1[lo:hi] = np.cumsum(acc1[lo:hi][::-1], axis=0)[::-1]
        if second:
            acc2[lo:hi] = np.cumsum(acc2[lo:hi][::-1], axis=0)[::-1]
    return acc0, acc1, (_unpack(acc2, p) if second else None)
