"""``bench report`` on generated results tables (hypothesis; issue 17, "Generated inputs").

Every generated input must either give a report (exit 0, index.html and every file report.json lists
written, names HTML-escaped, counts and verdicts consistent with the table) or be refused (exit 2,
exactly one line on stderr naming what is wrong, no traceback, nothing written: the input folder is
byte for byte what it was, and no report folder appears). The tables vary in: missing and extra
columns, NaN / +-inf / non-numeric scores, empty cells (a loss absent from a dataset, a phase with no
rows, a cell of only diverged or failed trials), a single seed, duplicate trial ids, unicode and
HTML-special names, zero rows, CSV or Parquet, a study directory or a file.

The bulk runs in this process through ``bench.commands.report.run`` (the function ``bench report``
dispatches to; a UsageError becomes one stderr line and exit 2 exactly as ``bench.cli.main`` does),
most with the PNG figures stubbed out (matplotlib is ~2 s a report), a few with the real figures;
``test_cli_subprocess_representative_cases`` runs the real console entry point on four cases.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import html
import io
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.errors import UsageError
from tests.conftest import BENCH, tree_snapshot

EVIL = "<script>alert(1)</script>"
SECRET = "/home/someone/secret-lab"
# Names that a table can hold: HTML- and Markdown-special, quotes, emoji, accents, a newline, CSV's
# own specials, local paths in folder: datasets (reports show only the last part).
SPECIAL = [EVIL, "say \"hi\" & 'bye'", "\U0001F525 gan", "données-ü", "a|b*_c[x](y)", "<img src=x onerror=alert(1)>",
           "line\nbreak", "semi;colon,comma", " padded "]
LOSSES = ["ns", "hinge", "wgan-gp", *SPECIAL]
DATASETS = ["ring8", "digits", f"folder:{SECRET}/faces", *SPECIAL]
LOWER, HIGHER = ("w1", "fid", "kid"), ("precision", "recall")

PROPS = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


# ---- generated tables ------------------------------------------------------------------------------

score = st.one_of(
    st.floats(min_value=0, max_value=500, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -3.5, 1e30]),
)


def name(pool):
    """A name from the pool, or (sometimes) any short unicode text."""
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool),
                     st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6))


@st.composite
def tables(draw, valid_bias: bool = False):
    """(table, spec): a results table and how it was made (what the oracle needs besides the table)."""
    datasets = draw(st.lists(name(DATASETS), min_size=1, max_size=3, unique=True))
    losses = draw(st.lists(name(LOSSES), min_size=1, max_size=3, unique=True))
    if valid_bias or draw(st.integers(0, 3)):  # mostly the baseline is there
        losses = ["ns", *[x for x in losses if x != "ns"]]
    single_seed = draw(st.booleans())
    mode = draw(st.sampled_from(["fid", "fid", "fid_best", "primary"]))
    primary = {ds: draw(st.sampled_from(["w1", "fid", "w1", "precision", "mystery"])) for ds in datasets}
    rows = []
    for ds in datasets:
        for loss in losses:
            if draw(st.integers(0, 5)) == 0:  # a loss with no rows on this dataset
                continue
            bad_cell = draw(st.integers(0, 5)) == 0  # only diverged / failed trials
            for phase, most in (("search", 5), ("seeds", 5)):
                for i in range(draw(st.integers(0 if not valid_bias else 1, most))):
                    status = draw(st.sampled_from(["diverged", "failed"] if bad_cell else ["ok"] * 4 + ["diverged", "failed"]))
                    v = draw(score) if status == "ok" else math.nan
                    rows.append({"dataset": ds, "loss": loss, "phase": phase, "config_id": i if phase == "search" else 0,
                                 "replicate": 0 if phase == "search" else i, "seed": 0 if single_seed else len(rows),
                                 "status": status, "value": v, "best": v if draw(st.booleans()) else math.nan})
    cols = ["dataset", "loss", "phase", "config_id", "replicate", "seed", "status", "value", "best"]
    df = pd.DataFrame(rows, columns=cols)
    df["trial_id"] = [f"{r.dataset}-{r.loss}-{r.phase}-c{r.config_id:03d}-s{r.replicate:02d}" for r in df.itertuples()]
    if mode == "primary":
        df["primary_metric"] = df["dataset"].map(primary).astype(object)
        df["primary"], df["primary_best"] = df["value"], df["best"]
        df["fid"] = df["value"]
    elif mode == "fid_best":
        df["fid"], df["fid_best"] = df["value"], df["best"]
    else:
        df["fid"] = df["value"]
    df = df.drop(columns=["value", "best"])
    # extra columns a table may carry: hyperparameters, private and odd names, precision/recall with NaN/inf
    for col in draw(st.lists(st.sampled_from(["hp_lr", "_root", "notes", "précision ☃", "precision_recall", "index"]),
                             max_size=3, unique=True)):
        df[col] = [draw(st.sampled_from([0.1, math.nan, 2.0])) for _ in range(len(df))] if col != "notes" \
            else [draw(st.sampled_from(["", EVIL, "ok"])) for _ in range(len(df))]
    if draw(st.booleans()):
        df["precision"] = [draw(st.sampled_from([0.5, 0.9, math.nan, math.inf])) for _ in range(len(df))]
        df["recall"] = [draw(st.sampled_from([0.2, 0.7, math.nan])) for _ in range(len(df))]
    if draw(st.integers(0, 4)) == 0:  # several architectures on one dataset: labels "dataset [arch]"
        df["arch"] = [draw(st.sampled_from(["mlp", "dcgan"])) for _ in range(len(df))]
    if not valid_bias:
        mutation = draw(st.sampled_from(["none"] * 6 + ["drop", "zero", "dup_id", "dup_row", "nan_name", "bad_status",
                                                         "bad_phase", "text_score"]))
        if mutation == "drop":
            df = df.drop(columns=draw(st.lists(st.sampled_from(["dataset", "loss", "phase", "config_id", "seed", "status",
                                                                "fid", "primary_best", "primary", "fid_best", "trial_id"]),
                                               min_size=1, max_size=3, unique=True)), errors="ignore")
        elif mutation == "zero":
            df = df.iloc[:0]
        elif mutation in ("dup_id", "dup_row") and len(df):
            i = draw(st.integers(0, len(df) - 1))
            if mutation == "dup_row":
                df = pd.concat([df, df.iloc[[i]]], ignore_index=True)
            elif len(df) > 1:
                j = draw(st.integers(0, len(df) - 1).filter(lambda j: j != i))
                df.loc[j, "trial_id"] = df.loc[i, "trial_id"]
        elif mutation == "nan_name" and len(df):
            df.loc[draw(st.integers(0, len(df) - 1)), draw(st.sampled_from(["dataset", "loss"]))] = None
        elif mutation == "bad_status" and len(df):
            df.loc[draw(st.integers(0, len(df) - 1)), "status"] = draw(st.sampled_from(["running", "OK", "<b>x</b>"]))
        elif mutation == "bad_phase" and len(df):
            df.loc[draw(st.integers(0, len(df) - 1)), "phase"] = "warmup"
        elif mutation == "text_score" and len(df) and "fid" in df:
            df["fid"] = df["fid"].astype(object)
            df.loc[draw(st.integers(0, len(df) - 1)), "fid"] = "n/a"
    spec = {"format": draw(st.sampled_from(["parquet", "csv", "study"])),
            "baseline": "ns" if draw(st.integers(0, 4)) else draw(st.sampled_from([EVIL, "hinge"])),
            "metric": None if draw(st.integers(0, 3)) else draw(st.sampled_from(["fid", "kid", "primary", "mystery"]))}
    return df, spec


def write_input(df: pd.DataFrame, spec: dict, root: Path) -> Path:
    if spec["format"] == "csv":
        path = root / "in" / "results.csv"
        path.parent.mkdir(parents=True)
        df.to_csv(path, index=False)
        return path
    where = root / "in" / ("study" if spec["format"] == "study" else "")
    where.mkdir(parents=True)
    # Parquet columns have one type: a score column holding 'n/a' is a text column in a user's file.
    for c in df.columns[df.dtypes == object]:
        values = df[c].dropna()
        if values.map(type).nunique() > 1:
            df = df.assign(**{c: df[c].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))})
    df.to_parquet(where / "results.parquet" if spec["format"] == "study" else where / "t.parquet", index=False)
    return where if spec["format"] == "study" else where / "t.parquet"


def read_back(path: Path) -> pd.DataFrame:
    """The table as the user's file holds it (CSV turns '' and 'NA' into NaN, numbers into numbers)."""
    if path.is_dir():
        path = path / "results.parquet"
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


# ---- the oracle: what bench report must do with a table ---------------------------------------------

REQUIRED = ("dataset", "loss", "phase", "config_id", "seed", "status")


def finite(x) -> pd.Series:
    return pd.to_numeric(x, errors="coerce").astype(float).pipe(lambda s: s.where(np.isfinite(s)))


def expected_refusal(t: pd.DataFrame, spec: dict) -> str | None:
    """A word the refusal must contain, or None when the table must be reported on."""
    metric = spec["metric"]
    if metric is None:
        metric = "primary" if "primary_metric" in t and t["primary_metric"].notna().any() else "fid"
    if "trial_id" in t and t["trial_id"].dropna().duplicated().any():  # read first, before any column check
        return "more than once"
    if any(c not in t for c in REQUIRED) or not ({metric, f"{metric}_best"} & set(t.columns)):
        return "lack required column"
    if t.empty:
        return "no rows"
    names = set(t["primary_metric"].dropna().astype(str)) if metric == "primary" else {metric}
    if metric == "primary" and not names:
        return "no primary metric"
    if names - set(LOWER) - set(HIGHER):  # an orientation no registration gives
        return "no registered metric"
    if metric == "primary":
        if names & set(HIGHER) and names - set(HIGHER):
            return "disagree"
    if not set(t["phase"].astype(str)) <= {"search", "seeds"} or not set(t["status"].astype(str)) <= {"ok", "diverged", "failed"}:
        return "unknown value"
    if t["dataset"].isna().any() or t["loss"].isna().any():
        return "empty values"
    for c in (metric, f"{metric}_best"):
        if c in t and (pd.to_numeric(t[c], errors="coerce").isna() & t[c].notna()).any():
            return "not numeric"
    if spec["baseline"] not in set(t["loss"].astype(str)):
        return "unknown baseline"
    return None


def labels(t: pd.DataFrame) -> pd.Series:
    """The dataset label of each row, as reports/load.py documents it."""
    lab = t["dataset"].astype(str).map(lambda d: "folder:" + (Path(d[7:]).name or "images") if d.startswith("folder:") else d)
    if "arch" in t:
        multi = t.assign(_l=lab).groupby("_l")["arch"].nunique()
        many = lab.isin(multi[multi > 1].index)
        lab = lab.where(~many, lab + " [" + t["arch"].astype(str) + "]")
    return lab


def outcomes(t: pd.DataFrame, metric: str) -> pd.Series:
    cols = ("primary_best", "primary") if metric == "primary" else (f"{metric}_best", metric)
    value = pd.Series(np.nan, index=t.index)
    for c in reversed(cols):
        if c in t:
            v = finite(t[c])
            value = value.where(v.isna(), v)
    status = t["status"].astype(str)
    return pd.Series(np.where(status != "ok", status, np.where(value.notna(), "ok", "unscored")), index=t.index)


def check_report(t: pd.DataFrame, spec: dict, out: Path, root: Path) -> None:
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc["format"] == "gan-bench/report/1"
    for f in doc["files"]:
        assert (out / f).is_file(), f
    assert "index.html" in doc["files"] and not list(out.glob(".*.tmp"))
    lab, loss = labels(t), t["loss"].astype(str)
    assert doc["datasets"] == sorted(set(lab)) and set(doc["losses"]) == set(loss)
    assert doc["losses"][0] == spec["baseline"]
    # counts: every row is a trial, counted once in its cell, phase and outcome (none dropped or doubled)
    outcome = outcomes(t, doc["metric"])
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        summary = {(r["dataset"], r["loss"]): r for r in csv.DictReader(f)}
    want = t.assign(_d=lab, _l=loss, _o=outcome).groupby(["_d", "_l", "phase", "_o"]).size()
    assert set(summary) == set(zip(lab, loss))
    for (ds, lo), r in summary.items():
        for phase in ("search", "seeds"):
            for o in ("ok", "diverged", "failed", "unscored"):
                assert int(r[f"{phase}_{o}"]) == want.get((ds, lo, phase, o), 0), (ds, lo, phase, o)
    # verdicts: one seeds verdict per loss x dataset where both have seeds, budget verdicts where both
    # have search trials, sample sizes = rows; a loss with only worst values is never better
    n = t.assign(_d=lab, _l=loss).groupby(["_d", "_l", "phase"]).size()
    good = t.assign(_d=lab, _l=loss)[outcome == "ok"].groupby(["_d", "_l", "phase"]).size()
    base = spec["baseline"]
    for v in doc["verdicts"]:
        phase = "seeds" if v["kind"] == "seeds" else "search"
        ds, lo = v["dataset"], v["loss"]
        assert v["verdict"] in ("better", "worse", "no-difference", "inconclusive")
        assert v["baseline"] == base and lo != base
        assert (v["n_loss"], v["n_baseline"]) == (n.get((ds, lo, phase), 0), n.get((ds, base, phase), 0)), v
        if not good.get((ds, lo, phase), 0):
            assert v["verdict"] != "better", v
        if not good.get((ds, base, phase), 0):
            assert v["verdict"] != "worse", v
    for phase, kind in (("seeds", "seeds"), ("search", "budget")):
        pairs = {(ds, lo) for (ds, lo, ph) in n.index if ph == phase and lo != base and (ds, base, phase) in n.index}
        assert pairs == {(v["dataset"], v["loss"]) for v in doc["verdicts"] if v["kind"] == kind}
    # names are escaped in the page, the page holds one script (its own), no local path leaks
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count("<script") == 1
    for x in [*doc["datasets"], *doc["losses"]]:
        assert html.escape(x, quote=True) in page, x
        if x in SPECIAL and any(c in x for c in "<>\"'"):
            assert x not in page, x
    for f in out.iterdir():
        if f.suffix in (".html", ".md", ".csv", ".json"):
            text = f.read_text(encoding="utf-8")
            assert SECRET not in text and str(root) not in text, f.name
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert EVIL not in md and "<img" not in md


def report_args(path: Path, spec: dict, out: Path | None = None, figures: bool = True) -> list[str]:
    args = [str(path), "--resamples", "100", "--no-samples", "--baseline", spec["baseline"]]
    if spec["metric"] is not None:
        args += ["--metric", spec["metric"]]
    if out is not None:
        args += ["--out", str(out)]
    return args


def run_report(args: list[str]) -> tuple[int, str, str]:
    """``bench report ARGS`` in this process: what bench.cli.main does with the command's run()."""
    from bench.commands import report

    parser = argparse.ArgumentParser(prog="bench")
    report.add_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["report", *args])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = ns.func(ns)
        except UsageError as e:
            sys_err = f"bench report: error: {e}\n"
            err.write(sys_err)
            rc = 2
    return rc, out.getvalue(), err.getvalue()


def check_one(df: pd.DataFrame, spec: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        path = write_input(df, spec, root)
        t = read_back(path)
        refusal = expected_refusal(t, spec)
        before = tree_snapshot(root)
        rc, out, err = run_report(report_args(path, spec))
        rep = (path if path.is_dir() else path.parent) / "report"
        if refusal is not None:
            assert rc == 2, (refusal, out)
            assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("bench report: error: "), err
            assert refusal in err and "Traceback" not in err, (refusal, err)
            assert out == "" and tree_snapshot(root) == before and not rep.exists()
        else:
            assert rc == 0 and err == "", err
            check_report(t, spec, rep, root)


def no_figures():
    """Stub the PNG figures (the bulk's speed); test_generated_tables_with_figures draws them."""
    from reports import plots

    stack = contextlib.ExitStack()
    for f in ("distribution", "budget", "prob_improvement", "precision_recall", "critical_difference"):
        stack.enter_context(mock.patch.object(plots, f, return_value=None))
    return stack


# ---- the properties -----------------------------------------------------------------------------------

@settings(PROPS, max_examples=70)
@given(tables())
def test_generated_tables_report_or_refuse(case):
    df, spec = case
    with no_figures():
        check_one(df, spec)


@settings(PROPS, max_examples=8)
@given(tables(valid_bias=True))
def test_generated_tables_with_figures(case):
    """Mostly valid tables (every cell has both phases), through the real matplotlib figures."""
    df, spec = case
    check_one(df, spec)


# ---- the console script on a few representative cases (in parallel: each starts Python and torch) -------

def _cases(root: Path) -> dict[str, tuple[list[str], str | None, Path]]:
    rng = np.random.default_rng(3)
    rows = []
    for ds in ("ring8", EVIL):
        for loss in ("ns", "\U0001F525 gan", "say \"hi\" & 'bye'"):
            for phase, n in (("search", 3), ("seeds", 3)):
                for i in range(n):
                    bad = loss == "say \"hi\" & 'bye'" and ds == EVIL  # a cell of only diverged trials
                    rows.append({"dataset": ds, "loss": loss, "phase": phase, "trial_id": f"{ds}{loss}{phase}{i}",
                                 "config_id": i if phase == "search" else 0, "seed": 0,
                                 "status": "diverged" if bad else "ok",
                                 "fid": math.nan if bad else float(rng.choice([rng.gamma(2, 3), math.inf]))})
    good = pd.DataFrame(rows)
    cases = {}
    for key, df, message in (("good", good, None),
                             ("missing", good.drop(columns=["status", "seed"]), "lack required column(s): seed, status"),
                             ("zero", good.iloc[:0], "no rows"),
                             ("dup", pd.concat([good, good.iloc[[4]]], ignore_index=True), "more than once")):
        study = root / key / "study"
        study.mkdir(parents=True)
        df.to_parquet(study / "results.parquet", index=False)
        cases[key] = ([str(study), "--resamples", "100", "--no-samples"], message, study)
    return cases


def test_cli_subprocess_representative_cases(tmp_path):
    cases = _cases(tmp_path)
    before = tree_snapshot(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {k: subprocess.Popen([*BENCH, "report", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env) for k, (args, _, _) in cases.items()}
    results = {k: (p.communicate(timeout=300), p.returncode) for k, p in procs.items()}
    for key, ((out, err), rc) in results.items():
        _, message, study = cases[key]
        if message is None:
            assert rc == 0, err
            assert "Traceback" not in err
            page = (study / "report" / "index.html").read_text(encoding="utf-8")
            assert EVIL not in page and html.escape(EVIL) in page and html.escape("say \"hi\" & 'bye'") in page
            assert "\U0001F525 gan" in page
        else:
            assert rc == 2 and out == "", (key, rc, err)
            assert err.count("\n") == 1 and message in err and "Traceback" not in err, (key, err)
            assert not (study / "report").exists()
    after = tree_snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("good/study/report/")} == before
