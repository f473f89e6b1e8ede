"""``bench report``: statistics checked against brute force and known answers, planted effects,
calibration under the null, diverged trials, and the CLI end to end on real files."""
from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.errors import UsageError
from reports import analysis as A
from reports import budget as Bu
from reports import metrics as M
from reports import ranks as R
from reports import seeds as S
from reports import verdicts as V
from tests.conftest import run_bench, tree_snapshot

EVIL = "<script>alert(1)</script>"
VERDICT_KEYS = {"dataset", "loss", "baseline", "kind", "budget", "p_value", "min_p", "p_adjusted", "prob_improvement",
                "verdict"}


def synth(rng, datasets=("d0", "d1", "d2"), losses=None, configs=8, seeds=10, diverge=0.0, extra=None) -> pd.DataFrame:
    """A results table: losses maps name -> FID shift (negative = better); search FIDs ~ 30 + Gamma,
    seeds FIDs ~ 20 + N(0, 1); each trial diverges with probability ``diverge``."""
    losses = losses or {"ns": 0.0, "a": 0.0, "b": 0.0}
    n_cell = configs + seeds
    names = list(losses)
    ds = np.repeat(list(datasets), len(names) * n_cell)
    loss = np.tile(np.repeat(names, n_cell), len(datasets))
    phase = np.tile(np.r_[["search"] * configs, ["seeds"] * seeds], len(datasets) * len(names))
    shift = np.array([losses[x] for x in loss])
    fid = np.where(phase == "search", 30 + rng.gamma(2.0, 3.0, len(phase)), 20 + rng.normal(0, 1, len(phase))) + shift
    status = np.where(rng.random(len(phase)) < diverge, "diverged", "ok")
    config = np.tile(np.r_[np.arange(configs), np.zeros(seeds, int)], len(datasets) * len(names))
    df = pd.DataFrame({"dataset": ds, "loss": loss, "phase": phase, "config_id": config,
                       "seed": np.arange(len(phase)), "status": status, "fid": fid})
    df.loc[df["status"] != "ok", "fid"] = np.nan
    if extra:
        for k, v in extra.items():
            df[k] = v
    return df


def decided(table: pd.DataFrame, baseline: str = "ns", alpha: float = 0.05, metric: str = "fid", **kw) -> pd.DataFrame:
    t = M.prepare(table, metric)
    return A.comparisons(t, baseline, alpha, n_resamples=kw.pop("n_resamples", 300), **kw)[0]


# ---- budget curves: exact, against brute force ---------------------------------------------------

def brute_expected_min(values, k):
    mins = [min(c) for c in itertools.combinations(values, k)]
    return np.inf if np.isinf(mins).any() else float(np.mean(mins))


@pytest.mark.parametrize("values", [
    [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0],
    [2.0, 2.0, 7.0, 1.0, 1.0, 3.0],                        # ties
    [5.0, np.inf, 2.0, np.inf, 3.0, 8.0, np.inf],          # diverged trials (+inf)
    [np.inf, np.inf],
])
def test_budget_curve_equals_brute_force(values):
    curve = Bu.expected_min_curve(values)
    brute = [brute_expected_min(values, k) for k in range(1, len(values) + 1)]
    np.testing.assert_allclose(curve, brute, rtol=1e-12)
    assert curve[-1] == min(values)  # k = B: the sample minimum
    assert np.all(np.diff(curve[np.isfinite(curve)]) <= 1e-12)  # more budget never hurts


def test_budget_curve_is_the_unbiased_u_statistic_and_with_replacement_is_not():
    """Tang et al. 2020: over every way to draw the B configs, the without-replacement estimator
    averages to the true expected best of k; Dodge et al. 2019's with-replacement one does not."""
    pop = [4.0, 1.0, 3.0, 2.5]  # a population of config scores, enumerated
    B = 3
    # (1) configs drawn i.i.d. from the population: all P^B ordered draws, target = E[min of k i.i.d.]
    draws = list(itertools.product(pop, repeat=B))
    for k in (1, 2, 3):
        target = np.mean([min(t) for t in itertools.product(pop, repeat=k)])
        u = np.mean([Bu.expected_min_curve(d)[k - 1] for d in draws])
        dodge = np.mean([Bu.expected_min_with_replacement(d, k) for d in draws])
        assert u == pytest.approx(target, abs=1e-12)
        if k > 1:
            assert dodge > target + 0.05  # repeats configs: fewer distinct ones, a worse minimum
        assert all(Bu.expected_min_with_replacement(d, k) >= Bu.expected_min_curve(d)[k - 1] - 1e-12 for d in draws)
    # (2) configs drawn without replacement from a finite population: the average over all B-subsets
    # of the estimator is the population's E[min of k] by enumeration of its k-subsets
    pop = [5.0, 1.0, 3.0, 2.0, 8.0, 1.5, np.inf]
    for k in (1, 2, 3, 4):
        target = brute_expected_min(pop[:-1], k)  # finite part: inf enters where a k-subset is all inf
        finite = [c for c in itertools.combinations(pop[:-1], 5)]
        u = np.mean([Bu.expected_min_curve(c)[k - 1] for c in finite])
        dodge = np.mean([Bu.expected_min_with_replacement(c, k) for c in finite])
        assert u == pytest.approx(target, abs=1e-12)
        assert (dodge == pytest.approx(target, abs=1e-12)) == (k == 1)
    # the with-replacement weights themselves, against brute force over the B^k ordered draws
    vals = [3.0, 1.0, 4.0, 1.5]
    for k in (1, 2, 3):
        brute = np.mean([min(t) for t in itertools.product(vals, repeat=k)])
        assert Bu.expected_min_with_replacement(vals, k) == pytest.approx(brute, abs=1e-12)


def test_budget_curves_frame_matches_brute_force_per_cell():
    rng = np.random.default_rng(5)
    df = synth(rng, datasets=("d0",), configs=6, seeds=0, diverge=0.3)
    curves = Bu.budget_curves(M.prepare(df), n_resamples=200)
    for (ds, loss), g in curves.groupby(["dataset", "loss"]):
        v = M.prepare(df).query("dataset == @ds and loss == @loss")["value"].to_numpy()
        brute = [brute_expected_min(v, k) for k in range(1, len(v) + 1)]
        np.testing.assert_allclose(g.sort_values("k")["expected_min"], brute, rtol=1e-12)
        assert (g["band_low"] <= g["expected_min"]).all() and (g["expected_min"] <= g["band_high"]).all()


def test_min_weights_match_the_binomial_formula_and_a_large_cell_bands_at_a_grid():
    """The vectorised weights against C(B-i, k-1) / C(B, k) in exact integers; a cell above BAND_POINTS
    configs gets its exact curve at every k and its bootstrap band at band_ks, equal there to the band
    of a bootstrap at every k (the same draws), NaN elsewhere; infinite values (diverged) as before."""
    for B in (1, 5, 40):
        for k in range(1, B + 1):
            exact = [math.comb(B - i, k - 1) / math.comb(B, k) for i in range(1, B + 1)]
            np.testing.assert_allclose(Bu.min_weights(B, k), exact, rtol=1e-10, atol=0)
    rng = np.random.default_rng(9)
    B = Bu.BAND_POINTS + 72
    v = rng.lognormal(size=B)
    v[rng.random(B) < 0.1] = np.inf
    df = pd.DataFrame({"dataset": "d", "loss": "ns", "arch": "mlp", "phase": "search", "status": "ok",
                       "config_id": range(B), "trial_id": [f"t{i}" for i in range(B)], "fid_best": v})
    trials = M.prepare(df, "fid")
    got = Bu.budget_curves(trials, n_resamples=300, budgets=[77]).sort_values("k")
    np.testing.assert_allclose(got["expected_min"], Bu.expected_min_curve(v), rtol=1e-12)
    ks = Bu.band_ks(B, [77])
    assert 77 in ks and B in ks and 1 in ks and len(ks) < B
    full = Bu._bootstrap_curves(Bu.search_values(trials)[("d", "ns")], 300, Bu.cell_rng(0, "d", "ns"))
    lo, hi = Bu._interval(full, Bu.CONFIDENCE)
    on = got["k"].isin(ks).to_numpy()
    np.testing.assert_array_equal(got["band_low"].to_numpy()[on], lo[ks - 1])
    np.testing.assert_array_equal(got["band_high"].to_numpy()[on], hi[ks - 1])
    assert got["band_low"][~on].isna().all()


def test_min_weights_are_a_distribution():
    for B in (1, 2, 7, 50, 400):
        for k in {1, min(2, B), B // 2 or 1, B}:
            w = Bu.min_weights(B, k)
            assert w.sum() == pytest.approx(1.0, abs=1e-9) and (w >= 0).all()


def test_prob_best_of_k_equals_brute_force():
    a, b = [3.0, 1.0, np.inf, 4.0, 2.0], [2.0, 5.0, 2.0, np.inf]
    for k in (1, 2, 3, 4):
        pairs = [(min(x), min(y)) for x in itertools.combinations(a, k) for y in itertools.combinations(b, k)]
        brute = np.mean([(p < q) + 0.5 * (p == q) for p, q in pairs])
        assert Bu.prob_best_of_k(a, b, k) == pytest.approx(brute, abs=1e-12)


def test_budget_permutation_test_is_calibrated_where_the_bootstrap_is_not():
    """At k = B the statistic is the difference of minima: the permutation p-value is uniform under the
    null (the reason verdicts do not use the bootstrap interval, which rejects ~15% here)."""
    rng = np.random.default_rng(0)
    n = 300
    se = math.sqrt(0.05 * 0.95 / n)
    rejections = sum(Bu.permutation_test_min(rng.normal(size=8), rng.normal(size=8), 8, 400, rng)[1] < 0.05
                     for _ in range(n))
    assert rejections / n <= 0.05 + 3 * se
    boot = 0  # "the 95% bootstrap interval of min(a) - min(b) excludes 0"
    for _ in range(n):
        a, b = rng.normal(size=8), rng.normal(size=8)
        d = a[rng.integers(0, 8, (500, 8))].min(1) - b[rng.integers(0, 8, (500, 8))].min(1)
        lo, hi = np.percentile(d, [2.5, 97.5])
        boot += lo > 0 or hi < 0
    assert boot / n > 0.05 + 3 * se


def test_budget_min_p_is_the_p_of_separated_cells():
    """min_p: the p the same relabellings give perfectly separated cells; it matches the exact
    permutation minimum 2/C(2n, n) (plus the Monte Carlo floor), and no data gets below it."""
    for n, k in ((3, 1), (3, 3), (4, 2), (5, 5)):
        t, p, min_p = Bu.permutation_test_min(np.arange(n), np.arange(n, 2 * n), k, 20_000, np.random.default_rng(1))
        assert p == min_p == Bu.permutation_min_p(n, n, k, 20_000, np.random.default_rng(1))
        exact = 2 / math.comb(2 * n, n)
        assert min_p == pytest.approx(exact, abs=4 * math.sqrt(exact / 20_000) + 1 / 20_001)
    rng = np.random.default_rng(2)
    for _ in range(20):
        a, b = rng.normal(size=3), rng.normal(size=4)
        a[0] = b[0] = np.inf  # ties at the worst value
        _, p, min_p = Bu.permutation_test_min(a, b, 2, 5000, rng)
        assert p >= min_p - 3 * math.sqrt(min_p / 5000)


# ---- seeds statistics ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, m", [(3, 3), (5, 5), (3, 5), (2, 8)])
def test_mann_whitney_min_p_is_the_closed_form(n, m):
    """Exact two-sided Mann-Whitney: the smallest p is 2 / C(n + m, n) (0.1 for 3 vs 3)."""
    assert S.mw_min_p(n, m) == pytest.approx(2 / math.comb(n + m, n), rel=1e-12)
    assert S.mw_min_p(3, 3) == pytest.approx(0.1)
    rng = np.random.default_rng(n * 10 + m)
    for _ in range(30):  # no sample of these sizes goes below it, ties (diverged seeds) included
        x, y = np.round(rng.normal(size=n), 0), np.round(rng.normal(size=m), 0)
        x[rng.random(n) < 0.3] = np.inf
        method = S.mw_method(n, m, ties=len(np.unique(np.r_[x, y])) < n + m)
        assert S.mannwhitney(x, y, method).pvalue >= S.mw_min_p(n, m, method) - 1e-12
    # scipy's "auto" would give tied 3 vs 3 the normal approximation, p = 0.047 < 0.1: not ours
    assert stats.mannwhitneyu([0, 0, 0], [1, 1, 1]).pvalue < 0.05
    assert S.mannwhitney([0, 0, 0], [1, 1, 1], S.mw_method(3, 3, ties=True)).pvalue == pytest.approx(0.1)


def test_seeds_needed_is_the_first_n_that_reaches_alpha_over_m():
    for alpha, m in ((0.05, 1), (0.05, 2), (0.05, 18), (0.01, 40), (0.05, 500)):
        n = S.seeds_needed(alpha, m)
        assert S.mw_min_p(n, n) <= alpha / m
        assert all(S.mw_min_p(j, j) > alpha / m for j in range(2, n))
    assert S.seeds_needed(0.05, 1) == 4  # 2/C(8, 4) = 0.029; 3 seeds: 0.1
    assert S.seeds_needed(0.05, 18) == 6  # 2/C(12, 6) = 0.0022 <= 0.0028



def test_prob_improvement_equals_pair_counting():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = np.round(rng.normal(size=rng.integers(1, 12)), 1)
        y = np.round(rng.normal(size=rng.integers(1, 12)), 1)
        x[rng.random(len(x)) < 0.2] = np.inf
        y[rng.random(len(y)) < 0.2] = np.inf
        brute = np.mean([(xi < yj) + 0.5 * (xi == yj) for xi in x for yj in y])
        assert S.prob_improvement_u(x, y) == pytest.approx(brute, abs=1e-12)
        assert float(S.prob_improvement(x, y)) == pytest.approx(brute, abs=1e-12)


def test_iqm_is_the_mean_of_the_middle_half():
    assert S.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert S.iqm(np.array([1.0, 2, 3, 4, 100])) == pytest.approx(3.0)  # 25% of 5 -> 1 trimmed each side
    assert S.iqm(np.array([1.0, 2, 3, np.inf, np.inf, np.inf])) == np.inf  # half diverged: the IQM is the worst


def test_seed_summary_intervals_cover_and_handle_diverged():
    x = pd.DataFrame({"dataset": "d", "loss": "a", "phase": "seeds", "config_id": 0, "seed": range(10),
                      "status": ["ok"] * 7 + ["diverged"] * 3, "fid": [10.0, 11, 12, 13, 14, 15, 16, 0, 0, 0]})
    s = S.seed_summary(M.prepare(x), n_resamples=500).iloc[0]
    assert s["median"] == pytest.approx(14.5)  # 3 diverged are the 3 worst: median of 10..16, inf, inf, inf
    assert s["median_low"] <= s["median"] <= s["median_high"]
    assert s["iqm_high"] == np.inf  # some resamples have > 25% diverged


@pytest.mark.parametrize("p, adjusted", [
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
    # by hand (m = 5): sorted 0.001 0.008 0.039 0.041 0.042 times 5 4 3 2 1, then running max
    ([0.039, 0.001, 0.042, 0.008, 0.041], [0.117, 0.005, 0.117, 0.032, 0.117]),
    ([0.5, 0.9], [1.0, 1.0]),
    ([0.02, np.nan, 0.01], [0.02, np.nan, 0.02]),
])
def test_holm_known_tables(p, adjusted):
    np.testing.assert_allclose(V.holm(p), adjusted, rtol=1e-12)


def test_critical_difference_matches_demsar_table():
    # Demsar 2006, Table 5(a): q_0.05 for k = 2..10
    q = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, qk in zip(range(2, 11), q):
        assert R.critical_difference(k, 6) == pytest.approx(qk * math.sqrt(k * (k + 1) / 36), abs=2e-3)
    # Nemenyi p-values from scikit-posthocs agree with the CD rule
    rng = np.random.default_rng(3)
    vals = pd.DataFrame(rng.normal(size=(12, 5)) + np.arange(5) * 0.6, columns=list("abcde"))
    fr = R.friedman_nemenyi(vals)
    assert fr.ok and fr.p_value < 0.05
    for i, j in itertools.combinations(fr.losses, 2):
        far = abs(fr.mean_ranks[i] - fr.mean_ranks[j]) > fr.cd
        assert far == (fr.nemenyi.loc[i, j] < 0.05)
    assert fr.statistic == pytest.approx(stats.friedmanchisquare(*[vals.rank(axis=1)[c] for c in vals]).statistic)


def brute_signed_rank_p(d) -> float:
    """Two-sided signed-rank p by enumerating every sign flip of the nonzero differences (midranks)."""
    d = np.asarray(d, float)
    d = d[d != 0]
    r = stats.rankdata(np.abs(d))
    obs = r[d > 0].sum()
    flips = np.array([r[np.array(s, bool)].sum() for s in itertools.product((0, 1), repeat=len(d))])
    tol = 1e-9
    return min(1.0, 2 * min(np.mean(flips <= obs + tol), np.mean(flips >= obs - tol)))


def test_wilcoxon_against_the_baseline_equals_sign_flip_enumeration():
    rng = np.random.default_rng(4)
    datasets = [f"d{i}" for i in range(6)]
    vals = pd.DataFrame(rng.normal(size=(6, 4)), index=datasets, columns=["ns", "a", "b", "c"])
    vals["a"] = vals["ns"] - 1 - rng.random(6)  # lower (better) on all six datasets
    vals["c"] = vals["ns"] + np.r_[1.0, 1.0, -1.0, 2.0, 0.0, 3.0]  # ties in |d| and a zero
    vals.loc["d2", ["ns", "b"]] = np.inf  # both diverged: a zero difference
    w = R.wilcoxon_tests(vals, "ns")
    assert w.ok and list(w.table["loss"]) == ["a", "b", "c"]
    t = w.table.set_index("loss")
    for loss in ("a", "b", "c"):
        d = R.differences(vals[loss].to_numpy(), vals["ns"].to_numpy())
        assert t.loc[loss, "p_value"] == pytest.approx(brute_signed_rank_p(d), abs=1e-12), loss
        assert t.loc[loss, "min_p"] == pytest.approx(2 / 2 ** 6)
    assert t.loc["a", "better_on"] == 6 and t.loc["a", "p_value"] == pytest.approx(2 / 64)
    np.testing.assert_allclose(t["p_adjusted"], V.holm(t["p_value"]))  # Holm over the k - 1 comparisons
    assert t.loc["a", "verdict"] == "no-difference"  # 3 x 0.031 > 0.05: the family costs power
    one = R.wilcoxon_tests(vals[["ns", "a"]], "ns").table.iloc[0]
    assert one["verdict"] == "better" and one["p_adjusted"] == pytest.approx(2 / 64)
    worse = R.wilcoxon_tests(pd.DataFrame({"ns": vals["a"], "a": vals["ns"]}), "ns").table.iloc[0]
    assert worse["verdict"] == "worse"
    # the diagram's matrix: Holm over all 6 pairs, symmetric
    allp = R.pairwise_wilcoxon(vals, list(itertools.combinations(vals.columns, 2)))
    assert len(allp) == 6
    for r in allp.itertuples():
        assert w.matrix.loc[r.loss, r.baseline] == w.matrix.loc[r.baseline, r.loss] == pytest.approx(r.p_adjusted)


def test_wilcoxon_with_three_datasets_is_inconclusive():
    vals = pd.DataFrame({"ns": [3.0, 4.0, 5.0], "a": [1.0, 1.0, 1.0], "b": [9.0, 8.0, 7.0]}, index=["x", "y", "z"])
    t = R.wilcoxon_tests(vals, "ns").table
    assert (t["min_p"] == 0.25).all() and (t["p_value"] == 0.25).all()  # 2/2^3: a better on all three
    assert (t["verdict"] == "inconclusive").all() and t["p_adjusted"].isna().all()
    assert R.datasets_needed(0.05) == 6 and R.wilcoxon_min_p(5) == pytest.approx(0.0625)
    assert not R.wilcoxon_tests(vals.iloc[:1], "ns").ok


# ---- planted effects, calibration, diverged trials -------------------------------------------------

def test_planted_effects_are_found():
    rng = np.random.default_rng(11)
    # budget verdicts compare minima, which only a few configs decide: they need a longer search
    df = synth(rng, losses={"ns": 0.0, "good": -6.0, "bad": 6.0, "same": 0.0}, configs=20)
    v = decided(df)
    for kind in ("seeds", "budget"):
        got = v[v["kind"] == kind].groupby("loss")["verdict"].agg(set)
        assert got["good"] == {"better"} and got["bad"] == {"worse"}, (kind, got)
        assert got["same"] == {"no-difference"}
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300)
    assert rep.headline.startswith("By fid: good is better than ns on all 3 datasets")
    assert "bad is worse" in rep.headline


def test_three_seeds_cannot_decide_a_huge_effect_and_twenty_can():
    """A planted effect of 6 noise SDs: with 3 seeds per loss the seeds verdict is inconclusive (3 vs
    3 cannot go below p = 0.1) and the headline says so; with 20 seeds it is better/worse."""
    rng = np.random.default_rng(8)
    df = synth(rng, datasets=("ring8",), losses={"ns": 0.0, "good": -6.0, "bad": 6.0}, configs=3, seeds=3)
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300)
    v = rep.verdicts
    assert set(v["verdict"]) == {"inconclusive"}  # the budget tests (3 configs) too
    s = v[v["kind"] == "seeds"]
    np.testing.assert_allclose(s[["min_p", "p_value"]].to_numpy(float), 0.1, rtol=1e-12)
    assert s["p_adjusted"].isna().all()  # not in the Holm family: it can never be rejected
    assert rep.family_size == 4 and rep.seeds_needed == S.seeds_needed(0.05, 4) == 5  # 2/C(10, 5) = 0.0079 <= 0.05/4
    assert rep.headline == ("By fid: no verdict on ring8: 3 seeds per loss cannot show a difference at alpha = 0.05 "
                            "(the smallest attainable p is 0.1); use --seeds >= 5.")
    assert "No loss beats" not in rep.headline and "no loss beats" not in rep.headline
    assert any(n.startswith("Seeds needed:") and "from n = 5" in n for n in rep.notes)
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300, metric_label="w1 on ring8")
    assert rep.headline.startswith("By w1 on ring8: no verdict on ring8")
    df = synth(np.random.default_rng(8), datasets=("ring8",), losses={"ns": 0.0, "good": -6.0, "bad": 6.0},
               configs=20, seeds=20)
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300)
    got = rep.verdicts.set_index(["kind", "loss"])["verdict"]
    assert got[("seeds", "good")] == "better" and got[("seeds", "bad")] == "worse"
    assert rep.headline == "By fid: good is better than ns on ring8 (bad is worse on ring8)."


def test_headline_names_the_inconclusive_losses_when_only_some_are():
    rng = np.random.default_rng(13)
    df = synth(rng, datasets=("d0", "d1"), losses={"ns": 0.0, "good": -6.0, "same": 0.0}, configs=20, seeds=20)
    few = (df["dataset"] == "d1") & (df.groupby(["dataset", "loss", "phase"]).cumcount() >= 3)
    df = df[~few]  # 3 seeds and 3 configs per loss on d1: neither verdict is possible there
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300)
    p = V.primary(rep.verdicts).set_index(["dataset", "loss"])["verdict"]
    assert p[("d0", "good")] == "better" and p[("d1", "good")] == "inconclusive"
    assert p[("d0", "same")] == "no-difference"
    h = rep.headline
    assert h.startswith("By fid: same does not consistently beat ns across the 2 datasets"), h
    assert "no verdict on good (1/2): 3 seeds per loss cannot show a difference at alpha = 0.05" in h, h
    assert "no loss" not in h.lower()


def test_budget_verdict_decides_where_the_seeds_cannot():
    """3 seeds per loss (inconclusive) but 20 configurations: the dataset's verdict is the budget's."""
    rng = np.random.default_rng(15)
    df = synth(rng, datasets=("d0",), losses={"ns": 0.0, "good": -6.0}, configs=20, seeds=3)
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300)
    got = rep.verdicts.set_index("kind")["verdict"]
    assert got["seeds"] == "inconclusive" and got["budget"] == "better"
    assert V.primary(rep.verdicts)["kind"].tolist() == ["budget"]
    assert rep.headline == "By fid: good is better than ns on d0."


def test_headline_says_when_no_difference_could_not_survive_holm():
    """5 seeds against 5 can reach p = 0.0079 < alpha (so not inconclusive) but not alpha/m over 10
    comparisons: "no loss beats ns" comes with that caveat and the seeds that would lift it."""
    rng = np.random.default_rng(14)
    df = synth(rng, datasets=("d0",), losses={"ns": 0.0, "good": -6.0, "a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0},
               configs=5, seeds=5)
    rep = A.analyse(M.prepare(df), "ns", n_resamples=200)
    s = rep.verdicts[rep.verdicts["kind"] == "seeds"].set_index("loss")
    assert (s["verdict"] == "no-difference").all() and s.loc["good", "p_value"] == pytest.approx(2 / 252)
    assert rep.family_size == 10 and rep.seeds_needed == 6
    assert rep.headline == ("By fid: no loss beats ns on d0; but 5 seeds per loss are too few for a difference to pass "
                            "Holm over 10 comparisons on its own (smallest p 0.0079 > alpha/m = 0.005); use --seeds >= 6.")


def test_headline_when_no_loss_is_consistently_better():
    rng = np.random.default_rng(12)
    df = synth(rng, losses={"ns": 0.0, "good": 0.0, "bad": 6.0})
    df.loc[(df["loss"] == "good") & (df["dataset"] == "d0"), "fid"] -= 6  # better on one dataset only
    rep = A.analyse(M.prepare(df), "ns", n_resamples=300)
    assert rep.headline.startswith("By fid: no loss consistently beats ns across the 3 datasets")
    assert "good (1/3)" in rep.headline and "worse on all 3 datasets: bad" in rep.headline


def test_null_studies_are_calibrated():
    """Studies where every loss shares one distribution: the share with any false better/worse verdict
    stays within alpha + 3 binomial SEs. 200 studies with 20 seeds (every comparison powered: one Holm
    family of seeds and budget verdicts), and 100 with 3 seeds, whose seeds comparisons are
    inconclusive and leave the family (Tarone): the budget verdicts alone must stay calibrated."""
    rng = np.random.default_rng(2024)
    alpha = 0.05
    for n, seeds, datasets in ((200, 20, ("d0", "d1", "d2")), (100, 3, ("d0", "d1"))):
        false = 0
        for i in range(n):
            v = decided(synth(rng, datasets=datasets, seeds=seeds, diverge=0.1), alpha=alpha, seed=i, with_ci=False)
            assert set(v["kind"]) == {"seeds", "budget"}
            assert (v.loc[v["kind"] == "budget", "verdict"] != "inconclusive").all()
            assert (v.loc[v["kind"] == "seeds", "verdict"] == "inconclusive").all() == (seeds == 3)
            false += v["verdict"].isin(["better", "worse"]).any()
        assert false / n <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / n), (seeds, false)


def test_diverged_trials_count_as_worst_and_are_shown():
    rng = np.random.default_rng(7)
    df = synth(rng, datasets=("d0",), losses={"ns": 0.0, "fragile": -3.0}, configs=10, seeds=12)
    # fragile is better whenever it trains, but most of its seeds and configs diverge
    frag = df["loss"] == "fragile"
    for phase, n_div in (("seeds", 10), ("search", 8)):
        idx = df.index[frag & (df["phase"] == phase)][:n_div]
        df.loc[idx, "status"] = "diverged"
        df.loc[idx, "fid"] = np.nan
    t = M.prepare(df)
    assert (t.loc[t["status"] == "diverged", "value"] == np.inf).all()
    # dropping diverged trials would make fragile "better"; counting them as worst does not
    dropped = decided(df[df["status"] == "ok"])
    assert (dropped.loc[dropped["kind"] == "seeds", "verdict"] == "better").all()
    v = decided(df)
    assert (v.loc[v["kind"] == "seeds", "verdict"] == "worse").all()
    rep = A.analyse(t, "ns", n_resamples=300)
    summ = A.summary_table(rep).set_index("loss")
    assert summ.loc["fragile", "seeds_diverged"] == 10 and summ.loc["fragile", "search_diverged"] == 8
    curve = rep.curves[rep.curves["loss"] == "fragile"].sort_values("k")["expected_min"].to_numpy()
    assert np.isinf(curve[:8]).all() and np.isfinite(curve[8:]).all()  # inf exactly while k <= #diverged
    from reports import leaderboard

    md = leaderboard.render(rep, ["x"], [])
    assert "8 diverged" in md


def test_report_does_not_depend_on_row_order():
    """Trials finish in any order; the same table shuffled gives the same numbers (seeded bootstraps
    and permutation tests included)."""
    rng = np.random.default_rng(31)
    df = synth(rng, datasets=("d0", "d1"), losses={"ns": 0.0, "a": -1.0, "b": 0.5}, configs=6, seeds=6)
    reps = [A.analyse(M.prepare(t.reset_index(drop=True)), "ns", n_resamples=200)
            for t in (df, df.sample(frac=1.0, random_state=3))]
    for table in (A.summary_table, A.curves_table):
        pd.testing.assert_frame_equal(table(reps[0]), table(reps[1]))
    cols = ["dataset", "loss", "kind", "budget", "p_value", "p_adjusted", "ci_low", "ci_high", "verdict"]
    key = ["dataset", "loss", "kind", "budget"]
    v0, v1 = (r.verdicts[cols].sort_values(key).reset_index(drop=True) for r in reps)
    pd.testing.assert_frame_equal(v0, v1)
    assert reps[0].headline == reps[1].headline


def test_higher_is_better_metric_and_unknown_metric():
    rng = np.random.default_rng(9)
    df = synth(rng, losses={"ns": 0.0, "sharp": 0.0, "blurry": 0.0})
    df["precision"] = np.clip(0.5 + rng.normal(0, 0.02, len(df)), 0, 1)
    df.loc[df["loss"] == "sharp", "precision"] += 0.2
    df.loc[df["loss"] == "blurry", "precision"] -= 0.2
    v = decided(df, metric="precision")
    got = v[v["kind"] == "seeds"].groupby("loss")["verdict"].agg(set)
    assert got["sharp"] == {"better"} and got["blurry"] == {"worse"}
    rep = A.analyse(M.prepare(df, "precision"), "ns", metric="precision", n_resamples=300)
    s = A.summary_table(rep).set_index(["dataset", "loss"])
    assert 0.65 < s.loc[("d0", "sharp"), "median"] < 0.75  # shown in the metric's own units
    assert (A.curves_table(rep)["expected_min"] > 0).all()  # best = max of precision, positive
    df["my_score"] = df["fid"]
    with pytest.raises(UsageError, match="no registered metric produces 'my_score', so which way is better is unknown"):
        M.check(df, "my_score")  # bench report refuses it: a verdict in the wrong direction is worse than none
    rep = A.analyse(M.prepare(df, "my_score"), "ns", metric="my_score", n_resamples=300)  # the API says what it assumed
    assert any("assumed that lower is better" in n for n in rep.notes)
    # a key that describes the measurement (how many modes there are) is not something to rank by
    df["modes_total"] = 8
    with pytest.raises(UsageError, match="modes_total describes the measurement.*rank by modes, hq_fraction, mode_kl"):
        M.check(df, "modes_total")


def test_fid_uses_best_over_checkpoints_when_present():
    df = pd.DataFrame({"dataset": "d", "loss": ["ns", "a"], "phase": "search", "config_id": 0, "seed": [0, 1],
                       "status": "ok", "fid": [50.0, 40.0], "fid_best": [30.0, np.nan]})
    t = M.prepare(df)
    assert t["value"].tolist() == [30.0, 40.0] and t["value_source"].tolist() == ["fid_best", "fid"]


# ---- the CLI on real files -------------------------------------------------------------------------

def text_files(d: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in d.iterdir()
            if p.suffix in (".html", ".md", ".csv", ".json")}


def test_cli_csv_end_to_end(tmp_path):
    rng = np.random.default_rng(21)
    df = synth(rng, losses={"ns": 0.0, "wgan-gp": -6.0, "mm": 6.0, EVIL: 0.0},
               extra={"precision": rng.random(4 * 3 * 18), "recall": rng.random(4 * 3 * 18)})
    df.loc[(df["phase"] == "search") & (df["config_id"] == 3), ["status", "fid"]] = ["diverged", np.nan]
    csv = tmp_path / "lab" / "table.csv"
    csv.parent.mkdir()
    df.to_csv(csv, index=False)
    r = run_bench("report", csv, "--json", "--resamples", "300", "--budget", "4")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one JSON object
    assert doc["format"] == "gan-bench/report/1" and doc["inputs"] == ["table.csv"]
    assert doc["headline"] == "By fid: wgan-gp is better than ns on all 3 datasets (mm is worse on all 3 datasets)."
    vs = doc["verdicts"]
    assert vs and all(VERDICT_KEYS <= set(v) for v in vs)
    assert {v["kind"] for v in vs} == {"seeds", "budget"} and {v["budget"] for v in vs if v["kind"] == "budget"} == {4, 8}
    assert {(v["loss"], v["verdict"]) for v in vs if v["kind"] == "seeds"} >= {("wgan-gp", "better"), ("mm", "worse")}
    assert doc["seeds_needed"] == S.seeds_needed(0.05, doc["family_size"]) and doc["metric_label"] == "fid"
    assert doc["family_size"] == len(vs) and all(v["min_p"] <= 0.05 for v in vs)  # 10 seeds, 8 configs: powered
    w = doc["wilcoxon"]
    assert w["ok"] and {c["loss"] for c in w["comparisons"]} == {"wgan-gp", "mm", EVIL}
    assert all(c["min_p"] == 0.25 and c["verdict"] == "inconclusive" for c in w["comparisons"])  # 3 datasets
    out = tmp_path / "lab" / "report"  # default: next to the results file
    assert set(pd.read_csv(out / "wilcoxon.csv")["verdict"]) == {"inconclusive"}
    assert "min_p" in pd.read_csv(out / "verdicts.csv").columns
    for f in ("index.html", "leaderboard.md", "verdicts.csv", "summary.csv", "budget.csv", "report.json", "wilcoxon.csv",
              "distribution.png", "budget.png", "prob_improvement.png", "precision_recall.png", "critical_difference.png"):
        assert (out / f).is_file(), f
    assert json.loads((out / "report.json").read_text()) == doc
    texts = text_files(out)
    for name, text in texts.items():
        assert str(tmp_path) not in text and "/tmp" not in text, name
    html = texts["index.html"]
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # only the page's own image check
    assert EVIL not in texts["leaderboard.md"]
    verd = pd.read_csv(out / "verdicts.csv")
    assert set(verd["verdict"]) <= {"better", "worse", "no-difference"} and EVIL in set(verd["loss"])
    assert "| wgan-gp | 10 |" in texts["leaderboard.md"] and "| 1 diverged |" in texts["leaderboard.md"]
    # the PNGs are real images
    from PIL import Image

    for p in out.glob("*.png"):
        with Image.open(p) as im:
            assert im.size[0] > 200 and im.size[1] > 100


def test_cli_ranks_by_the_primary_metric_by_default_and_names_it(tmp_path):
    """A table whose primary (w1) and FID disagree: the default report follows w1 and says so in the
    headline, title and tables; --metric fid still ranks by FID (here the opposite verdict)."""
    rng = np.random.default_rng(5)
    df = synth(rng, datasets=("ring8",), losses={"ns": 0.0, "wgan-gp": 0.0}, seeds=10)
    w1 = np.where(df["phase"] == "search", 0.5 + rng.gamma(2.0, 0.1, len(df)), 0.3 + rng.normal(0, 0.01, len(df)))
    better = (df["loss"] == "wgan-gp").to_numpy()
    df["w1"] = w1 - 0.1 * better  # wgan-gp covers the modes: lower W1 ...
    df["fid"] = df["fid"] + 3.0 * better  # ... but its moments are further off: higher FID
    df["fid_best"], df["primary_metric"] = df["fid"], "w1"
    df["primary"], df["primary_best"] = df["w1"] + 0.05, df["w1"]
    csv = tmp_path / "t.csv"
    df.to_csv(csv, index=False)
    doc = json.loads(run_bench("report", csv, "--json", "--resamples", "300").stdout)
    assert doc["metric"] == "primary" and doc["metric_name"] == "w1"
    assert doc["headline"] == "By the primary metric (w1 on ring8): wgan-gp is better than ns on ring8."
    seeds = [v for v in doc["verdicts"] if v["kind"] == "seeds"]
    assert [(v["loss"], v["verdict"]) for v in seeds] == [("wgan-gp", "better")]
    md = (tmp_path / "report" / "leaderboard.md").read_text()
    assert md.startswith("# gan-bench report: w1 against ns") and "median w1" in md and "(primary\\_best)" in md
    s = pd.read_csv(tmp_path / "report" / "summary.csv")
    med = s[s["loss"] == "wgan-gp"]["median"].iloc[0]
    assert 0.15 < med < 0.25  # primary_best in W1's own units, not FID's
    doc = json.loads(run_bench("report", csv, "--json", "--resamples", "300", "--metric", "fid", "--out",
                               tmp_path / "by-fid").stdout)
    assert doc["metric_name"] == "fid" and doc["headline"].startswith("By fid: ")
    assert [(v["loss"], v["verdict"]) for v in doc["verdicts"] if v["kind"] == "seeds"] == [("wgan-gp", "worse")]


@pytest.fixture(scope="module")
def study_with_checkpoint(tmp_path_factory):
    """A study directory as `bench run` writes it (results.parquet, trials/...) on ring8 (2-D points) and
    digits (images): each baseline's best trial has a real checkpoint from `bench train`, hinge names a
    checkpoint that does not exist; and its report."""
    import os
    import subprocess

    from tests.conftest import BENCH

    root = tmp_path_factory.mktemp("study")
    study = root / "ring8-demo"
    cells = (("ring8", "mlp"), ("digits", "infogan"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GAN_BENCH_CACHE": str(root / "cache")}
    procs = [subprocess.Popen([*BENCH, "train", "--dataset", dataset, "--arch", arch, "--steps", "2", "--ckpt-every",
                               "2", "--batch-size", "16", "--out", str(study / "trials" / f"{dataset}-ns-{arch}-search-c0")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for dataset, arch in cells]  # both at once: two cores
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    frames = []
    for i, (dataset, arch) in enumerate(cells):
        run_dir = study / "trials" / f"{dataset}-ns-{arch}-search-c0"
        ck = sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1].relative_to(study)
        df = synth(np.random.default_rng(i), datasets=(dataset,), losses={"ns": 0.0, "hinge": 0.0, "wgan-gp": -5.0},
                   configs=6, seeds=5, diverge=0.1)
        df.insert(3, "arch", arch)
        df["checkpoint_best"] = None
        best_ns = df[(df["loss"] == "ns") & (df["status"] == "ok")]["fid"].idxmin()
        df.loc[best_ns, "checkpoint_best"] = str(ck)
        df.loc[df["loss"] == "hinge", "checkpoint_best"] = "trials/missing/checkpoints/step_00000020.pt"
        frames.append(df)
    pd.concat(frames, ignore_index=True).to_parquet(study / "results.parquet", index=False)
    r = run_bench("report", study, "--resamples", "300")
    return study, r


def test_cli_study_dir_parquet_with_sample_grid(study_with_checkpoint):
    study, r = study_with_checkpoint
    assert r.returncode == 0, r.stderr
    assert "report:" in r.stdout and "Traceback" not in r.stderr
    out = study / "report"  # default: <study>/report
    grids = sorted(out.glob("samples-*.png"))
    assert [g.name for g in grids] == ["samples-00-digits.png", "samples-01-ring8.png"]
    assert all(g.stat().st_size > 5000 for g in grids)
    doc = json.loads((out / "report.json").read_text())
    assert doc["inputs"] == ["ring8-demo"]
    assert any("hinge: no sample grid (checkpoint trials/missing/checkpoints/step_00000020.pt unreadable" in n
               for n in doc["notes"])
    assert any("Friedman/Nemenyi across datasets not run" in n for n in doc["notes"])  # two datasets only
    for name, text in text_files(out).items():
        assert str(study.parent) not in text, name
    assert (out / "index.html").stat().st_mode & 0o044  # readable by a web server


def test_cli_writes_again_into_its_own_report_and_removes_stale_files(tmp_path, capsys):
    """In process (the console script's main(); the subprocess runs are above)."""
    from bench.cli import main

    df = synth(np.random.default_rng(0), datasets=("d0",), configs=4, seeds=4)
    f = tmp_path / "t.parquet"
    df.to_parquet(f)
    out = tmp_path / "rep"
    assert main(["report", str(f), "--out", str(out), "--resamples", "200", "--no-samples"]) == 0
    (out / "index.png").write_bytes(b"x")  # a file of the user's is kept; a stale file of ours is removed
    prev = json.loads((out / "report.json").read_text())
    prev["files"].append("old_plot.png")
    (out / "report.json").write_text(json.dumps(prev))
    (out / "old_plot.png").write_bytes(b"x")
    capsys.readouterr()
    assert main(["report", str(f), "--out", str(out), "--resamples", "200", "--no-samples", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"] == json.loads((out / "report.json").read_text())["files"]
    assert not (out / "old_plot.png").exists() and (out / "index.png").exists()


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    return buf.getvalue()


BAD = {
    "missing path": (lambda d: [str(d / "nope")], "no such study directory"),
    "text file": (lambda d: [str(d / "notes.txt")], "not a results table"),
    "png file": (lambda d: [str(d / "plot.png")], "not a results table"),
    "png named parquet": (lambda d: [str(d / "plot.parquet")], "cannot read"),
    "dir without results": (lambda d: [str(d / "empty_dir")], "not a study directory"),
    "missing columns": (lambda d: [str(d / "few.csv")], "lack required column(s): phase, config_id, seed, status"),
    "unknown baseline": (lambda d: [str(d / "good.csv"), "--baseline", "began"], "unknown baseline 'began'"),
    "alpha zero": (lambda d: [str(d / "good.csv"), "--alpha", "0"], "--alpha must be in (0, 1)"),
    "alpha above one": (lambda d: [str(d / "good.csv"), "--alpha", "1.5"], "--alpha must be in (0, 1)"),
    "metric absent": (lambda d: [str(d / "good.csv"), "--metric", "kid"], "lack required column(s): kid"),
    "out holds a study": (lambda d: [str(d / "good.csv"), "--out", str(d / "occupied")], "holds other files"),
    "out is a file": (lambda d: [str(d / "good.csv"), "--out", str(d / "notes.txt")], "is a file"),
    "bad phase": (lambda d: [str(d / "badphase.csv")], "unknown value(s) 'warmup'"),
    "duplicate inputs": (lambda d: [str(d / "good.csv"), str(d / "good.csv")], "same trial more than once"),
    "bad budget": (lambda d: [str(d / "good.csv"), "--budget", "0"], "--budget values must be positive"),
}


@pytest.fixture
def bad_inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "notes.txt").write_text("hello\n")
    (d / "plot.png").write_bytes(_png_bytes())
    (d / "plot.parquet").write_bytes(_png_bytes())
    (d / "empty_dir").mkdir()
    pd.DataFrame({"dataset": ["d"], "loss": ["ns"], "fid": [1.0]}).to_csv(d / "few.csv", index=False)
    good = synth(np.random.default_rng(0), datasets=("d0",), configs=3, seeds=3)
    good.to_csv(d / "good.csv", index=False)
    good.assign(phase="warmup").to_csv(d / "badphase.csv", index=False)
    (d / "occupied").mkdir()
    (d / "occupied" / "results.parquet").write_bytes(b"study data")
    return d


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_with_one_line(case, bad_inputs, capsys):
    """In process (the same main() as the console script; subprocess cases below)."""
    from bench.cli import main

    args, message = BAD[case]
    before = tree_snapshot(bad_inputs)
    try:
        rc = main(["report", *args(bad_inputs)])
    except SystemExit as e:  # argparse errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert tree_snapshot(bad_inputs) == before  # nothing written


def test_bad_input_subprocess(bad_inputs):
    before = tree_snapshot(bad_inputs)
    for case in ("png file",):
        args, message = BAD[case]
        r = run_bench("report", *args(bad_inputs))
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert tree_snapshot(bad_inputs) == before


# ---- the page in a real browser --------------------------------------------------------------------

SETUP_CHROMIUM = Path(__file__).with_name("setup_chromium.sh")


def find_chromium() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def chromium():
    import subprocess

    path = find_chromium()
    if path is None:
        r = subprocess.run(["sh", str(SETUP_CHROMIUM)], capture_output=True, text=True, timeout=900)
        path = find_chromium()
        if path is None:
            pytest.skip("Debian's chromium is not installed and tests/setup_chromium.sh could not install it: "
                        + (r.stderr.strip().splitlines() or ["no output"])[-1])
    return path


def browse(chromium: str, page: Path, profile: Path, *args: str):
    import subprocess

    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args,
           page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_index_html_in_a_headless_browser(study_with_checkpoint, chromium, tmp_path):
    """index.html from file:// in Debian's chromium: every image decodes, and a screenshot is saved
    next to the report."""
    import re

    from PIL import Image

    study, r = study_with_checkpoint
    assert r.returncode == 0, r.stderr
    out = study / "report"
    page = out / "index.html"
    n_img = page.read_text().count("<img ")
    assert n_img >= 5  # distribution, budget, probability of improvement, two sample grids
    dom = browse(chromium, page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r'<body[^>]*data-images="(\d+)/(\d+)"', dom.stdout)
    assert m, dom.stdout[:2000]
    assert (int(m.group(1)), int(m.group(2))) == (n_img, n_img)
    assert 'data-loaded="0"' not in dom.stdout
    shot = out / "screenshot.png"
    s = browse(chromium, page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,2000")
    assert s.returncode == 0 and shot.is_file(), s.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is None or len(colors) > 50  # text, tables and coloured verdicts, not a blank page
    assert shot.stat().st_size > 20_000


def test_budget_test_of_the_minima_is_exact_against_enumeration():
    """At k = B for cells of B configs each the p-value is the exact permutation p in closed form: the
    fraction of all C(2B, B) relabellings with |T*| >= |T| (ties and diverged trials included), and
    min_p is 2 / C(2B, B)."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    for trial in range(24):
        n = int(rng.integers(2, 6))
        a, b = np.round(rng.normal(size=n), 1), np.round(rng.normal(size=n), 1)
        if trial % 3 == 0:
            a[0] = b[-1] = np.inf
        r = rankdata(np.r_[a, b])
        t = r[:n].min() - r[n:].min()
        hits = total = 0
        for chosen in itertools.combinations(range(2 * n), n):
            mask = np.zeros(2 * n, bool)
            mask[list(chosen)] = True
            hits += abs(r[mask].min() - r[~mask].min()) >= abs(t) - 1e-9 * max(1, abs(t))
            total += 1
        got_t, p, min_p = Bu.permutation_test_min(a, b, n, 1000, rng)
        assert got_t == pytest.approx(t, abs=1e-12) and p == pytest.approx(hits / total, abs=1e-12)
        assert min_p == pytest.approx(2 / math.comb(2 * n, n), abs=1e-12)
    _, p, _ = Bu.permutation_test_min(np.arange(950.0), np.arange(950.0, 1900.0), 950, 10, rng)
    assert 0 <= p < 1e-100  # exact, where relabellings could only say < 1 / (1 + n)
