"""Verdicts: one Holm family for the whole report, and the headline in Lucic et al.'s terms.

Every comparison of a loss with the baseline in a report (``seeds``: Mann-Whitney U per dataset;
``budget``: the permutation test at each reported budget k per dataset) is one hypothesis of a single
family, corrected with Holm's step-down method (Holm 1979): with the m p-values sorted
p_(1) <= ... <= p_(m),

    p_adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))

which controls the family-wise error rate at alpha under any dependence. Verdict per comparison:
``better`` when p_adj < alpha and the loss tends lower (``direction`` < 0, lower-better units),
``worse`` when p_adj < alpha and it tends higher, else ``no-difference``.

The headline follows Lucic et al. 2018 ("we did not find evidence that any of the tested algorithms
consistently outperforms the non-saturating GAN"): a loss beats the baseline *consistently* when its
primary verdict is ``better`` on every dataset of the report. The primary verdict on a dataset is the
``seeds`` verdict where that dataset has a seeds phase for both, else the ``budget`` verdict at the
largest budget k.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

VERDICTS = ("better", "worse", "no-difference")


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and is not counted in the family)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def decide(comparisons: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add ``p_adjusted`` (Holm over all rows) and ``verdict``."""
    df = comparisons.reset_index(drop=True).copy()
    df["p_adjusted"] = holm(df["p_value"]) if len(df) else pd.Series(dtype=float)
    sig = df["p_adjusted"] < alpha
    df["verdict"] = np.where(sig & (df["direction"] < 0), "better",
                             np.where(sig & (df["direction"] > 0), "worse", "no-difference"))
    return df


def primary(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One verdict per dataset x loss: seeds where present, else budget at the largest k."""
    if verdicts.empty:
        return verdicts.assign(kind=pd.Series(dtype=str))
    v = verdicts.copy()
    v["_order"] = np.where(v["kind"] == "seeds", np.inf, v["budget"].fillna(0).astype(float))
    v = v.sort_values(["dataset", "loss", "_order"]).groupby(["dataset", "loss"], sort=True).tail(1)
    return v.drop(columns="_order").reset_index(drop=True)


def _names(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def headline(verdicts: pd.DataFrame, baseline: str, datasets: list[str], losses: list[str]) -> str:
    """Whether any loss beats the baseline on every dataset, in words."""
    D = len(datasets)
    where = f"on {datasets[0]}" if D == 1 else f"on all {D} datasets"
    others = [x for x in losses if x != baseline]
    if not others:
        return f"Only the baseline {baseline} is in the report: nothing to compare."
    p = primary(verdicts)
    if p.empty:
        return f"No loss could be compared with {baseline}: no dataset has both a loss and {baseline} in the same phase."
    count = {(loss, v): int(((p["loss"] == loss) & (p["verdict"] == v)).sum()) for loss in others for v in VERDICTS}
    consistent = [x for x in others if count[(x, "better")] == D]
    worse_all = [x for x in others if count[(x, "worse")] == D]
    if consistent:
        verb = "is" if len(consistent) == 1 else "are"
        tail = f" ({_names(worse_all)} {'is' if len(worse_all) == 1 else 'are'} worse {where})" if worse_all else ""
        return f"{_names(consistent)} {verb} better than {baseline} {where}{tail}."
    some_better = [f"{x} ({count[(x, 'better')]}/{D})" for x in others if count[(x, "better")]]
    parts = [f"No loss beats {baseline} on {datasets[0]}" if D == 1 else
             f"No loss consistently beats {baseline} across the {D} datasets"]
    if some_better:
        parts.append(f"better on some datasets: {', '.join(some_better)}")
    elif D > 1:
        parts.append("none is better on any dataset")
    if worse_all:
        parts.append(f"worse {where}: {', '.join(worse_all)}")
    return parts[0] + (": " + "; ".join(parts[1:]) if parts[1:] else "") + "."
