"""The whole analysis of one report, as data: ``analyse(trials, ...) -> Report``. No files, no plots.

``trials`` is the output of ``reports.metrics.prepare`` (values lower-better, +inf = worst). Frames in
the Report are in those internal units; ``summary_table``, ``verdicts_table`` and ``curves_table``
give them in the metric's own units (higher-better metrics flipped back) for the outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from reports import budget as B
from reports import causes as C
from reports import metrics as M
from reports import ranks as R
from reports import seeds as S
from reports import verdicts as V

PERMUTATIONS_PER_TEST = 20  # n >= 20 m / alpha, so Holm's smallest threshold alpha/m is reachable


@dataclass
class Report:
    metric: str
    sign: int
    metric_known: bool
    baseline: str
    alpha: float
    budgets: list[int]
    n_resamples: int
    n_permutations: int
    seed: int
    datasets: list[str]
    losses: list[str]
    counts: pd.DataFrame
    curves: pd.DataFrame
    differences: pd.DataFrame
    seeds_summary: pd.DataFrame
    verdicts: pd.DataFrame
    dataset_values: pd.DataFrame
    value_basis: dict
    friedman: R.Friedman
    headline: str
    notes: list[str] = field(default_factory=list)
    metric_label: str = ""  # what the headline says the ranking used (default: the metric name)
    name: str = ""  # what tables and figures call the value: the metric, or for "primary" the primary's own name
    family_size: int = 0  # m: every comparison with the baseline (seeds and budget)
    seeds_needed: int | None = None  # seeds per loss for min_p <= alpha / m (two-sided Mann-Whitney)
    configs_needed: int | None = None  # configs per cell for the budget test's exact minimum <= alpha / m
    wilcoxon: R.Wilcoxon = field(default_factory=lambda: R.Wilcoxon(False, "not run"))
    causes: pd.DataFrame = field(default_factory=pd.DataFrame)  # per cell: diverged/saturated/collapsed (reports.causes)
    factor: str = "loss"  # what is compared (reports.factor): the levels in column "loss" are losses, tricks, ...

    @property
    def factors(self) -> str:
        """The factor's plural, for prose ("losses", "tricks")."""
        return self.factor + ("es" if self.factor.endswith("s") else "s")

    @property
    def better_word(self) -> str:
        return "lower" if self.sign > 0 else "higher"


def planned_budget_tests(trials: pd.DataFrame, baseline: str, budgets) -> int:
    cells = B.search_values(trials)
    m = 0
    for (ds, loss), v in cells.items():
        if loss != baseline and (ds, baseline) in cells:
            K = min(len(v), len(cells[(ds, baseline)]))
            m += len({K, *(k for k in budgets if k <= K)})
    return m


def comparisons(trials: pd.DataFrame, baseline: str, alpha: float = 0.05, budgets=(), n_resamples: int = B.RESAMPLES,
                seed: int = 0, differences: pd.DataFrame | None = None, with_ci: bool = True) -> tuple[pd.DataFrame, int, int]:
    """Every comparison with the baseline, decided: (verdicts, m comparisons, permutations per test).

    Permutations per budget test: max(n_resamples, 20 m / alpha), so that p-values as small as Holm's
    first threshold alpha / m are resolved."""
    budgets = sorted({int(k) for k in budgets})
    seeds_cells = S.seeds_values(trials)
    m_seeds = sum(1 for (ds, loss) in seeds_cells if loss != baseline and (ds, baseline) in seeds_cells)
    m = m_seeds + planned_budget_tests(trials, baseline, budgets)
    n_perm = max(n_resamples, math.ceil(PERMUTATIONS_PER_TEST * max(m, 1) / alpha))
    comps = [B.budget_comparisons(trials, baseline, budgets, n_perm, seed, differences),
             S.seed_comparisons(trials, baseline, n_resamples, seed=seed, with_ci=with_ci)]
    comps = [c for c in comps if not c.empty]
    table = pd.concat(comps, ignore_index=True) if comps else pd.DataFrame(columns=S.COMPARISON)
    return V.decide(table, alpha), m, n_perm


def analyse(trials: pd.DataFrame, baseline: str, alpha: float = 0.05, metric: str = "fid", budgets=(),
            n_resamples: int = B.RESAMPLES, seed: int = 0, metric_label: str | None = None, factor: str = "loss") -> Report:
    """Every statistic of the report. ``metric_label``: what the headline names as the ranking
    metric (e.g. "w1 on ring8"; default: ``metric``). ``factor``: what the levels in column ``loss``
    are (``reports.factor``: loss, trick, ...), as the report's words name them."""
    sign, known = M.orientation(metric, trials)
    budgets = sorted({int(k) for k in budgets})
    datasets = sorted(trials["dataset"].unique())
    losses = sorted(trials["loss"].unique(), key=lambda x: (x != baseline, x))
    counts = M.outcome_counts(trials)
    curves = B.budget_curves(trials, n_resamples, seed=seed, budgets=budgets)
    diffs = B.budget_differences(trials, baseline, n_resamples, seed=seed, budgets=budgets)
    summary = S.seed_summary(trials, n_resamples, seed=seed)
    verdicts, m, n_perm = comparisons(trials, baseline, alpha, budgets, n_resamples, seed, diffs)
    values, basis = R.dataset_values(trials)
    fr = R.friedman_nemenyi(values, alpha) if len(datasets) >= R.MIN_DATASETS else \
        R.Friedman(False, f"needs at least {R.MIN_DATASETS} datasets, the report has {len(datasets)}")
    label = metric if metric_label is None else metric_label
    need_s, need_c = S.seeds_needed(alpha, m), B.configs_needed(alpha, m)
    head = V.headline(verdicts, baseline, datasets, losses, label, alpha, need_s, need_c, m, noun=factor)
    rep = Report(metric, sign, known, baseline, alpha, budgets, n_resamples, n_perm, seed, datasets, losses, counts,
                 curves, diffs, summary, verdicts, values, basis, fr, head, metric_label=label, name=_name(metric, trials),
                 family_size=m, factor=factor,
                 seeds_needed=need_s, configs_needed=need_c,
                 wilcoxon=R.wilcoxon_tests(values, baseline, alpha) if not values.empty else R.Wilcoxon(False, "no values"),
                 causes=C.causes_table(trials))
    rep.notes = _notes(rep, trials, m)
    return rep


def _name(metric: str, trials: pd.DataFrame) -> str:
    """``w1`` for a report ranked by the primary metric of 2-D studies; "primary metric" when the
    datasets' primaries differ (w1 and fid); else the metric itself."""
    if metric != M.PRIMARY:
        return metric
    names = M.primary_metrics(trials)
    return names[0] if len(names) == 1 else "primary metric"


def _notes(rep: Report, trials: pd.DataFrame, m: int) -> list[str]:
    notes = []
    src = trials.loc[trials["outcome"] == "ok", "value_source"].value_counts()
    best = f"{rep.metric}_best"
    if src.get(best, 0):
        notes.append(f"Value per trial: its best {rep.name} over checkpoints ({best}), as in Lucic et al. 2018"
                     + (f"; the last {rep.name} for {src.get(rep.metric, 0)} trial(s) without {best}."
                        if src.get(rep.metric, 0) else "."))
    else:
        notes.append(f"Value per trial: column {rep.metric}.")
    if rep.metric_known:
        notes.append(f"{rep.name}: {rep.better_word} is better.")
    else:
        notes.append(f"{rep.metric} is not a metric this report knows: it is assumed that lower is better.")
    worst = trials["outcome"] != "ok"
    notes.append(f"Diverged, failed and unscored trials count as the worst value (they never win a budget draw and "
                 f"rank last): {int(worst.sum())} of {len(trials)} trials; the tables show them per cell. A statistic "
                 f"shown as {'inf' if rep.sign > 0 else '-inf'} is that worst value (e.g. a median over mostly "
                 "diverged seeds).")
    notes += _power_notes(rep, m)
    budget = rep.verdicts[rep.verdicts["kind"] == "budget"]
    if len(budget):
        exact = int(((budget["budget"] == budget["n_loss"]) & (budget["n_loss"] == budget["n_baseline"])).sum())
        how = ("exact: the closed-form permutation distribution of the minima, k = B" if exact == len(budget) else
               f"{rep.n_permutations:,} relabellings" if exact == 0 else
               f"exact for the {exact} of {len(budget)} that compare the minima of equal cells (k = B), "
               f"{rep.n_permutations:,} relabellings for the others")
        notes.append(f"Budget verdicts: permutation test of the expected best-of-k on pooled ranks ({how}); the "
                     f"bootstrap bands and intervals (95%, {rep.n_resamples:,} resamples) are descriptive, since the "
                     "bootstrap is unreliable for minima.")
    cells = B.search_values(trials)
    for k in rep.budgets:
        short = sorted(f"{ds}/{loss}" for (ds, loss), v in cells.items() if len(v) < k)
        if short:
            notes.append(f"--budget {k} exceeds the search configs of {', '.join(short)}: no budget verdict at {k} there.")
    no_base = [ds for ds in rep.datasets if not ((trials["dataset"] == ds) & (trials["loss"] == rep.baseline)).any()]
    if no_base:
        notes.append(f"No {rep.baseline} trials on {', '.join(no_base)}: nothing compared there.")
    if not rep.wilcoxon.ok and len(rep.datasets) >= R.MIN_WILCOXON_DATASETS:
        notes.append(f"Pairwise Wilcoxon signed-rank tests across datasets not run: {rep.wilcoxon.reason}.")
    elif rep.wilcoxon.ok:
        n = len(rep.wilcoxon.datasets)
        notes.append(f"Across datasets: two-sided Wilcoxon signed-rank test of each {rep.factor} against {rep.baseline} over "
                     f"the {n} datasets{f' ({rep.wilcoxon.reason})' if rep.wilcoxon.reason else ''}, Holm over those "
                     f"{len(rep.wilcoxon.table)} comparisons (its own family); with {n} datasets its smallest p is "
                     f"{R.wilcoxon_min_p(n):.3g}" + (f", above alpha: inconclusive ({R.datasets_needed(rep.alpha)} datasets "
                                                    "can reach alpha)." if R.wilcoxon_min_p(n) > rep.alpha else "."))
    if rep.factor not in ("loss", "trick", "arch"):
        notes.append(f"Factor {rep.factor}, a searched hyperparameter: its levels split each cell's search "
                     "configurations, so budget curves are over the configs that drew each level, and the seeds "
                     "phase retrained only the level of each cell's best configuration.")
    if not rep.friedman.ok:
        notes.append(f"Friedman/Nemenyi across datasets not run: {rep.friedman.reason}.")
    elif rep.friedman.reason:
        notes.append(f"Friedman/Nemenyi: {rep.friedman.reason}.")
    return notes


def _power_notes(rep: Report, m: int) -> list[str]:
    v = rep.verdicts
    unsure = int((v["verdict"] == "inconclusive").sum()) if len(v) else 0
    notes = [f"Multiplicity: Holm's correction over the {m - unsure} of {m} comparisons with {rep.baseline} in this "
             f"report that can reach alpha = {rep.alpha:g} (seeds and budget verdicts together; family-wise error "
             f"rate alpha). The other {unsure} are inconclusive: the smallest p-value their test can give at these "
             "sample sizes (min_p, the test on perfectly separated samples) is above alpha, so they could never be "
             "significant; they are left out of the family (Tarone 1990), which depends only on the sample sizes."
             if unsure else
             f"Multiplicity: Holm's correction over all {m} comparisons with {rep.baseline} in this report "
             f"(seeds and budget verdicts together), family-wise error rate alpha = {rep.alpha:g}."]
    if (v["kind"] == "seeds").any() if len(v) else False:
        s = v[v["kind"] == "seeds"]
        have = sorted({int(n) for n in s["n_loss"]} | {int(n) for n in s["n_baseline"]})
        have_s = str(have[0]) if len(have) == 1 else f"{have[0]} to {have[-1]}"
        need = rep.seeds_needed
        notes.append(f"Seeds needed: a two-sided Mann-Whitney test with n seeds per {rep.factor} can reach Holm's first "
                     f"threshold alpha/m = {rep.alpha / max(m, 1):.2g} (m = {m}) from n = {need} on "
                     f"(smallest p {S.mw_min_p(need, need):.2g}); this report has {have_s} seeds per {rep.factor}."
                     if need else f"Seeds needed: more than {S.MAX_SEEDS} per {rep.factor} to reach alpha/m.")
    return notes


# ---- tables in the metric's own units ------------------------------------------------------------

def _disp(rep: Report, df: pd.DataFrame, values=(), intervals=()) -> pd.DataFrame:
    df = df.copy()
    for c in values:
        df[c] = M.display(df[c].to_numpy(dtype=float), rep.sign) if len(df) else df[c]
    for lo, hi in intervals:
        if len(df):
            df[lo], df[hi] = M.display_interval(df[lo].to_numpy(dtype=float), df[hi].to_numpy(dtype=float), rep.sign)
    return df


def summary_table(rep: Report) -> pd.DataFrame:
    """One row per dataset x loss: trial counts per phase and outcome, best of the search, E[best of B]
    with its band, seeds median and IQM with 95% intervals, rank on the dataset."""
    c = rep.counts.pivot_table(index=["dataset", "loss"], columns="phase",
                               values=["trials", *M.OUTCOMES], aggfunc="sum", fill_value=0)
    c.columns = [f"{phase}_{what}" for what, phase in c.columns]
    cols = [f"{ph}_{w}" for ph in M.PHASES for w in ("trials", *M.OUTCOMES)]
    c = c.reindex(columns=cols, fill_value=0).reset_index()
    out = c
    if not rep.curves.empty:
        last = rep.curves.sort_values("k").groupby(["dataset", "loss"]).tail(1)
        first = rep.curves[rep.curves["k"] == 1]
        last = last.rename(columns={"expected_min": "search_best", "band_low": "search_best_low",
                                    "band_high": "search_best_high", "configs": "search_configs"})
        first = first.rename(columns={"expected_min": "search_mean"})
        out = out.merge(last[["dataset", "loss", "search_configs", "search_best", "search_best_low", "search_best_high"]],
                        on=["dataset", "loss"], how="left")
        out = out.merge(first[["dataset", "loss", "search_mean"]], on=["dataset", "loss"], how="left")
        out = _disp(rep, out, ["search_best", "search_mean"], [("search_best_low", "search_best_high")])
    if not rep.seeds_summary.empty:
        s = _disp(rep, rep.seeds_summary, ["median", "iqm"], [("median_low", "median_high"), ("iqm_low", "iqm_high")])
        out = out.merge(s.drop(columns="seeds"), on=["dataset", "loss"], how="left")
    if not rep.dataset_values.empty:
        r = R.rank_table(rep.dataset_values).stack().rename("rank").reset_index()
        out = out.merge(r, on=["dataset", "loss"], how="left")
    order = {x: i for i, x in enumerate(rep.losses)}
    return out.sort_values(["dataset", "loss"], key=lambda s: s.map(order) if s.name == "loss" else s).reset_index(drop=True)


VERDICT_COLUMNS = ["dataset", "loss", "baseline", "kind", "budget", "n_loss", "n_baseline", "estimate", "ci_low",
                   "ci_high", "statistic", "p_value", "min_p", "p_adjusted", "prob_improvement", "pi_low", "pi_high",
                   "verdict"]


def verdicts_table(rep: Report) -> pd.DataFrame:
    """Verdicts in the metric's units: estimate = loss - baseline (median over seeds, or E[best of k])."""
    v = rep.verdicts.reindex(columns=VERDICT_COLUMNS)
    v = _disp(rep, v, ["estimate"], [("ci_low", "ci_high")])
    order = {x: i for i, x in enumerate(rep.losses)}
    v = v.sort_values(["dataset", "kind", "loss", "budget"], key=lambda s: s.map(order) if s.name == "loss" else s)
    return v.reset_index(drop=True)


def wilcoxon_table(rep: Report) -> pd.DataFrame:
    """Each loss against the baseline across datasets (Wilcoxon signed-rank, Holm over these)."""
    return rep.wilcoxon.table.drop(columns="direction").reset_index(drop=True)


def curves_table(rep: Report) -> pd.DataFrame:
    return _disp(rep, rep.curves, ["expected_min"], [("band_low", "band_high")]) if not rep.curves.empty else rep.curves


def differences_table(rep: Report) -> pd.DataFrame:
    return _disp(rep, rep.differences, ["diff"], [("diff_low", "diff_high")]) if not rep.differences.empty else rep.differences
