"""Budget analysis (search phase): the expected best score over k random configurations.

Lucic et al. 2018 (section 5, "min FID vs budget") compare losses by the minimum FID reached when k
hyperparameter configurations are drawn at random from the search, for k = 1..B. With B configs of a
cell sorted so that x_(1) <= ... <= x_(B), the minimum of k drawn without replacement is x_(i) with
probability C(B-i, k-1) / C(B, k), so

    E[min of k] = sum_i x_(i) * C(B-i, k-1) / C(B, k)          (exact; no Monte Carlo)

This is the average of min(S) over all C(B, k) subsets S of the B configs, a U-statistic with kernel
min(x_1..x_k): an unbiased estimator of the expected best of k configurations of the search
distribution, whatever that distribution (Tang et al. 2020, "Showing Your Work Doesn't Always
Work", ACL; Hoeffding 1948). The estimator of Dodge et al. 2019 ("Show Your Work", EMNLP) draws the
k with replacement, sum_i x_(i) [((B-i+1)/B)^k - ((B-i)/B)^k] for a minimum, and is biased: a draw
with replacement repeats configs, so it holds fewer distinct ones and its minimum is worse on
average (it under-states what k configurations reach; for a maximum, Tang et al.'s case, it
under-estimates the expected maximum). The report uses the
without-replacement U-statistic; ``expected_min_with_replacement`` is kept only for the comparison
(tests/test_reports.py checks both against enumeration of every subset of a small population).

Values are oriented lower-better (see ``reports.metrics``); diverged and failed trials are +inf, and
E[min of k] is +inf exactly when all k drawn configs can be such trials (k <= their number).

Uncertainty: a percentile bootstrap band (the cell's configs resampled with replacement, the curve
recomputed on each resample) and, for each loss against the baseline, the bootstrap interval of the
difference of the curves (both cells resampled independently). These are descriptive, 95%.

The ``budget`` verdict does **not** use that interval: the bootstrap is inconsistent for a sample
minimum (Bickel & Freedman 1981; at k = B the "does the 95% interval of min(A) - min(B) exclude 0"
rule rejects 13-19% of the time when both cells share one distribution). It uses an exact-size
permutation test instead: the two cells' configs are pooled, replaced by their midranks (so a
diverged trial is simply the worst rank and the scale of the metric does not matter), and the
statistic T = E[min of k](ranks of loss) - E[min of k](ranks of baseline) is compared with its
distribution over random relabellings: p = (1 + #{|T*| >= |T|}) / (1 + n) (Phipson & Smyth 2010).
At k = 1 this is the Wilcoxon-Mann-Whitney rank-sum test; at k = B it compares the cells' minima,
and for two cells of B configs each (the usual budget verdict, k = B) the permutation distribution
of min(a) - min(b) has a closed form (``_minima_pvalues``): p is then exact, in O(B), with no
relabellings drawn (at B = 950 the Monte Carlo test took ~10 s per comparison here).
The p-values enter the report's single Holm family (``reports.verdicts``).

``min_p``: the smallest p-value that test can produce at those sizes: the p it reports, with the same
relabellings (the same generator and draws; exactly, for the minima), for perfectly separated cells (ranks 1..n_a against
n_a+1..n_a+n_b, and the reverse; the smaller of the two). Separation maximises |T| because E[min of
k] is non-decreasing in every value, so the exact permutation minimum is 2 / C(n_a + n_b, n_a) for
equal cells, at every k, plus the Monte Carlo floor 1 / (1 + n).

``prob_improvement`` at budget k is P(best of k configs of the loss beats best of k of the
baseline) + 0.5 P(tie), computed exactly from the two min-distributions above.
"""
from __future__ import annotations

import functools
import zlib
from math import lgamma

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import rankdata

from reports.metrics import cell_values

CONFIDENCE = 0.95
RESAMPLES = 2000


def cell_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends on the seed and the cell, not on the order cells are visited."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def _lncomb(n: int, r: int) -> float:
    return lgamma(n + 1) - lgamma(r + 1) - lgamma(n - r + 1)


def min_weights(B: int, k: int) -> np.ndarray:
    """P(the minimum of k of B sorted values drawn without replacement is the i-th), i = 1..B."""
    if not 1 <= k <= B:
        raise ValueError(f"k must be in 1..{B}, got {k}")
    return weight_matrix(B)[k - 1].copy()


@functools.lru_cache(maxsize=64)
def _all_weights(B: int) -> np.ndarray:
    """[B, B]: row k-1 = min_weights(B, k), C(B-i, k-1) / C(B, k) in log space (read-only, cached:
    a report asks for the same B once per cell and comparison)."""
    i = np.arange(1, B + 1)[None, :]
    k = np.arange(1, B + 1)[:, None]
    with np.errstate(invalid="ignore"):
        log_w = (gammaln(B - i + 1) - gammaln(k) - gammaln(B - i - k + 2)) - (gammaln(B + 1) - gammaln(k + 1) - gammaln(B - k + 1))
    w = np.where(i <= B - k + 1, np.exp(np.where(i <= B - k + 1, log_w, 0.0)), 0.0)  # C(B-i, k-1) = 0 beyond
    w.setflags(write=False)
    return w


def weight_matrix(B: int, ks=None) -> np.ndarray:
    w = _all_weights(B)
    return w if ks is None else w[np.asarray(list(ks), dtype=int) - 1].reshape(-1, B)


def expected_min(sorted_values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """E[min of k] for rows of ascending values [..., B] and weights [K, B] -> [..., K].

    +inf values contribute +inf exactly when their weight is positive (never 0 * inf = NaN)."""
    x = np.asarray(sorted_values, dtype=float)
    inf = np.isinf(x)
    finite_part = np.where(inf, 0.0, x) @ W.T
    # +inf sorts last: a row with f finite values hits one where a weight is positive beyond f
    last_positive = (W > 0).shape[1] - np.argmax((W > 0)[:, ::-1], axis=1)  # per k: the last i with w_i > 0
    inf_hit = np.sum(~inf, axis=-1, keepdims=True) < last_positive
    return np.where(inf_hit, np.inf, finite_part)


def expected_min_curve(values) -> np.ndarray:
    """E[min of k configurations], k = 1..B, exactly (order statistics)."""
    x = np.sort(np.asarray(values, dtype=float))
    return expected_min(x, weight_matrix(len(x)))


def expected_min_with_replacement(values, k: int) -> float:
    """Dodge et al. 2019's estimator for a minimum: the k configs drawn *with* replacement from the B,
    sum_i x_(i) [((B-i+1)/B)^k - ((B-i)/B)^k]. Biased (Tang et al. 2020), never below the
    without-replacement value on the same configs; not used by the report."""
    x = np.sort(np.asarray(values, dtype=float))
    B = len(x)
    i = np.arange(1, B + 1)
    w = ((B - i + 1) / B) ** k - ((B - i) / B) ** k
    return float(expected_min(x, w[None, :])[0])


BAND_POINTS = 128  # above this many configs the bootstrap band is computed at a grid of k (the curve at every k)


def band_ks(B: int, also=()) -> np.ndarray:
    """The budgets k at which a cell of B configs gets its bootstrap band: every k up to BAND_POINTS;
    beyond, BAND_POINTS log-spaced k from 1 to B plus ``also`` (asked budgets). A band at all 1,000 k
    of a large cell costs a [resamples x B] @ [B x B] product per cell and draws no differently on the
    figure's log axis."""
    if B <= BAND_POINTS:
        return np.arange(1, B + 1)
    grid = np.unique(np.round(np.geomspace(1, B, BAND_POINTS)).astype(int))
    return np.unique(np.r_[grid, [int(k) for k in also if 1 <= int(k) <= B], B]).astype(int)


def _bootstrap_curves(values: np.ndarray, n: int, rng: np.random.Generator, ks=None) -> np.ndarray:
    """[n, len(ks)]: E[min of k] of n bootstrap resamples of the cell, at ``ks`` (default every k)."""
    B = len(values)
    idx = rng.integers(0, B, size=(n, B))
    return expected_min(np.sort(values[idx], axis=1), weight_matrix(B, ks))


def _interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0 that never interpolates (so +-inf stay exact)."""
    a = (1 - confidence) / 2
    return (np.percentile(samples, 100 * a, axis=0, method="lower"),
            np.percentile(samples, 100 * (1 - a), axis=0, method="higher"))


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b, with equal values (inf == inf included) giving 0."""
    with np.errstate(invalid="ignore"):
        return np.where(a == b, 0.0, a - b)


def search_values(trials: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """The search-phase values of each (dataset, loss) cell, one per configuration."""
    return cell_values(trials, "search")


def baseline_pairs(cells: dict, baseline: str):
    """(dataset, loss, values, baseline values) for every non-baseline cell whose dataset has the baseline."""
    for (ds, loss), v in cells.items():
        if loss != baseline and (ds, baseline) in cells:
            yield ds, loss, v, cells[(ds, baseline)]


def budget_curves(trials: pd.DataFrame, n_resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                  seed: int = 0, budgets=()) -> pd.DataFrame:
    """Per dataset x loss x k: configs (B), expected_min and its bootstrap band (band_low, band_high;
    NaN at the k off ``band_ks`` when B > BAND_POINTS)."""
    frames = []
    for (ds, loss), v in search_values(trials).items():
        B = len(v)
        ks = band_ks(B, budgets)
        lo = np.full(B, np.nan)
        hi = np.full(B, np.nan)
        lo[ks - 1], hi[ks - 1] = _interval(_bootstrap_curves(v, n_resamples, cell_rng(seed, ds, loss), ks), confidence)
        frames.append(pd.DataFrame({"dataset": ds, "loss": loss, "k": np.arange(1, B + 1), "configs": B,
                                    "expected_min": expected_min_curve(v), "band_low": lo, "band_high": hi}))
    cols = ["dataset", "loss", "k", "configs", "expected_min", "band_low", "band_high"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def budget_differences(trials: pd.DataFrame, baseline: str, n_resamples: int = RESAMPLES,
                       confidence: float = CONFIDENCE, seed: int = 0, budgets=()) -> pd.DataFrame:
    """Per dataset x loss (not the baseline) x k <= min(B_loss, B_baseline): the difference of the
    expected-minimum curves (loss - baseline, lower-better units) and its bootstrap interval
    (at ``band_ks``: NaN elsewhere), both cells resampled independently. The baseline's resamples
    are drawn once per dataset (the same generator for every loss, as before: the same numbers)."""
    frames, baseline_boot = [], {}
    cols = ["dataset", "loss", "baseline", "k", "diff", "diff_low", "diff_high"]
    for ds, loss, v, b in baseline_pairs(search_values(trials), baseline):
        K = min(len(v), len(b))
        ks = band_ks(K, budgets)
        d = _diff(expected_min_curve(v)[:K], expected_min_curve(b)[:K])
        ca = _bootstrap_curves(v, n_resamples, cell_rng(seed, ds, loss), ks)
        if (ds, K) not in baseline_boot:
            baseline_boot[(ds, K)] = _bootstrap_curves(b, n_resamples, cell_rng(seed, ds, baseline, "baseline"), ks)
        lo = np.full(K, np.nan)
        hi = np.full(K, np.nan)
        lo[ks - 1], hi[ks - 1] = _interval(_diff(ca, baseline_boot[(ds, K)]), confidence)
        frames.append(pd.DataFrame({"dataset": ds, "loss": loss, "baseline": baseline, "k": np.arange(1, K + 1),
                                    "diff": d, "diff_low": lo, "diff_high": hi}))
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def prob_best_of_k(a, b, k: int) -> float:
    """P(min of k of a < min of k of b) + 0.5 P(equal), draws without replacement, exactly."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    wa, wb = min_weights(len(a), k), min_weights(len(b), k)
    less = (a[:, None] < b[None, :]) + 0.5 * (a[:, None] == b[None, :])
    return float(wa @ less @ wb)


def _permutation_pvalues(rank_sets: list[np.ndarray], na: int, k: int, n_permutations: int,
                         rng: np.random.Generator, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """T and the two-sided permutation p-value of E[min of k] for several pooled rank vectors (first
    ``na`` = sample a), all relabelled by the same random permutations."""
    nb = len(rank_sets[0]) - na
    wa, wb = min_weights(na, k), min_weights(nb, k)

    def stat(r: np.ndarray) -> np.ndarray:
        return np.sort(r[..., :na], axis=-1) @ wa - np.sort(r[..., na:], axis=-1) @ wb

    ts = [float(stat(r)) for r in rank_sets]
    tols = [1e-9 * max(1.0, abs(t)) for t in ts]
    hits, done = [0] * len(ts), 0
    while done < n_permutations:
        m = min(chunk, n_permutations - done)
        perm = rng.permuted(np.broadcast_to(np.arange(na + nb), (m, na + nb)), axis=1)
        for i, (r, t, tol) in enumerate(zip(rank_sets, ts, tols)):
            hits[i] += int(np.sum(np.abs(stat(r[perm])) >= abs(t) - tol))
        done += m
    return ts, [(1 + h) / (1 + n_permutations) for h in hits]


def _minima_pvalues(rank_sets: list[np.ndarray], na: int) -> tuple[list[float], list[float]]:
    """T and the exact two-sided permutation p-value of min(a) - min(b) (E[min of k] at k = n_a = n_b)
    for pooled rank vectors, in O(n): sort the pooled ranks c_1 <= ... <= c_n. One sample holds c_1;
    the other's minimum is c_{j+1} when the first j sorted positions all fall in the first, which a
    uniform relabelling does with probability C(n - j - 1, n_X - j) / C(n, n_a) (X: the sample that
    holds them). Then T = c_1 - c_{j+1} (X = a) or c_{j+1} - c_1 (X = b), and
    p = sum of those probabilities over the (X, j) with |T| >= |t|. Ties are midranks: equal c's."""
    n = len(rank_sets[0])
    sizes = {"a": na, "b": n - na}
    ts, ps = [], []
    for r in rank_sets:
        t = float(np.min(r[:na]) - np.min(r[na:]))
        c = np.sort(r)
        tol = 1e-9 * max(1.0, abs(t))
        p = 0.0
        for side, nx in sizes.items():
            j = np.arange(1, nx + 1)
            log_prob = gammaln(n - j) - gammaln(nx - j + 1) - gammaln(n - nx) - _lncomb(n, na)  # C(n-j-1, nx-j) / C(n, na)
            stat = c[0] - c[j] if side == "a" else c[j] - c[0]
            p += float(np.exp(log_prob[np.abs(stat) >= abs(t) - tol]).sum())
        ts.append(t)
        ps.append(min(1.0, p))
    return ts, ps


def _pvalues(rank_sets: list[np.ndarray], na: int, k: int, n_permutations: int, rng: np.random.Generator,
             chunk: int = 4096) -> tuple[list[float], list[float]]:
    """The test's (T, p) per pooled rank vector: exact for the minima of equal cells (k = n_a = n_b),
    by ``n_permutations`` relabellings otherwise."""
    if k == na == len(rank_sets[0]) - na:
        return _minima_pvalues(rank_sets, na)
    return _permutation_pvalues(rank_sets, na, k, n_permutations, rng, chunk)


def separated_ranks(na: int, nb: int) -> list[np.ndarray]:
    """Pooled ranks of perfectly separated samples: a all below b, and a all above b."""
    n = na + nb
    return [np.arange(1.0, n + 1), np.r_[np.arange(nb + 1.0, n + 1), np.arange(1.0, nb + 1)]]


def permutation_test_min(a, b, k: int, n_permutations: int, rng: np.random.Generator,
                         chunk: int = 4096) -> tuple[float, float, float]:
    """Two-sided permutation test of E[min of k] on pooled midranks. Returns (T, p, min_p): T < 0 when
    the first sample tends to reach lower minima; min_p = the p the same relabellings give perfectly
    separated samples of these sizes (the smallest p this test can report here)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ranks = rankdata(np.concatenate([a, b]))  # inf ties get midranks; scale-free
    ts, ps = _pvalues([ranks, *separated_ranks(len(a), len(b))], len(a), k, n_permutations, rng, chunk)
    return ts[0], ps[0], min(ps[1:])


def permutation_min_p(na: int, nb: int, k: int, n_permutations: int, rng: np.random.Generator) -> float:
    """The smallest p-value ``permutation_test_min`` can report for cells of na and nb configs (the
    same generator state gives the same value as its third return)."""
    return min(_pvalues(separated_ranks(na, nb), na, k, n_permutations, rng)[1])


def configs_needed(alpha: float, m: int, limit: int = 10_000) -> int | None:
    """Smallest n >= 2 configs per cell at which the exact permutation minimum 2 / C(2n, n) of the
    budget test reaches alpha / m (Holm's first threshold over m tests; None beyond ``limit``)."""
    target, n = alpha / max(int(m), 1), 2
    while n <= limit:
        if 2.0 * np.exp(-_lncomb(2 * n, n)) <= target:
            return n
        n += 1
    return None


def budget_comparisons(trials: pd.DataFrame, baseline: str, budgets=(), n_permutations: int = 10_000,
                       seed: int = 0, differences: pd.DataFrame | None = None) -> pd.DataFrame:
    """One ``budget`` comparison per dataset x loss x k, for k = min(B_loss, B_baseline) and each
    asked budget k below it. Columns: dataset, loss, baseline, kind, budget, n_loss, n_baseline,
    estimate (difference of E[min of k], loss - baseline, lower-better units), ci_low, ci_high (from
    ``differences`` when given), statistic (T on ranks), p_value, min_p (the smallest p this test can
    give here), direction (-1 loss better, +1 worse), prob_improvement."""
    cols = ["dataset", "loss", "baseline", "kind", "budget", "n_loss", "n_baseline", "estimate", "ci_low",
            "ci_high", "statistic", "p_value", "min_p", "direction", "prob_improvement"]
    rows = []
    for ds, loss, v, b in baseline_pairs(search_values(trials), baseline):
        K = min(len(v), len(b))
        for k in sorted({K, *(int(x) for x in budgets if int(x) <= K)}):
            est = _diff(expected_min_curve(v)[k - 1:k], expected_min_curve(b)[k - 1:k])[0]
            lo = hi = np.nan
            if differences is not None and not differences.empty:
                d = differences[(differences["dataset"] == ds) & (differences["loss"] == loss) & (differences["k"] == k)]
                if len(d):
                    lo, hi = float(d["diff_low"].iloc[0]), float(d["diff_high"].iloc[0])
            t, p, min_p = permutation_test_min(v, b, k, n_permutations, cell_rng(seed, ds, loss, "perm", str(k)))
            rows.append({"dataset": ds, "loss": loss, "baseline": baseline, "kind": "budget", "budget": k,
                         "n_loss": len(v), "n_baseline": len(b), "estimate": est, "ci_low": lo, "ci_high": hi,
                         "statistic": t, "p_value": p, "min_p": min_p, "direction": int(np.sign(t)),
                         "prob_improvement": prob_best_of_k(v, b, k)})
    return pd.DataFrame(rows, columns=cols)
