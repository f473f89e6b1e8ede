"""Across datasets: Friedman test on per-dataset ranks, the Nemenyi post-hoc test (Demsar 2006), and
pairwise Wilcoxon signed-rank tests with Holm (Benavoli, Corani & Mangili 2016).

Each loss gets one number per dataset: the median over its seeds when every loss on that dataset
has a seeds phase, else the best (minimum) value of its search. Losses are ranked within each
dataset (1 = best, ties get average ranks, diverged = +inf = last). With k losses and N datasets:

- Friedman: chi2_F = 12N / (k(k+1)) * (sum_j R_j^2 - k(k+1)^2/4) on the average ranks R_j
  (``scipy.stats.friedmanchisquare``);
- Nemenyi: two losses differ when their average ranks differ by more than the critical difference
  CD = q_alpha sqrt(k(k+1) / (6N)), q_alpha = the studentized range quantile at 1 - alpha for k
  groups and infinite degrees of freedom over sqrt(2) (Demsar 2006, Table 5a: 1.960, 2.343, ... 3.164
  for k = 2, 3, ... 10); pairwise p-values from ``scikit_posthocs.posthoc_nemenyi_friedman``.

Only losses present on every dataset enter (the test needs complete blocks); it needs N >= 3
datasets and k >= 3 losses. With few datasets expect few significant pairs (Demsar 2006).

Friedman stays the omnibus test. Nemenyi's mean-rank comparison of two losses depends on which other
losses are in the pool (Benavoli, Corani & Mangili 2016, "Should we really use post-hoc tests based
on mean-ranks?", JMLR 17), so the report also tests each loss against the baseline on its own:

- the two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, ``zero_method="wilcox"``: datasets
  where both values are equal, both diverged included, are dropped) of the N per-dataset
  differences d = value(loss) - value(baseline), the same values Friedman ranks. The statistic is
  min(R+, R-), the smaller sum of the ranks of |d| over the positive and the negative differences.
  scipy's method: exact for N <= 50 without ties, every sign flip for N <= 13 with ties, normal
  approximation beyond;
- ``min_p`` = that test on N distinct differences of one sign: 2 / 2^N exactly (N = 3: 0.25, N = 5:
  0.0625, N = 6: 0.03125), so fewer than 6 datasets are ``inconclusive`` at alpha = 0.05;
- Holm over its own family, the k - 1 comparisons with the baseline (``reports.verdicts.decide``:
  the same verdict rule, inconclusive ones left out of the family). It is a separate question from
  the per-dataset verdicts (one loss across datasets), so it does not share their family.

The signed-rank test ranks |d| across datasets, so it assumes differences on different datasets are
commensurable (Demsar 2006, section 3.1.3); when datasets are ranked by different metrics (W1 on
points, FID on images) read it with that in mind (``better_on`` / ``worse_on`` count the signs).

The critical-difference diagram draws mean ranks with bars from the same test over *all* pairs of
losses, Holm over the k(k-1)/2 pairs (Benavoli et al. 2016; as in Ismail Fawaz et al. 2019's
cd-diagram): a pair joined by a bar was not separated (or could not be, at this N).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import itertools
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from reports.verdicts import decide

MIN_DATASETS = 3
MIN_LOSSES = 3


def dataset_values(trials: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Matrix dataset x loss of one lower-better value each, and what it is per dataset."""
    out, basis = {}, {}
    for ds, g in trials.groupby("dataset", sort=True):
        seeds = g[g["phase"] == "seeds"].groupby("loss")["value"].median()
        search = g[g["phase"] == "search"].groupby("loss")["value"].min()
        losses = sorted(g["loss"].unique())
        if len(seeds) == len(losses):
            out[ds], basis[ds] = seeds, "median over seeds"
        elif len(search) == len(losses):
            out[ds], basis[ds] = search, "best of the search"
        else:
            out[ds], basis[ds] = seeds.combine_first(search), "median over seeds where run, else best of the search"
    table = pd.DataFrame(out).T.sort_index(axis=1) if out else pd.DataFrame()
    table.index.name, table.columns.name = "dataset", "loss"
    return table, basis


def rank_table(values: pd.DataFrame) -> pd.DataFrame:
    """Ranks of the losses within each dataset (row): 1 = best (lowest), ties averaged."""
    return values.rank(axis=1, method="average", ascending=True)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks (Demsar 2006)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


@dataclass
class Friedman:
    ok: bool
    reason: str = ""
    losses: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    statistic: float = math.nan
    p_value: float = math.nan
    mean_ranks: pd.Series | None = None
    cd: float = math.nan
    nemenyi: pd.DataFrame | None = None  # pairwise p-values

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "losses": self.losses, "datasets": self.datasets,
                "statistic": self.statistic, "p_value": self.p_value, "critical_difference": self.cd,
                "mean_ranks": {} if self.mean_ranks is None else {k: float(v) for k, v in self.mean_ranks.items()}}


def friedman_nemenyi(values: pd.DataFrame, alpha: float = 0.05) -> Friedman:
    """Friedman + Nemenyi on a dataset x loss matrix (lower is better)."""
    complete = values.dropna(axis=1, how="any")
    dropped = sorted(set(values.columns) - set(complete.columns))
    n, k = complete.shape
    note = f" ({', '.join(dropped)} not on every dataset)" if dropped else ""
    if n < MIN_DATASETS:
        return Friedman(False, f"needs at least {MIN_DATASETS} datasets, the report has {n}")
    if k < MIN_LOSSES:
        return Friedman(False, f"needs at least {MIN_LOSSES} losses present on every dataset, found {k}{note}")
    import scikit_posthocs as sp  # heavy (statsmodels): only when the test runs

    ranks = rank_table(complete)
    stat, p = stats.friedmanchisquare(*[ranks[c].to_numpy() for c in ranks.columns])
    nem = sp.posthoc_nemenyi_friedman(ranks.reset_index(drop=True))
    nem.index, nem.columns = list(ranks.columns), list(ranks.columns)
    return Friedman(True, note.strip(), list(ranks.columns), list(ranks.index), float(stat), float(p),
                    ranks.mean(axis=0), critical_difference(k, n, alpha), nem)


# ---- pairwise Wilcoxon signed-rank tests (Benavoli et al. 2016) -----------------------------------

MIN_WILCOXON_DATASETS = 2
WILCOXON = ["loss", "baseline", "datasets", "better_on", "worse_on", "tied_on", "statistic", "p_value", "min_p",
            "direction", "p_adjusted", "verdict"]


def differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b per dataset, with equal values (both +inf included) giving 0."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore"):
        return np.where(a == b, 0.0, a - b)


def signed_rank(d) -> tuple[float, float]:
    """``scipy.stats.wilcoxon(d)``, two-sided, zeros dropped: (statistic, p); p = 1 when every d is 0."""
    d = np.asarray(d, float)
    if not np.any(d != 0):
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue) if np.isfinite(res.pvalue) else 1.0


@lru_cache(maxsize=256)
def wilcoxon_min_p(n: int) -> float:
    """The smallest p-value of ``signed_rank`` on n datasets: the test on n distinct positive differences."""
    return signed_rank(np.arange(1.0, n + 1))[1] if n >= 1 else 1.0


def datasets_needed(alpha: float, limit: int = 200) -> int | None:
    """Smallest N whose ``wilcoxon_min_p(N)`` is at most alpha (6 at alpha = 0.05)."""
    return next((n for n in range(1, limit + 1) if wilcoxon_min_p(n) <= alpha), None)


def signed_rank_row(values: pd.DataFrame, loss: str, baseline: str) -> dict:
    """One Wilcoxon comparison of ``loss`` with ``baseline`` over the rows (datasets) of ``values``."""
    d = differences(values[loss].to_numpy(), values[baseline].to_numpy())
    stat, p = signed_rank(d)
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz)) if len(nz) else np.array([])
    r_plus, r_minus = float(r[nz > 0].sum()), float(r[nz < 0].sum())
    return {"loss": loss, "baseline": baseline, "datasets": len(d), "better_on": int((d < 0).sum()),
            "worse_on": int((d > 0).sum()), "tied_on": int((d == 0).sum()), "statistic": stat, "p_value": p,
            "min_p": wilcoxon_min_p(len(d)), "direction": int(np.sign(r_plus - r_minus))}


def pairwise_wilcoxon(values: pd.DataFrame, pairs, alpha: float = 0.05) -> pd.DataFrame:
    """Wilcoxon signed-rank test of each (loss, other) pair over datasets, Holm over the given pairs,
    with ``reports.verdicts.decide`` (direction -1: ``loss`` lower, better)."""
    rows = [signed_rank_row(values, a, b) for a, b in pairs]
    if not rows:
        return pd.DataFrame(columns=WILCOXON)
    return decide(pd.DataFrame(rows), alpha).reindex(columns=WILCOXON)


@dataclass
class Wilcoxon:
    ok: bool
    reason: str = ""
    datasets: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=WILCOXON))  # each loss vs the baseline
    matrix: pd.DataFrame | None = None  # Holm p-values over all pairs, 1 where a pair cannot reach alpha

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "datasets": self.datasets,
                "family": "each loss against the baseline, Holm over these comparisons",
                "comparisons": self.table.drop(columns="direction").to_dict("records")}


def wilcoxon_tests(values: pd.DataFrame, baseline: str, alpha: float = 0.05) -> Wilcoxon:
    """Each loss on every dataset against ``baseline`` (Holm over those k - 1), and the all-pairs
    matrix for the critical-difference diagram (Holm over the k(k-1)/2 pairs)."""
    complete = values.dropna(axis=1, how="any")
    dropped = sorted(set(values.columns) - set(complete.columns))
    note = f" ({', '.join(dropped)} not on every dataset)" if dropped else ""
    n = len(complete)
    if n < MIN_WILCOXON_DATASETS:
        return Wilcoxon(False, f"needs at least {MIN_WILCOXON_DATASETS} datasets, the report has {n}")
    if baseline not in complete.columns:
        return Wilcoxon(False, f"{baseline} is not on every dataset")
    others = [c for c in complete.columns if c != baseline]
    if not others:
        return Wilcoxon(False, f"no other loss is on every dataset with {baseline}{note}")
    table = pairwise_wilcoxon(complete, [(x, baseline) for x in others], alpha)
    losses = list(complete.columns)
    allp = pairwise_wilcoxon(complete, list(itertools.combinations(losses, 2)), alpha)
    matrix = pd.DataFrame(1.0, index=losses, columns=losses)
    for r in allp.itertuples():
        p = 1.0 if np.isnan(r.p_adjusted) else float(r.p_adjusted)
        matrix.loc[r.loss, r.baseline] = matrix.loc[r.baseline, r.loss] = p
    return Wilcoxon(True, note.strip(), list(complete.index), table, matrix)
