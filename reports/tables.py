"""The report's tables as plain strings (not escaped): rendered by ``reports.leaderboard`` (Markdown)
and ``reports.html``, which each escape every cell for their format."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from reports import ranks as R
from reports.analysis import Report, curves_table, summary_table, verdicts_table, wilcoxon_table


POWER = ("min p: the smallest p-value the test can give at these sample sizes; above alpha the verdict is "
         "inconclusive (the data could not show a difference), and no-difference means the test could have and did not.")


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    intro: str = ""
    notes: list[str] = field(default_factory=list)


def num(x) -> str:
    """A number for people: 3-4 significant digits, the worst value as 'inf'."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def prob(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else f"{x:.2f}"


def interval(v, lo, hi, fmt=num) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if lo is None or hi is None or any(isinstance(z, float) and math.isnan(z) for z in (lo, hi)):
        return fmt(v)
    return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"


def pval(p) -> str:
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(p):
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def worst(row, phase: str) -> str:
    parts = [f"{int(row.get(f'{phase}_{w}', 0) or 0)} {w}" for w in ("diverged", "failed", "unscored")
             if int(row.get(f"{phase}_{w}", 0) or 0)]
    return ", ".join(parts) if parts else "0"


def seeds_tables(rep: Report) -> list[Table]:
    summ = summary_table(rep)
    ver = verdicts_table(rep)
    sv = ver[ver["kind"] == "seeds"].set_index(["dataset", "loss"]) if len(ver) else ver
    out = []
    for ds in rep.datasets:
        s = summ[(summ["dataset"] == ds) & (summ["seeds_trials"] > 0)] if "median" in summ else summ.iloc[0:0]
        if s.empty:
            continue
        rows = []
        for _, r in s.iterrows():
            key = (ds, r["loss"])
            v = sv.loc[key] if len(sv) and key in sv.index else None
            base = r["loss"] == rep.baseline
            rows.append([
                r["loss"] + (" (baseline)" if base else ""), str(int(r["seeds_trials"])), worst(r, "seeds"),
                interval(r["median"], r["median_low"], r["median_high"]),
                interval(r["iqm"], r["iqm_low"], r["iqm_high"]),
                "-" if v is None else interval(v["prob_improvement"], v["pi_low"], v["pi_high"], prob),
                "-" if v is None else pval(v["p_value"]), "-" if v is None else pval(v["min_p"]),
                "-" if v is None else pval(v["p_adjusted"]),
                "baseline" if base else ("-" if v is None else v["verdict"]),
            ])
        out.append(Table(
            f"{ds}: best configuration, retrained with several seeds",
            [rep.factor, "seeds", "worst (counted)", f"median {rep.name} [95% CI]", "IQM [95% CI]",
             f"P(better than {rep.baseline}) [95% CI]", "p (Mann-Whitney)", "min p", "p (Holm)", "verdict"],
            rows, intro=POWER))
    return out


def budget_table(rep: Report) -> Table | None:
    if rep.curves.empty:
        return None
    summ = summary_table(rep).set_index(["dataset", "loss"])
    cur = curves_table(rep).set_index(["dataset", "loss", "k"])
    ver = verdicts_table(rep)
    bv = ver[ver["kind"] == "budget"]
    rows = []
    for ds in rep.datasets:
        for loss in rep.losses:
            if (ds, loss) not in summ.index or not summ.loc[(ds, loss), "search_trials"]:
                continue
            r = summ.loc[(ds, loss)]
            B = int(r["search_configs"])
            cfg = f"{B}"
            if loss == rep.baseline or bv.empty:
                c = cur.loc[(ds, loss, B)]
                rows.append([ds, loss + (" (baseline)" if loss == rep.baseline else ""), cfg, worst(r, "search"), str(B),
                             interval(c["expected_min"], c["band_low"], c["band_high"]), "-", "-", "-", "-",
                             "baseline" if loss == rep.baseline else "-"])
                continue
            vs = bv[(bv["dataset"] == ds) & (bv["loss"] == loss)]
            if vs.empty:
                c = cur.loc[(ds, loss, B)]
                rows.append([ds, loss, cfg, worst(r, "search"), str(B),
                             interval(c["expected_min"], c["band_low"], c["band_high"]), "-", "-", "-", "-", "-"])
            for _, v in vs.iterrows():
                k = int(v["budget"])
                c = cur.loc[(ds, loss, k)]
                rows.append([ds, loss, cfg, worst(r, "search"), str(k),
                             interval(c["expected_min"], c["band_low"], c["band_high"]),
                             interval(v["estimate"], v["ci_low"], v["ci_high"]), prob(v["prob_improvement"]),
                             pval(v["min_p"]), pval(v["p_adjusted"]), v["verdict"]])
    best = "min" if rep.sign > 0 else "max"
    return Table(
        f"Budget: expected best {rep.name} of k random configurations (search phase)",
        ["dataset", rep.factor, "configs", "worst (counted)", "k", f"E[{best} of k] [95% band]",
         f"difference to {rep.baseline} [95% CI]", f"P(best of k beats {rep.baseline})", "min p", "p (Holm)", "verdict"],
        rows,
        intro=(f"E[{best} of k]: the exact expectation over k of the B configurations drawn at random without "
               "replacement (Lucic et al. 2018's budget curves; the unbiased U-statistic, Tang et al. 2020). Bands and "
               "intervals: 95% bootstrap, descriptive; verdicts: permutation test on ranks, Holm-corrected. " + POWER))


def ranks_table(rep: Report) -> Table | None:
    if rep.dataset_values.empty or len(rep.datasets) < 2:
        return None
    ranks = rep.dataset_values.rank(axis=1, method="average")
    fr = rep.friedman
    rows = []
    mean = ranks.mean(axis=0).sort_values()
    for loss in mean.index:
        rows.append([loss, num(mean[loss]), *[num(ranks.loc[ds, loss]) for ds in ranks.index]])
    if fr.ok:
        intro = (f"Friedman chi2 = {num(fr.statistic)}, p = {pval(fr.p_value)} over {len(fr.datasets)} datasets and "
                 f"{len(fr.losses)} {rep.factors}; Nemenyi critical difference CD = {num(fr.cd)} at alpha = {rep.alpha:g} "
                 f"(two {rep.factors} differ when their mean ranks differ by more).")
    else:
        intro = f"Friedman/Nemenyi not run: {fr.reason}."
    basis = sorted(set(rep.value_basis.values()))
    return Table("Across datasets: ranks (1 = best)", [rep.factor, "mean rank", *list(ranks.index)], rows,
                 intro=intro + f" Value ranked per dataset: {'; '.join(basis)}.")


def wilcoxon_report_table(rep: Report) -> Table | None:
    w = rep.wilcoxon
    if not w.ok:
        return None
    rows = [[r["loss"], str(int(r["datasets"])), f"{int(r['better_on'])}/{int(r['tied_on'])}/{int(r['worse_on'])}",
             num(r["statistic"]), pval(r["p_value"]), pval(r["min_p"]), pval(r["p_adjusted"]), r["verdict"]]
            for r in wilcoxon_table(rep).to_dict("records")]
    return Table(
        f"Across datasets: Wilcoxon signed-rank test against {rep.baseline}",
        [rep.factor, "datasets", "better/tied/worse", "statistic", "p (Wilcoxon)", "min p", "p (Holm)", "verdict"], rows,
        intro=(f"Two-sided signed-rank test of each {rep.factor}'s per-dataset value against {rep.baseline}'s (the values "
               "ranked below), Holm over these comparisons (Benavoli, Corani & Mangili 2016: unlike Nemenyi, it does "
               f"not depend on the other {rep.factors} in the pool). With N datasets the smallest p is 2/2^N; N < "
               f"{R.datasets_needed(rep.alpha)} is inconclusive at alpha = {rep.alpha:g}."
               + (f" {w.reason}." if w.reason else "")))


def causes_report_table(rep: Report) -> Table | None:
    """Per dataset and loss: how many trials diverged, saturated or collapsed, and the health medians."""
    from reports.causes import THRESHOLDS

    c = rep.causes
    if c.empty or (c["saturated"].sum() == 0 and c["collapsed"].isna().all() and c[[k for k in c if k.startswith("median_")]].isna().all().all()):
        return None  # results without health or mode columns (e.g. from before they were recorded)
    rows = []
    for _, r in c.iterrows():
        ids = [re.sub(r"^.*-(search|seeds)-", r"\1-", t) for t in r["collapsed_trials"]]
        shown = ", ".join(ids[:3]) + (f" (+{len(ids) - 3} more)" if len(ids) > 3 else "")
        n = int(r["trials"])
        rows.append([r["dataset"], r["loss"], str(n), f"{int(r['diverged'])}/{n}", f"{int(r['saturated'])}/{n}",
                     "-" if math.isnan(r["collapsed"]) else f"{int(r['collapsed'])}/{n}", shown or "-",
                     "-" if math.isnan(r["off_data"]) else f"{int(r['off_data'])}/{n}",
                     num(r["median_d_auc"]), num(r["median_d_saturated"]), num(r["median_g_grad_norm"]),
                     num(r["median_g_grad_norm_min"])])
    return Table(f"How the trials failed: divergence, saturation, mode collapse per {rep.factor}",
                 ["dataset", rep.factor, "trials", "diverged", "saturated", "collapsed", "collapsed trials", "off-data",
                  "median d_auc", "median d_saturated", "median G grad norm (last)", "median G grad norm (min)"],
                 rows, intro=THRESHOLDS + " Every trial of the cell, search and seeds phases. d_auc: P(D(x) > D(G(z))) "
                 "over the batch's pairs; G grad norm: ||grad of the generator loss||, in each loss's own scale.")


def all_tables(rep: Report) -> list[Table]:
    return [t for t in [*seeds_tables(rep), budget_table(rep), wilcoxon_report_table(rep), ranks_table(rep),
                        causes_report_table(rep)] if t is not None]
