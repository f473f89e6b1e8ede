"""Writing a report folder: every file atomically (``bench.io``), ``report.json`` last as the marker.

An ``--out`` folder is accepted when it does not exist, is empty, or holds a previous report (its
``report.json`` has this format); anything else is refused before a file is written. Re-writing a
previous report removes the files it listed that this one no longer makes.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import UsageError
from bench.io import file_in_the_way
from bench.io import atomic_write_bytes, atomic_write_text
from reports import html as H
from reports import leaderboard as L
from reports import plots as P
from reports.causes import THRESHOLDS as CAUSE_THRESHOLDS
from reports.causes import trial_curves
from reports.analysis import Report, curves_table, differences_table, summary_table, verdicts_table, wilcoxon_table

FORMAT = "gan-bench/report/1"
MARKER = "report.json"

METHOD = [
    "Protocol: Lucic et al. 2018, 'Are GANs Created Equal? A Large-Scale Study' (arXiv:1711.10337): every loss "
    "gets the same budget of random hyperparameter configurations (search phase); the best configuration of each "
    "is retrained with several seeds (seeds phase).",
    "Budget curves: with the B configurations of a cell sorted, x(1) <= ... <= x(B), the best of k drawn at random "
    "without replacement is x(i) with probability C(B-i, k-1)/C(B, k), so E[best of k] = sum_i x(i) C(B-i, k-1)/C(B, k), "
    "computed exactly. Bands: 95% percentile bootstrap over the cell's configurations. Budget verdicts: two-sided "
    "permutation test of the difference of E[best of k] computed on the pooled ranks (Phipson & Smyth 2010 p-values); "
    "the bootstrap is not used for verdicts because it is unreliable for minima (Bickel & Freedman 1981).",
    "Seeds: median and interquartile mean (IQM, 25% trimmed mean; Agarwal et al. 2021, rliable) with 95% percentile "
    "bootstrap intervals; two-sided Mann-Whitney U test against the baseline; probability of improvement "
    "P(X < Y) + 0.5 P(X = Y) = U/(n_x n_y) with a bootstrap interval resampling both samples independently.",
    "Power: min_p is the smallest p-value a comparison's test can produce at its sample sizes (the same test on "
    "perfectly separated samples; 2/C(n+m, n) for the exact Mann-Whitney test, 0.1 for 3 seeds against 3). A "
    "comparison whose min_p is above alpha is inconclusive: the data could not have shown a difference. 'Seeds "
    "needed' is the smallest number of seeds per loss whose min_p reaches alpha/m, Holm's first threshold over the "
    "report's m comparisons.",
    "Multiplicity: one Holm family for the comparisons in the report that can reach alpha (inconclusive ones can never "
    "be rejected and are left out; which ones depends only on the sample sizes, Tarone 1990); a verdict is "
    "better/worse when the Holm-adjusted p-value is below alpha, else no-difference. 'Consistently better' means "
    "better on every dataset (Lucic et al.).",
    "Across datasets: Friedman test on per-dataset ranks (omnibus); Nemenyi post-hoc test with critical difference "
    "CD = q_alpha sqrt(k(k+1)/(6N)) (Demsar 2006); and, since Nemenyi's verdict on two losses depends on the other "
    "losses in the pool (Benavoli, Corani & Mangili 2016), a two-sided Wilcoxon signed-rank test of each loss against "
    "the baseline over the datasets, Holm over those comparisons (2/2^N is its smallest p: 6 datasets are needed at "
    "alpha = 0.05). The critical-difference diagram joins the losses that Wilcoxon-Holm over all pairs cannot separate.",
    "Diverged, failed and unscored trials are the worst value: +inf for ranks and budget draws; they are counted in "
    "every table and never dropped.",
]


def check_out(out: Path) -> list[str]:
    """Refuse an --out that holds anything but a previous report; return the files it listed."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if (parent := file_in_the_way(out)) is not None:  # a folder below a file could never be made
        raise UsageError(f"--out {out}: {parent} is a file, not a directory")
    if not out.exists() or not any(out.iterdir()):
        return []
    marker = out / MARKER
    try:
        prev = json.loads(marker.read_text(encoding="utf-8"))
        ok = isinstance(prev, dict) and prev.get("format") == FORMAT
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"--out {out} holds other files and no previous report ({MARKER}): "
                         "give a new or empty directory")
    files = prev.get("files", [])
    return [f for f in files if isinstance(f, str) and "/" not in f and "\\" not in f and f not in ("", ".", "..")]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "dataset"


def clean(x: Any) -> Any:
    """JSON-safe: NaN and +-inf become null, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if x is pd.NA or x is pd.NaT:
        return None
    return x


def named(rep: Report, df: pd.DataFrame) -> pd.DataFrame:
    """A table as files show it: the compared column under the factor's name (``trick`` for a
    ``--factor trick`` report; the analysis calls it ``loss`` whatever it holds)."""
    return df if rep.factor == "loss" or "loss" not in df.columns else df.rename(columns={"loss": rep.factor})


def verdict_records(rep: Report) -> list[dict]:
    v = named(rep, verdicts_table(rep))
    recs = []
    for r in v.to_dict("records"):
        r["budget"] = None if r["kind"] == "seeds" or pd.isna(r["budget"]) else int(r["budget"])
        r["n_loss"], r["n_baseline"] = int(r["n_loss"]), int(r["n_baseline"])
        recs.append(r)
    return clean(recs)


def document(rep: Report, inputs: list[str], files: list[str]) -> dict:
    return clean({
        "format": FORMAT, "made_by": "bench report", "inputs": inputs, "metric": rep.metric, "metric_name": rep.name,
        "lower_is_better": rep.sign > 0, "metric_known": rep.metric_known, "baseline": rep.baseline,
        "factor": rep.factor,  # what "losses" and the verdicts' compared column hold (bench report --factor)
        "alpha": rep.alpha, "budgets": rep.budgets, "resamples": rep.n_resamples, "permutations": rep.n_permutations,
        "seed": rep.seed, "datasets": rep.datasets, "losses": rep.losses, "headline": rep.headline,
        "metric_label": rep.metric_label, "notes": rep.notes, "family_size": rep.family_size,
        "seeds_needed": rep.seeds_needed, "configs_needed": rep.configs_needed, "friedman": rep.friedman.to_dict(),
        "wilcoxon": rep.wilcoxon.to_dict(), "verdicts": verdict_records(rep),
        "causes": named(rep, rep.causes).to_dict("records"), "cause_thresholds": CAUSE_THRESHOLDS, "files": files,
    })


def _csv(rep: Report, df: pd.DataFrame) -> str:
    return named(rep, df).to_csv(index=False, float_format="%.6g")


def write(rep: Report, trials: pd.DataFrame, out: Path, inputs: list[str], previous: list[str],
          samples: bool = True) -> dict:
    """Write every file of the report into ``out``; return the report.json document."""
    umask = os.umask(0)
    os.umask(umask)
    written: list[str] = []
    images: list[tuple[str, str]] = []

    def put(name: str, data: bytes | str) -> None:
        (atomic_write_text if isinstance(data, str) else atomic_write_bytes)(out / name, data)
        os.chmod(out / name, 0o666 & ~umask)  # a static site: readable like any new file, not 0600
        written.append(name)

    def figure(name: str, data: bytes | None, caption: str) -> None:
        if data is not None:
            put(name, data)
            images.append((name, caption))

    figure("distribution.png", P.distribution(rep, trials),
           f"{rep.name} per {rep.factor} and dataset (seeds phase where run, else search): box and points.")
    if not rep.curves.empty:
        figure("budget.png", P.budget(rep), f"Expected best {rep.name} against the budget k, 95% bootstrap bands.")
    figure("prob_improvement.png", P.prob_improvement(rep),
           f"Probability of improvement over {rep.baseline} with 95% bootstrap intervals.")
    figure("precision_recall.png", P.precision_recall(rep, trials), "Precision against recall per trial.")
    figure("critical_difference.png", P.critical_difference(rep),
           f"Critical-difference diagram: mean ranks across datasets; bars join {rep.factors} that pairwise Wilcoxon "
           "signed-rank tests (Holm over all pairs) do not separate.")
    if samples and not any(c in trials.columns for c in ("checkpoint_best", "checkpoint")):
        rep.notes.append("No sample grids: the results name no checkpoints (columns checkpoint_best, checkpoint).")
    elif samples:
        from reports.samples import sample_grid

        for i, ds in enumerate(rep.datasets):
            data, notes = sample_grid(rep, trials, ds)
            rep.notes.extend(notes)
            figure(f"samples-{i:02d}-{slug(ds)}.png", data, f"{ds}: samples of each {rep.factor}'s best checkpoint.")

    figure("health.png", P.health(rep, trials),
           f"Scores beside training health per {rep.factor}: D's pairwise accuracy d_auc, the fraction of steps D was "
           "saturated, the smallest generator-gradient norm (every trial a point, bar: median).")
    for i, ds in enumerate(rep.datasets):
        figure(f"health-{i:02d}-{slug(ds)}.png", P.health_curves(rep, ds, trial_curves(trials, ds)),
               f"{ds}: per {rep.factor}, the generator-gradient norm of its best and worst trial, and every trial's mode "
               "coverage per checkpoint (collapsed trials as black crosses, off-data ones dotted).")

    put("summary.csv", _csv(rep, summary_table(rep)))
    if not rep.causes.empty:
        put("causes.csv", _csv(rep, rep.causes.assign(collapsed_trials=rep.causes["collapsed_trials"].map(" ".join))))
    put("verdicts.csv", _csv(rep, verdicts_table(rep)))
    if rep.wilcoxon.ok:
        put("wilcoxon.csv", _csv(rep, wilcoxon_table(rep)))
    if not rep.curves.empty:
        b = curves_table(rep)
        d = differences_table(rep)
        if not d.empty:
            b = b.merge(d, on=["dataset", "loss", "k"], how="left")
        put("budget.csv", _csv(rep, b))
    put("leaderboard.md", L.render(rep, inputs, images))
    put("index.html", H.render(rep, inputs, images, METHOD))
    doc = document(rep, inputs, written + [MARKER])
    atomic_write_text(out / MARKER, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    os.chmod(out / MARKER, 0o666 & ~umask)
    for name in set(previous) - set(written) - {MARKER}:
        p = out / name
        if p.is_file():
            p.unlink()
    return doc
