"""Best-configuration analysis (seeds phase): each cell's best config retrained with many seeds.

Per dataset x loss, over the seeds (values lower-better, +inf for diverged/failed/unscored trials):

- median, and IQM = the 25% trimmed mean (mean of the middle 50%; Agarwal et al. 2021, "Deep RL at
  the Edge of the Statistical Precipice", rliable), ``scipy.stats.trim_mean(x, 0.25)``;
- 95% percentile-bootstrap intervals of both (``scipy.stats.bootstrap``). An interval end that
  involves a +inf value is +inf (the computation runs on a finite stand-in and maps back).

Against the baseline on the same dataset:

- a two-sided Wilcoxon-Mann-Whitney U test (``scipy.stats.mannwhitneyu``), whose p-value enters the
  report's Holm family (``reports.verdicts``);
- the probability of improvement P(X_loss < X_baseline) + 0.5 P(X_loss = X_baseline) = U / (n_x n_y)
  with U counted for the baseline sample (rliable), and its 95% bootstrap interval with the two
  samples resampled independently (rliable's stratified bootstrap for one task).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from reports.budget import CONFIDENCE, RESAMPLES, cell_rng
from reports.metrics import cell_values

BIG = 1e300  # finite stand-in for +inf inside the bootstrap


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
              "statistic", "p_value", "direction", "prob_improvement", "pi_low", "pi_high"]


def seed_comparisons(trials: pd.DataFrame, baseline: str, n_resamples: int = RESAMPLES,
                     confidence: float = CONFIDENCE, seed: int = 0, with_ci: bool = True) -> pd.DataFrame:
    """One ``seeds`` comparison per dataset x loss with seeds on a dataset where the baseline has seeds.

    estimate: median(loss) - median(baseline) (lower-better units; 0 when both are +inf); statistic:
    U of the loss sample; direction: -1 when the loss tends lower (better), +1 higher, 0 tie."""
    cells = seeds_values(trials)
    rows = []
    for (ds, loss), x in cells.items():
        if loss == baseline or (ds, baseline) not in cells:
            continue
        y = cells[(ds, baseline)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.mannwhitneyu(x, y, alternative="two-sided")
        pi = 1.0 - float(res.statistic) / (len(x) * len(y))  # U_x + U_y = n_x n_y
        mx, my = float(np.median(x)), float(np.median(y))
        est = 0.0 if mx == my else mx - my
        lo, hi = (bootstrap_ci((x, y), prob_improvement, n_resamples, confidence, cell_rng(seed, ds, loss, "pi"))
                  if with_ci else (np.nan, np.nan))
        rows.append({"dataset": ds, "loss": loss, "baseline": baseline, "kind": "seeds", "budget": np.nan,
                     "n_loss": len(x), "n_baseline": len(y), "estimate": est, "ci_low": np.nan, "ci_high": np.nan,
                     "statistic": float(res.statistic),
                     "p_value": float(res.pvalue) if np.isfinite(res.pvalue) else 1.0,  # all tied: no evidence
                     "direction": int(np.sign(0.5 - pi)), "prob_improvement": pi, "pi_low": lo, "pi_high": hi})
    return pd.DataFrame(rows, columns=COMPARISON)
