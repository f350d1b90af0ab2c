"""Calibration of predicted probabilities: can a predicted 80% be believed?

Every function takes ``p`` (float64 in [0, 1]: the probability the model gives the event) and
``y`` (0/1: whether the event happened), one per row: for a binary model the positive class's
probability and label; for a multiclass model the *top-label* event, the predicted class's
probability and whether the prediction was right.

- **ECE** (expected calibration error): ``sum_b (n_b / n) |mean(y_b) − mean(p_b)|`` over bins of
  ``p``; equal-width bins as torchmetrics' ``CalibrationError`` bins them (``n_bins`` bins of
  [0, 1], ``torch.bucketize(p, edges, right=True) − 1``, the last bin closed), or equal-mass
  bins (sorted rows split into ``n_bins`` runs of sizes differing by at most one, as
  ``numpy.array_split``; :class:`Ranked` spreads a run of ties' events evenly through it, so
  an edge inside the run takes its share). **MCE**: the largest bin's gap.
- **Debiased ECE** (Kumar, Liang & Ma, "Verified uncertainty calibration", NeurIPS 2019, their
  ``normal_debiased_ce``): a plug-in ECE over-states the error, because every bin's mean label
  is noisy; each bin's mean label is redrawn ``draws`` times from a normal with the binomial
  standard error, and the debiased estimate is ``2 ECE − mean(redrawn ECEs)`` (the mean taken
  exactly here, not over random redraws). Their debiased
  squared error (``unbiased_square_ce``) for the L2 error: ``sum_b (n_b / n) [(mean(p_b) −
  mean(y_b))² − mean(y_b)(1 − mean(y_b)) / (n_b − 1)]``, its square root when positive.
- **Brier decomposition** (CORP: Dimitriadis, Gneiting & Jordan, PNAS 2021): with ``r`` the
  isotonic regression of ``y`` on ``p`` (pool-adjacent-violators, equal to scikit-learn's
  ``IsotonicRegression``) and ``ȳ`` the mean label: miscalibration ``MCB = S(p) − S(r)``,
  discrimination ``DSC = S(ȳ) − S(r)``, uncertainty ``UNC = S(ȳ)``, ``S`` the mean Brier score;
  ``Brier = MCB − DSC + UNC`` exactly. The isotonic fit is also the reliability diagram's curve.
- **Calibration test** (:func:`calibration_test`): over the equal-mass bins, the events'
  count less the probabilities' sum, squared, over the variance the count would have if the
  probabilities were right (``Σ p (1 − p)``), summed: chi-squared with one degree of freedom
  a bin when the model is calibrated (the Hosmer–Lemeshow statistic of a model scored on data
  it was not fitted to, with the variance of each bin's rows rather than of their mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Bins of the ECE (torchmetrics' and Kumar et al.'s default).
N_BINS = 15


def equal_width_bins(p: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Each row's bin of ``n_bins`` equal-width bins of [0, 1] (torchmetrics' bucketing)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)


def ascending(p: np.ndarray) -> np.ndarray:
    """The rows in the order of ``p`` (ties by row order): the one sort the functions here share.

    NumPy's default sort (vectorised, 0.07 s at 10^6 float64 values against 0.13 s for its
    stable sort) leaves tied rows in an order that may depend on the machine, so the rows of
    each run of ties are then put in row order (a sort of the tied rows alone): the stable
    order, exactly."""
    order = np.argsort(p)
    if p.size < 2:
        return order
    sorted_p = p[order]
    tied = sorted_p[1:] == sorted_p[:-1]
    if tied.any():
        member = np.r_[tied, False] | np.r_[False, tied]  # rows in a run of ties
        where = np.flatnonzero(member)
        run = np.cumsum(np.r_[True, ~tied][where])  # a new run wherever the value changes
        order[where] = order[where][np.lexsort((order[where], run))]
    return order


def equal_mass_bins(p: np.ndarray, n_bins: int = N_BINS, order: np.ndarray | None = None) -> np.ndarray:
    """Each row's bin of ``n_bins`` bins holding equal numbers of rows in the order of ``p``
    (ties broken by row order; fewer bins than rows when there are fewer rows)."""
    n = p.size
    bins = min(n_bins, max(n, 1))
    order = ascending(p) if order is None else order
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(np.arange(bins), sizes)
    return out


@dataclass(frozen=True)
class Ranked:
    """The rows in increasing order of ``p``, with prefix sums, so that the counts and sums of
    any run of sorted rows (a bin, a distinct value) cost two lookups: what the audit computes
    every figure from at any number of rows, after the one sort.

    Within a run of tied probabilities the order of the rows is not the file's: the run's
    events are spread evenly through it (the ``⌊(j + 1) e / c⌋ − ⌊j e / c⌋`` pattern), so that a
    bin edge falling inside the run takes its share of the events, whatever order the rows came
    in. Every figure is then the same for any order of the same rows (the ECE over equal-mass
    bins of a risk scale's few values too), and the sort need not be stable."""

    p: np.ndarray  # sorted
    cum_p: np.ndarray  # prefix sums, n + 1 long: Σ p, Σ y, Σ p·y, Σ p·(1 − p) of the first i rows
    cum_y: np.ndarray
    cum_py: np.ndarray
    cum_var: np.ndarray
    starts: np.ndarray  # the first sorted row of each distinct value of p

    @property
    def n(self) -> int:
        return int(self.p.size)

    def runs(self, bounds: np.ndarray) -> Bins:
        """The bins of the sorted rows cut at ``bounds`` (first rows of each bin, then n)."""
        start, end = bounds[:-1], bounds[1:]
        count = (end - start).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return Bins(count, (self.cum_p[end] - self.cum_p[start]) / count,
                        (self.cum_y[end] - self.cum_y[start]) / count)

    def equal_runs(self, runs: int) -> np.ndarray:
        """Bounds of about ``runs`` runs of equal size in the sorted rows, never splitting a
        distinct value (fewer runs where ties are heavy)."""
        values, count, _ = self.distinct
        rows_before = np.cumsum(count)
        ends = np.unique(np.minimum(np.searchsorted(rows_before, np.linspace(0, self.n, runs + 1)[1:], side="left"),
                                    values.size - 1))
        return np.r_[0, rows_before[ends]].astype(np.int64)

    def at_or_above(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each distinct probability, ascending, with the rows and the events at or above it."""
        return self.p[self.starts], (self.n - self.starts).astype(np.float64), self.cum_y[-1] - self.cum_y[self.starts]

    @cached_property
    def distinct(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each distinct probability, ascending, with its rows and events."""
        bounds = np.r_[self.starts, self.n]
        return self.p[self.starts], np.diff(bounds).astype(np.float64), self.cum_y[bounds[1:]] - self.cum_y[bounds[:-1]]


def _spread_ties(sorted_y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``sorted_y`` with each run of tied rows' events spread evenly through the run (in place;
    the rows of runs of one are left as they are)."""
    count = np.diff(np.r_[starts, sorted_y.size])
    tied = np.flatnonzero(count > 1)
    if tied.size == 0:
        return sorted_y
    events = np.add.reduceat(sorted_y, starts)[tied].astype(np.int64)
    c = count[tied]
    run = np.repeat(np.arange(tied.size), c)
    j = np.arange(int(c.sum()), dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
    e, size = events[run], c[run]
    sorted_y[starts[tied][run] + j] = ((j + 1) * e) // size - (j * e) // size
    return sorted_y


def _ranked(sorted_p: np.ndarray, sorted_y: np.ndarray, starts: np.ndarray) -> Ranked:
    def prefix(values: np.ndarray) -> np.ndarray:
        out = np.empty(values.size + 1)
        out[0] = 0.0
        np.cumsum(values, out=out[1:])
        return out

    return Ranked(sorted_p, prefix(sorted_p), prefix(sorted_y), prefix(sorted_p * sorted_y),
                  prefix(sorted_p * (1.0 - sorted_p)), starts)


def rank(p: np.ndarray, y: np.ndarray) -> Ranked:
    """The rows ranked by ``p`` (NumPy's default sort: the order within ties does not matter)."""
    order = np.argsort(p)
    sorted_p, sorted_y = p[order], np.asarray(y, dtype=np.float64)[order]
    starts = np.r_[0, np.flatnonzero(sorted_p[1:] != sorted_p[:-1]) + 1] if sorted_p.size else np.zeros(0, np.int64)
    return _ranked(sorted_p, _spread_ties(sorted_y, starts), starts)


def width_bounds(r: Ranked, n_bins: int = N_BINS) -> np.ndarray:
    """The equal-width bins' bounds in the sorted rows (:func:`equal_width_bins`' bins)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.r_[0, np.searchsorted(r.p, edges[1:-1], side="left"), r.n]


def mass_bounds(n: int, n_bins: int = N_BINS) -> np.ndarray:
    """The equal-mass bins' bounds in the sorted rows (:func:`equal_mass_bins`' bins)."""
    bins = min(n_bins, max(n, 1))
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1
    return np.r_[0, np.cumsum(sizes)]


@dataclass(frozen=True)
class Bins:
    """Per-bin counts, mean probabilities and mean labels (NaN in empty bins)."""

    count: np.ndarray
    mean_p: np.ndarray
    mean_y: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return np.abs(self.mean_y - self.mean_p)


def binned(p: np.ndarray, y: np.ndarray, bins: np.ndarray, n_bins: int) -> Bins:
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(bins, weights=p, minlength=n_bins) / count
        mean_y = np.bincount(bins, weights=y, minlength=n_bins) / count
    return Bins(count, mean_p, mean_y)


def ece(b: Bins) -> float:
    n = b.count.sum()
    filled = b.count > 0
    return float(np.sum(b.count[filled] / n * b.gap[filled])) if n else float("nan")


def mce(b: Bins) -> float:
    filled = b.count > 0
    return float(np.max(b.gap[filled])) if np.any(filled) else float("nan")


def expected_abs(mean: np.ndarray, scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``E|X − centre|`` for ``X ~ N(mean, scale²)``, exactly (the folded normal's mean):
    ``σ √(2/π) exp(−d²/2σ²) + d (1 − 2Φ(−d/σ))`` with ``d = mean − centre``; ``|d|`` where σ = 0."""
    d = mean - centre
    safe = np.where(scale > 0, scale, 1.0)
    folded = safe * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * (d / safe) ** 2) + d * (1.0 - 2.0 * _normal_cdf(-d / safe))
    return np.where(scale > 0, folded, np.abs(d))


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(−x/√2) / 2 (the standard library's erfc: SciPy's import would cost 0.2 s)."""
    return 0.5 * np.asarray(_ERFC(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)), dtype=np.float64)


def debiased_ece(b: Bins) -> float:
    """Kumar et al.'s normal-debiased L1 ECE: ``2 ECE − E[ECE]`` with every bin's mean label
    redrawn from ``N(mean(y_b), mean(y_b)(1 − mean(y_b)) / n_b)``. Their code averages 1,000
    random redraws; the expectation is taken here exactly (:func:`expected_abs`), so the
    figure does not depend on a seed."""
    filled = b.count > 0
    count, mean_p, mean_y = b.count[filled], b.mean_p[filled], b.mean_y[filled]
    if count.size == 0:
        return float("nan")
    weight = count / count.sum()
    plug_in = float(np.sum(weight * np.abs(mean_y - mean_p)))
    scale = np.sqrt(mean_y * (1.0 - mean_y) / count)
    return 2.0 * plug_in - float(np.sum(weight * expected_abs(mean_y, scale, mean_p)))


@dataclass(frozen=True)
class Test:
    """A test of "the probabilities are right": its statistic, degrees of freedom and p-value."""

    statistic: float
    dof: int
    p_value: float


def calibration_test(p: np.ndarray, y: np.ndarray, bins: np.ndarray, n_bins: int) -> Test:
    """``Σ_b (Σ y − Σ p)² / Σ p (1 − p)`` over the bins, against chi-squared with one degree of
    freedom per bin whose variance is not 0 (a bin of probabilities all 0 or 1 whose events
    differ from them makes the statistic infinite: p-value 0)."""
    return _test(np.bincount(bins, weights=y, minlength=n_bins), np.bincount(bins, weights=p, minlength=n_bins),
                 np.bincount(bins, weights=p * (1.0 - p), minlength=n_bins))


def ranked_test(r: Ranked, bounds: np.ndarray) -> Test:
    """:func:`calibration_test` over the sorted rows' bins cut at ``bounds``."""
    start, end = bounds[:-1], bounds[1:]
    observed, expected = r.cum_y[end] - r.cum_y[start], r.cum_p[end] - r.cum_p[start]
    return _test(observed, expected, r.cum_var[end] - r.cum_var[start])


def _test(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> Test:
    certain = variance <= 1e-12 * np.maximum(np.abs(expected), 1.0)
    if np.any(certain & (np.abs(observed - expected) > 1e-9)):
        return Test(float("inf"), int(np.sum(~certain)), 0.0)
    dof = int(np.sum(~certain))
    if dof == 0:
        return Test(0.0, 0, 1.0)
    statistic = float(np.sum((observed[~certain] - expected[~certain]) ** 2 / variance[~certain]))
    return Test(statistic, dof, chi2_sf(statistic, dof))


def chi2_sf(x: float, dof: int) -> float:
    """P(X ≥ x) for X chi-squared with a whole number ``dof`` of degrees of freedom, in closed
    form (even: the Poisson sum; odd: erfc and the odd series), without SciPy's import."""
    if x <= 0:
        return 1.0
    half = x / 2.0
    if dof % 2 == 0:
        term = total = 1.0
        for j in range(1, dof // 2):
            term *= half / j
            total += term
        return float(min(1.0, math.exp(-half) * total))
    root = math.sqrt(x)
    total, term = 0.0, root * math.sqrt(2.0 / math.pi) * math.exp(-half)  # the j = 1 term of the odd series
    for j in range(1, (dof - 1) // 2 + 1):
        total += term
        term *= x / (2 * j + 1)
    return float(min(1.0, math.erfc(root / math.sqrt(2.0)) + total))


def debiased_l2(b: Bins) -> float:
    """Kumar et al.'s debiased L2 calibration error (``unbiased_l2_ce``); bins of one row add 0."""
    n = b.count.sum()
    usable = b.count >= 2
    if not n:
        return float("nan")
    count, mean_p, mean_y = b.count[usable], b.mean_p[usable], b.mean_y[usable]
    squared = np.sum(count / n * ((mean_p - mean_y) ** 2 - mean_y * (1.0 - mean_y) / (count - 1.0)))
    return float(np.sqrt(max(squared, 0.0)))


#: Distinct probabilities up to which the isotonic fit is the pool-adjacent-violators loop
#: (~1 µs a value; less overhead than NumPy's passes on a few values), beyond which it is the
#: greatest convex minorant (:func:`_minorant`: 0.03 s at 10^6 values, where the loop takes 2 s).
SMALL_PAVA = 1_000


def _pava(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted non-decreasing least-squares fit of ``values`` (pool adjacent violators:
    each new value starts a block; while a block's mean is not above the previous block's, the
    two are pooled)."""
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(values.tolist(), weights.tolist()):
        means.append(value)
        totals.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] >= means[-1]:
            weight = totals[-2] + totals[-1]
            means[-2] = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight
            totals[-2] = weight
            sizes[-2] += sizes[-1]
            del means[-1], totals[-1], sizes[-1]
    return np.repeat(np.asarray(means, dtype=np.float64), sizes)


def _minorant(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The same fit as :func:`_pava`, as the slopes of the greatest convex minorant of the
    cumulative sum diagram (Barlow et al. 1972): the points ``(Σ w, Σ w·v)``; every point on or
    above the chord of its two neighbours is dropped (it cannot be a corner of the minorant),
    all at once, pass after pass, until the chain is convex (about 15 passes at 10^6 values, each
    on fewer points); each value's fit is its segment's slope."""
    x, y = np.empty(values.size + 1), np.empty(values.size + 1)
    x[0] = y[0] = 0.0
    np.cumsum(weights, out=x[1:])
    np.cumsum(values * weights, out=y[1:])
    return _minorant_of(x, y)


def _minorant_of(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`_minorant` from the cumulative sums themselves (``x``: weights, ``y``: weighted
    values, each starting at 0)."""
    corner = np.arange(x.size)
    while x.size > 2:
        convex = (x[1:-1] - x[:-2]) * (y[2:] - y[:-2]) - (y[1:-1] - y[:-2]) * (x[2:] - x[:-2]) > 0
        if convex.all():
            break
        keep = np.r_[True, convex, True]
        x, y, corner = x[keep], y[keep], corner[keep]
    return np.repeat(np.diff(y) / np.diff(x), np.diff(corner))


@dataclass(frozen=True)
class Decomposition:
    """The CORP decomposition of the Brier score: ``brier = mcb − dsc + unc``."""

    brier: float
    mcb: float
    dsc: float
    unc: float


def isotonic_fit(mean_y: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The weighted isotonic fit of distinct values' event shares, clipped to [0, 1]."""
    fit = _pava if mean_y.size <= SMALL_PAVA else _minorant
    return np.clip(fit(mean_y, count), 0.0, 1.0)


def ranked_decomposition(r: Ranked) -> tuple[Decomposition, np.ndarray, np.ndarray]:
    """The CORP decomposition from the distinct values alone (the Brier score of a distinct
    value's rows is ``count·v² − 2 v·events + events``), with the distinct values and their
    isotonic fit: :func:`decomposition` of :func:`isotonic`, without a pass over the rows."""
    values, count, events = r.distinct
    if values.size > SMALL_PAVA:  # the cumulative sums are the ranked rows' own prefix sums
        bounds = np.r_[r.starts, r.n]
        fitted = np.clip(_minorant_of(bounds.astype(np.float64), r.cum_y[bounds]), 0.0, 1.0)
    else:
        fitted = isotonic_fit(events / count, count) if values.size else values

    def score(v: np.ndarray) -> float:
        return float(np.sum(count * v * v - 2.0 * v * events + events) / r.n)

    mean = float(r.cum_y[-1] / r.n)
    brier, best = score(values), score(fitted)
    unc = mean * (1.0 - mean)
    return Decomposition(brier=brier, mcb=brier - best, dsc=unc - best, unc=unc), values, fitted


#: Points at which the consistency band is drawn, and replicates that draw it.
BAND_POINTS = 100
BAND_REPLICATES = 200


@dataclass(frozen=True)
class Band:
    """The consistency band of a reliability diagram at ``x`` (each run's mean probability):
    where the isotonic curve of calibrated probabilities falls (``low``–``high``), and the
    data's own curve over the same runs (``fitted``), with each run's rows."""

    x: np.ndarray
    low: np.ndarray
    high: np.ndarray
    fitted: np.ndarray
    rows: np.ndarray

    def outside(self) -> float:
        """The share of rows whose run's recalibrated probability lies outside the band."""
        out = (self.fitted < self.low - 1e-12) | (self.fitted > self.high + 1e-12)
        return float(self.rows[out].sum() / self.rows.sum()) if self.rows.size else 0.0


def consistency_band(r: Ranked, rng: np.random.Generator, confidence: float,
                     points: int = BAND_POINTS, replicates: int = BAND_REPLICATES) -> Band:
    """CORP's consistency band (Dimitriadis, Gneiting & Jordan 2021, their ``reliabilitydiag``):
    events redrawn as if the probabilities were right, and the isotonic curve refitted, each
    replicate; pointwise ``confidence`` quantiles. A recalibrated curve outside the band is
    miscalibration beyond chance there. The rows are pooled into about ``points`` runs of
    equal size (ties never split), each run's events drawn Binomial(rows, mean probability)."""
    if r.n == 0:
        return Band(*(np.zeros(0),) * 5)
    runs = r.runs(r.equal_runs(points))
    drawn = rng.binomial(runs.count.astype(np.int64), np.clip(runs.mean_p, 0.0, 1.0),
                         size=(replicates, runs.count.size)) / runs.count
    refitted = np.stack([_pava(shares, runs.count) for shares in drawn])  # ~50 µs each
    tail = (1 - confidence) / 2
    low, high = np.quantile(refitted, [tail, 1 - tail], axis=0)
    fitted = _pava(runs.mean_y, runs.count)
    return Band(runs.mean_p, low, high, fitted, runs.count)


def isotonic(p: np.ndarray, y: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """The isotonic (non-decreasing) regression of ``y`` on ``p`` at every row: the CORP
    recalibrated probabilities. As scikit-learn's ``IsotonicRegression().fit(p, y).predict(p)``
    (rows of equal ``p`` pooled first, then pool-adjacent-violators: :func:`_pava` on up to
    :data:`SMALL_PAVA` distinct values, the convex minorant beyond), from one sort and without
    importing scikit-learn (0.8 s) or SciPy (0.4 s)."""
    order = ascending(p) if order is None else order
    sorted_p = p[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]  # the first row of each distinct value
    count = np.diff(np.r_[first, sorted_p.size]).astype(np.float64)
    mean_y = np.add.reduceat(y[order].astype(np.float64), first) / count if sorted_p.size else count
    fitted = isotonic_fit(mean_y, count)
    out = np.empty_like(p, dtype=np.float64)
    out[order] = np.repeat(fitted, count.astype(np.int64))
    return out


def decomposition(p: np.ndarray, y: np.ndarray, recalibrated: np.ndarray) -> Decomposition:
    mean = float(np.mean(y))
    score = float(np.mean((p - y) ** 2))
    best = float(np.mean((recalibrated - y) ** 2))
    unc = float(np.mean((mean - y) ** 2))
    return Decomposition(brier=score, mcb=score - best, dsc=unc - best, unc=unc)
