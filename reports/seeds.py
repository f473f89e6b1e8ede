"""Best-configuration analysis (seeds phase): each cell's best config retrained with many seeds.

Per dataset x loss, over the seeds (values lower-better, +inf for diverged/failed/unscored trials):

- median, and IQM = the 25% trimmed mean (mean of the middle 50%; Agarwal et al. 2021, "Deep RL at
  the Edge of the Statistical Precipice", rliable), ``scipy.stats.trim_mean(x, 0.25)``;
- 95% percentile-bootstrap intervals of both (``scipy.stats.bootstrap``). An interval end that
  involves a +inf value is +inf (the computation runs on a finite stand-in and maps back).

Against the baseline on the same dataset:

- a two-sided Wilcoxon-Mann-Whitney U test (``scipy.stats.mannwhitneyu``), whose p-value enters the
  report's Holm family (``reports.verdicts``). Method (``mw_method``): scipy's ``auto`` (exact when a
  sample has <= 8 values and there are no ties, else the tie-corrected normal approximation), except
  that tied samples (diverged seeds are tied at +inf) with at most ``EXACT_PERMUTATIONS`` relabellings
  get the exact permutation distribution: the normal approximation would let 3 vs 3 tied values reach
  p = 0.047, below what the exact test can ever give (0.1);
- ``min_p``: the smallest p-value that test can produce at those sample sizes, the same call on
  perfectly separated samples (ranks 0..n-1 against n..n+m-1); exactly 2 / C(n + m, n) for the
  exact and permutation methods. With n = m = 3 it is 0.1: three seeds per loss can never reject at
  alpha = 0.05, and the verdict says ``inconclusive`` (``reports.verdicts``);
- ``seeds_needed(alpha, m)``: the smallest n (seeds per loss, equal groups) whose ``min_p`` is at
  most alpha / m, Holm's first threshold over the report's m comparisons, so that one comparison can
  be significant after the correction on its own;
- the probability of improvement P(X_loss < X_baseline) + 0.5 P(X_loss = X_baseline) = U / (n_x n_y)
  with U counted for the baseline sample (rliable), and its 95% bootstrap interval with the two
  samples resampled independently (rliable's stratified bootstrap for one task).
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from math import comb

import numpy as np
import pandas as pd
from scipy import stats

from reports.budget import CONFIDENCE, RESAMPLES, cell_rng
from reports.metrics import cell_values

BIG = 1e300  # finite stand-in for +inf inside the bootstrap
EXACT_PERMUTATIONS = 20_000  # tied samples with at most this many relabellings get the exact permutation test
MAX_SEEDS = 10_000  # seeds_needed searches up to here


def iqm(x, axis=-1):
    """Interquartile mean: ``scipy.stats.trim_mean(x, 0.25)``."""
    return stats.trim_mean(x, 0.25, axis=axis)


def median(x, axis=-1):
    return np.median(x, axis=axis)


def prob_improvement(x, y, axis=-1):
    """P(X < Y) + 0.5 P(X = Y) over all pairs, vectorized along ``axis`` (for the bootstrap)."""
    x = np.moveaxis(np.asarray(x, float), axis, -1)
    y = np.moveaxis(np.asarray(y, float), axis, -1)
    xx, yy = x[..., :, None], y[..., None, :]
    return ((xx < yy) + 0.5 * (xx == yy)).mean(axis=(-2, -1))


def prob_improvement_u(x, y) -> float:
    """The same from the Mann-Whitney U statistic: U_y / (n_x n_y), U_y counting pairs y > x."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = stats.mannwhitneyu(y, x, alternative="two-sided").statistic
    return float(u) / (len(x) * len(y))


def bootstrap_ci(samples: tuple, statistic, n_resamples: int, confidence: float, rng) -> tuple[float, float]:
    """Percentile bootstrap interval; samples resampled independently; +inf handled exactly."""
    if any(len(s) < 2 for s in samples):
        return np.nan, np.nan
    samples = tuple(np.asarray(s, float) for s in samples)
    finite = np.concatenate([s[np.isfinite(s)] for s in samples])
    top = finite.max() if finite.size else 0.0
    data = tuple(np.where(np.isinf(s), BIG, s) for s in samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(data, statistic, n_resamples=n_resamples, confidence_level=confidence,
                              method="percentile", vectorized=True, paired=False, rng=rng)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if statistic is not prob_improvement:
        tol = 1e-9 * max(1.0, abs(top))
        lo, hi = (np.inf if v > top + tol else v for v in (lo, hi))
    return lo, hi


def mw_method(n: int, m: int, ties: bool) -> str:
    """The p-value method of the seeds test for samples of sizes n and m: ``exact``, ``permutation``
    (every relabelling; exact with ties) or ``asymptotic`` (see the module docstring)."""
    if not ties or min(n, m) < 2:  # scipy's permutation method needs 2 observations a sample
        return "exact" if min(n, m) <= 8 else "asymptotic"  # what scipy's "auto" picks
    return "permutation" if comb(n + m, n) <= EXACT_PERMUTATIONS else "asymptotic"


def mannwhitney(x, y, method: str):
    """``scipy.stats.mannwhitneyu(x, y, two-sided)`` with ``method`` from ``mw_method``."""
    how = stats.PermutationMethod(n_resamples=np.inf) if method == "permutation" else method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.mannwhitneyu(x, y, alternative="two-sided", method=how)


@lru_cache(maxsize=4096)
def mw_min_p(n: int, m: int, method: str | None = None) -> float:
    """The smallest two-sided p-value of the seeds test at sizes n, m: the test (same method) on
    perfectly separated samples, ranks 0..n-1 against n..n+m-1."""
    method = method or mw_method(n, m, ties=False)
    return float(mannwhitney(np.arange(n, dtype=float), np.arange(n, n + m, dtype=float), method).pvalue)


def seeds_needed(alpha: float, m: int, limit: int = MAX_SEEDS) -> int | None:
    """Smallest n >= 2 with ``mw_min_p(n, n) <= alpha / m`` (None beyond ``limit``): the seeds per
    loss a two-sided Mann-Whitney test needs to be able to reach Holm's first threshold over m tests."""
    target = alpha / max(int(m), 1)
    n = 2
    while n <= limit:
        if mw_min_p(n, n) <= target:
            return n
        n += 1 if n < 64 else max(1, n // 16)  # min_p falls fast; coarse steps far out (never reached in practice)
    return None


def seeds_values(trials: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    return cell_values(trials, "seeds")


SUMMARY = ["dataset", "loss", "seeds", "median", "median_low", "median_high", "iqm", "iqm_low", "iqm_high"]


def seed_summary(trials: pd.DataFrame, n_resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                 seed: int = 0) -> pd.DataFrame:
    """Per dataset x loss: seeds, median, IQM and their bootstrap intervals (lower-better units)."""
    rows = []
    for (ds, loss), v in seeds_values(trials).items():
        r = {"dataset": ds, "loss": loss, "seeds": len(v), "median": float(np.median(v)), "iqm": float(iqm(v))}
        r["median_low"], r["median_high"] = bootstrap_ci((v,), median, n_resamples, confidence, cell_rng(seed, ds, loss, "median"))
        r["iqm_low"], r["iqm_high"] = bootstrap_ci((v,), iqm, n_resamples, confidence, cell_rng(seed, ds, loss, "iqm"))
        rows.append(r)
    return pd.DataFrame(rows, columns=SUMMARY)


COMPARISON = ["dataset", "loss", "baseline", "kind", "budget", "n_loss", "n_baseline", "estimate", "ci_low", "ci_high",
              "statistic", "p_value", "min_p", "direction", "prob_improvement", "pi_low", "pi_high"]


def seed_comparisons(trials: pd.DataFrame, baseline: str, n_resamples: int = RESAMPLES,
                     confidence: float = CONFIDENCE, seed: int = 0, with_ci: bool = True) -> pd.DataFrame:
    """One ``seeds`` comparison per dataset x loss with seeds on a dataset where the baseline has seeds.

    estimate: median(loss) - median(baseline) (lower-better units; 0 when both are +inf); statistic:
    U of the loss sample; min_p: the smallest p the same test can give at these sizes; direction: -1
    when the loss tends lower (better), +1 higher, 0 tie."""
    cells = seeds_values(trials)
    rows = []
    for (ds, loss), x in cells.items():
        if loss == baseline or (ds, baseline) not in cells:
            continue
        y = cells[(ds, baseline)]
        method = mw_method(len(x), len(y), ties=len(np.unique(np.r_[x, y])) < len(x) + len(y))
        res = mannwhitney(x, y, method)
        pi = 1.0 - float(res.statistic) / (len(x) * len(y))  # U_x + U_y = n_x n_y
        mx, my = float(np.median(x)), float(np.median(y))
        est = 0.0 if mx == my else mx - my
        lo, hi = (bootstrap_ci((x, y), prob_improvement, n_resamples, confidence, cell_rng(seed, ds, loss, "pi"))
                  if with_ci else (np.nan, np.nan))
        rows.append({"dataset": ds, "loss": loss, "baseline": baseline, "kind": "seeds", "budget": np.nan,
                     "n_loss": len(x), "n_baseline": len(y), "estimate": est, "ci_low": np.nan, "ci_high": np.nan,
                     "statistic": float(res.statistic),
                     "p_value": float(res.pvalue) if np.isfinite(res.pvalue) else 1.0,  # all tied: no evidence
                     "min_p": mw_min_p(len(x), len(y), method),
                     "direction": int(np.sign(0.5 - pi)), "prob_improvement": pi, "pi_low": lo, "pi_high": hi})
    return pd.DataFrame(rows, columns=COMPARISON)
