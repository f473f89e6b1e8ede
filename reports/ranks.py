"""Across datasets: Friedman test on per-dataset ranks and the Nemenyi post-hoc test (Demsar 2006).

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

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
