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
At k = 1 this is the Wilcoxon-Mann-Whitney rank-sum test; at k = B it compares the cells' minima.
The p-values enter the report's single Holm family (``reports.verdicts``).

``min_p``: the smallest p-value that test can produce at those sizes: the p it reports, with the same
relabellings (the same generator and draws), for perfectly separated cells (ranks 1..n_a against
n_a+1..n_a+n_b, and the reverse; the smaller of the two). Separation maximises |T| because E[min of
k] is non-decreasing in every value, so the exact permutation minimum is 2 / C(n_a + n_b, n_a) for
equal cells, at every k, plus the Monte Carlo floor 1 / (1 + n).

``prob_improvement`` at budget k is P(best of k configs of the loss beats best of k of the
baseline) + 0.5 P(tie), computed exactly from the two min-distributions above.
"""
from __future__ import annotations

import zlib
from math import lgamma

import numpy as np
import pandas as pd
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
    w = np.zeros(B)
    total = _lncomb(B, k)
    for i in range(1, B - k + 2):  # C(B-i, k-1) = 0 beyond
        w[i - 1] = np.exp(_lncomb(B - i, k - 1) - total)
    return w


def weight_matrix(B: int, ks=None) -> np.ndarray:
    ks = range(1, B + 1) if ks is None else ks
    return np.array([min_weights(B, k) for k in ks]).reshape(-1, B)


def expected_min(sorted_values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """E[min of k] for rows of ascending values [..., B] and weights [K, B] -> [..., K].

    +inf values contribute +inf exactly when their weight is positive (never 0 * inf = NaN)."""
    x = np.asarray(sorted_values, dtype=float)
    inf = np.isinf(x)
    finite_part = np.where(inf, 0.0, x) @ W.T
    inf_hit = (inf.astype(float) @ (W.T > 0).astype(float)) > 0
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


def _bootstrap_curves(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    B = len(values)
    idx = rng.integers(0, B, size=(n, B))
    return expected_min(np.sort(values[idx], axis=1), weight_matrix(B))


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
                  seed: int = 0) -> pd.DataFrame:
    """Per dataset x loss x k: configs (B), expected_min and its bootstrap band (band_low, band_high)."""
    rows = []
    for (ds, loss), v in search_values(trials).items():
        curve = expected_min_curve(v)
        lo, hi = _interval(_bootstrap_curves(v, n_resamples, cell_rng(seed, ds, loss)), confidence)
        for k in range(1, len(v) + 1):
            rows.append({"dataset": ds, "loss": loss, "k": k, "configs": len(v), "expected_min": curve[k - 1],
                         "band_low": lo[k - 1], "band_high": hi[k - 1]})
    return pd.DataFrame(rows, columns=["dataset", "loss", "k", "configs", "expected_min", "band_low", "band_high"])


def budget_differences(trials: pd.DataFrame, baseline: str, n_resamples: int = RESAMPLES,
                       confidence: float = CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """Per dataset x loss (not the baseline) x k <= min(B_loss, B_baseline): the difference of the
    expected-minimum curves (loss - baseline, lower-better units) and its bootstrap interval,
    both cells resampled independently."""
    rows = []
    for ds, loss, v, b in baseline_pairs(search_values(trials), baseline):
        K = min(len(v), len(b))
        d = _diff(expected_min_curve(v)[:K], expected_min_curve(b)[:K])
        ca = _bootstrap_curves(v, n_resamples, cell_rng(seed, ds, loss))[:, :K]
        cb = _bootstrap_curves(b, n_resamples, cell_rng(seed, ds, baseline, "baseline"))[:, :K]
        lo, hi = _interval(_diff(ca, cb), confidence)
        for k in range(1, K + 1):
            rows.append({"dataset": ds, "loss": loss, "baseline": baseline, "k": k, "diff": d[k - 1],
                         "diff_low": lo[k - 1], "diff_high": hi[k - 1]})
    return pd.DataFrame(rows, columns=["dataset", "loss", "baseline", "k", "diff", "diff_low", "diff_high"])


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
    ts, ps = _permutation_pvalues([ranks, *separated_ranks(len(a), len(b))], len(a), k, n_permutations, rng, chunk)
    return ts[0], ps[0], min(ps[1:])


def permutation_min_p(na: int, nb: int, k: int, n_permutations: int, rng: np.random.Generator) -> float:
    """The smallest p-value ``permutation_test_min`` can report for cells of na and nb configs (the
    same generator state gives the same value as its third return)."""
    return min(_permutation_pvalues(separated_ranks(na, nb), na, k, n_permutations, rng)[1])


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
