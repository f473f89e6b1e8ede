"""Verdicts: one Holm family for the whole report, and the headline in Lucic et al.'s terms.

Every comparison of a loss with the baseline in a report (``seeds``: Mann-Whitney U per dataset;
``budget``: the permutation test at each reported budget k per dataset) is one hypothesis of a single
family, corrected with Holm's step-down method (Holm 1979): with the m p-values sorted
p_(1) <= ... <= p_(m),

    p_adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))

which controls the family-wise error rate at alpha under any dependence. Verdict per comparison:

- ``inconclusive`` when the test cannot reject at these sample sizes even before correction: its
  smallest attainable p-value ``min_p`` (the test on perfectly separated samples of the same sizes,
  see ``reports.seeds`` and ``reports.budget``) is above alpha. Two-sided Mann-Whitney with 3 seeds
  against 3 cannot go below p = 0.1, so such a table can never say anything, and ``no-difference``
  would present the lack of data as evidence of equality;
- ``better`` when p_adj < alpha and the loss tends lower (``direction`` < 0, lower-better units),
  ``worse`` when p_adj < alpha and it tends higher;
- else ``no-difference``: the comparison had the power to reject at alpha and did not.

Family: the comparisons that can reach alpha (``min_p`` <= alpha); inconclusive comparisons are left
out of Holm's m and get no adjusted p-value. This keeps the family-wise error rate at alpha: a
hypothesis whose test can never reach alpha can never be falsely rejected, and which hypotheses are
left out depends only on the sample sizes (the design), not on the observed values, so Holm runs on
a family fixed in advance (Tarone 1990, "A modified Bonferroni method for discrete data",
Biometrics 46; Hommel & Krummenauer 1998). Counting them would only spend alpha on tests that cannot
use it. ``seeds_needed`` in the report still uses every comparison (once they have the seeds, they
all join the family).

The headline says which metric ranked (``metric_label``) and follows Lucic et al. 2018 ("we did not find evidence that any of the tested algorithms
consistently outperforms the non-saturating GAN"): a loss beats the baseline *consistently* when its
primary verdict is ``better`` on every dataset of the report. The primary verdict on a dataset is the
``seeds`` verdict where that dataset has a seeds phase for both and it is not inconclusive, else the
``budget`` verdict at the largest budget k that is not (3 seeds cannot decide, 20 configurations
can), else the inconclusive one. A loss none of whose primary verdicts is conclusive against it (every one is
``better`` or ``inconclusive``, at least one ``inconclusive``) is undecided: the headline names it
and the seeds (or configs) that would decide it, and never says "no loss beats" over it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

VERDICTS = ("better", "worse", "no-difference", "inconclusive")


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
    """Add ``p_adjusted`` (Holm over the rows with ``min_p`` <= alpha; NaN for the others) and
    ``verdict``. Needs the columns p_value, min_p and direction."""
    df = comparisons.reset_index(drop=True).copy()
    powered = df["min_p"].astype(float) <= alpha
    df["p_adjusted"] = holm(df["p_value"].where(powered)) if len(df) else pd.Series(dtype=float)
    sig = powered & (df["p_adjusted"] < alpha)
    df["verdict"] = np.where(~powered, "inconclusive",
                             np.where(sig & (df["direction"] < 0), "better",
                                      np.where(sig & (df["direction"] > 0), "worse", "no-difference")))
    return df


def primary(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One verdict per dataset x loss: the seeds verdict where there is one that is not inconclusive,
    else the budget verdict at the largest k that is not, else the inconclusive seeds (or budget)
    verdict. Which one is chosen depends on ``min_p`` alone (the sample sizes), never on the data's
    values, so choosing does not spend alpha: both kinds are in the one Holm family anyway."""
    if verdicts.empty:
        return verdicts.assign(kind=pd.Series(dtype=str))
    v = verdicts.copy()
    v["_conclusive"] = v["verdict"] != "inconclusive"
    v["_order"] = np.where(v["kind"] == "seeds", np.inf, v["budget"].fillna(0).astype(float))
    v = v.sort_values(["dataset", "loss", "_conclusive", "_order"]).groupby(["dataset", "loss"], sort=True).tail(1)
    return v.drop(columns=["_conclusive", "_order"]).reset_index(drop=True)


def _names(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _p(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def _power(rows: pd.DataFrame, alpha: float, seeds_needed: int | None, configs_needed: int | None, noun: str = "loss") -> str:
    """Why the inconclusive ``rows`` are: '3 seeds per loss cannot show a difference at alpha = 0.05
    (the smallest attainable p is 0.1); use --seeds >= 6'."""
    sizes = sorted({int(n) for n in rows["n_loss"]} | {int(n) for n in rows["n_baseline"]})
    what = set(rows["kind"])
    unit = "seeds" if what == {"seeds"} else "configurations" if what == {"budget"} else "seeds or configurations"
    count = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
    lo, hi = float(rows["min_p"].min()), float(rows["min_p"].max())
    best = f"the smallest attainable p is {_p(lo)}" if _p(lo) == _p(hi) else f"the smallest attainable p is {_p(lo)} to {_p(hi)}"
    advice = []
    if "seeds" in what and seeds_needed:
        advice.append(f"--seeds >= {seeds_needed}")
    if "budget" in what and configs_needed:
        advice.append(f"--budget >= {configs_needed}")
    tail = f"; use {' and '.join(advice)}" if advice else ""
    return f"{count} {unit} per {noun} cannot show a difference at alpha = {alpha:g} ({best}){tail}"


def _weak(rows: pd.DataFrame, alpha: float, m: int, seeds_needed: int | None, configs_needed: int | None,
          noun: str = "loss") -> str:
    """The ``no-difference`` rows whose test cannot pass Holm's first threshold alpha / m on its own."""
    weak = rows[(rows["verdict"] == "no-difference") & (rows["min_p"].astype(float) > alpha / m)]
    if weak.empty:
        return ""
    sizes = sorted({int(n) for n in weak["n_loss"]} | {int(n) for n in weak["n_baseline"]})
    what = set(weak["kind"])
    unit = "seeds" if what == {"seeds"} else "configurations" if what == {"budget"} else "seeds or configurations"
    count = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
    advice = [a for a, ok in ((f"--seeds >= {seeds_needed}", "seeds" in what and seeds_needed),
                              (f"--budget >= {configs_needed}", "budget" in what and configs_needed)) if ok]
    return (f"but {count} {unit} per {noun} are too few for a difference to pass Holm over {m} comparisons on its own "
            f"(smallest p {_p(float(weak['min_p'].min()))} > alpha/m = {_p(alpha / m)})"
            + (f"; use {' and '.join(advice)}" if advice else ""))


def headline(verdicts: pd.DataFrame, baseline: str, datasets: list[str], losses: list[str], metric_label: str = "",
             alpha: float = 0.05, seeds_needed: int | None = None, configs_needed: int | None = None,
             family_size: int | None = None, noun: str = "loss") -> str:
    """Whether any loss beats the baseline on every dataset, in words, prefixed with "By METRIC_LABEL: "
    (what the ranking used). ``seeds_needed`` / ``configs_needed``: the advice for inconclusive
    seeds / budget comparisons (``bench run --seeds`` / ``--budget``). ``family_size``: the report's
    m; where given, ``no-difference`` primary verdicts whose min_p is above alpha / m (they had the
    power to reject before correction, not after Holm on their own) are said to be weak. ``noun``:
    what the compared levels are ("loss"; "trick" for ``bench report --factor trick``)."""
    D = len(datasets)
    where = f"on {datasets[0]}" if D == 1 else f"on all {D} datasets"
    others = [x for x in losses if x != baseline]
    if not others:
        return f"Only the baseline {baseline} is in the report: nothing to compare."
    p = primary(verdicts)
    if p.empty:
        return f"No {noun} could be compared with {baseline}: no dataset has both a loss and {baseline} in the same phase."
    by = f"By {metric_label}: " if metric_label else ""
    count = {(loss, v): int(((p["loss"] == loss) & (p["verdict"] == v)).sum()) for loss in others for v in VERDICTS}
    decided = {x for x in others if count[(x, "worse")] or count[(x, "no-difference")]}
    undecided = [x for x in others if x not in decided and count[(x, "inconclusive")]]
    consistent = [x for x in others if count[(x, "better")] == D]
    worse_all = [x for x in others if count[(x, "worse")] == D]
    unsure = p[p["verdict"] == "inconclusive"]
    power = _power(unsure, alpha, seeds_needed, configs_needed, noun) if len(unsure) else ""
    if len(unsure) == len(p):
        place = f"on {datasets[0]}" if D == 1 else f"on any of the {D} datasets"
        return _cap(f"{by}no verdict {place}: {power}.")
    clauses = []
    if undecided:
        named = [x if D == 1 else f"{x} ({count[(x, 'inconclusive')]}/{D})" for x in undecided]
        clauses.append(f"no verdict on {', '.join(named)}: {power}")
    if family_size:
        clauses.append(_weak(p, alpha, family_size, seeds_needed, configs_needed, noun))
    tail = "".join(f"; {c}" for c in clauses if c) + "."
    if consistent:
        verb = "is" if len(consistent) == 1 else "are"
        worse = f" ({_names(worse_all)} {'is' if len(worse_all) == 1 else 'are'} worse {where})" if worse_all else ""
        return f"{by}{_names(consistent)} {verb} better than {baseline} {where}{worse}{tail}"
    some_better = [f"{x} ({count[(x, 'better')]}/{D})" for x in others if count[(x, "better")]]
    if undecided:  # a claim about the decided losses only
        ones = [x for x in others if x in decided]
        subject = f"{_names(ones)} {'does' if len(ones) == 1 else 'do'} not"
        parts = [f"{subject} beat {baseline} on {datasets[0]}" if D == 1 else
                 f"{subject} consistently beat {baseline} across the {D} datasets"]
    else:
        parts = [f"no {noun} beats {baseline} on {datasets[0]}" if D == 1 else
                 f"no {noun} consistently beats {baseline} across the {D} datasets"]
    if some_better:
        parts.append(f"better on some datasets: {', '.join(some_better)}")
    elif D > 1:
        parts.append("none is better on any dataset")
    if worse_all:
        parts.append(f"worse {where}: {', '.join(worse_all)}")
    return _cap(by + parts[0] + (": " + "; ".join(parts[1:]) if parts[1:] else "") + tail)


def _cap(text: str) -> str:
    """Capitalise a sentence that starts with 'no' (never a loss or trick name)."""
    return "N" + text[1:] if text.startswith("no ") else text
