"""Tricks as a study factor (issue 15): `bench run --tricks` makes one cell per (loss, trick), and
`bench report --factor trick --baseline none` compares tricks the way losses are compared."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench import tricks
from bench.errors import UsageError
from bench.results import read as read_results
from bench.run_study import _same_study, validate
from bench.study import Cell, Study, cells, make_trial, sample_configs
from reports.factor import compare_along
from tests.conftest import run_bench, run_cli, tree_snapshot


def _study(**kw) -> Study:
    import sweeps

    kw = {"losses": ["ns"], **kw}
    return Study(name="s", datasets=["ring8"], budget=3, space=sweeps.load("mixtures-2d").to_dict(), seeds=0, steps=10, **kw)


@pytest.mark.parametrize("text, canonical", [
    ("none", "none"), ("unrolled", "unrolled=5"), ("unrolled=5.0", "unrolled=5"), ("label-smoothing", "label-smoothing=0.1"),
    ("label-smoothing=0.25", "label-smoothing=0.25"), ("r1=10", "r1=10"), ("feature-matching", "feature-matching"),
    (" r1=10+minibatch-stddev", "r1=10+minibatch-stddev"),
])
def test_a_trick_has_one_spelling(text, canonical):
    assert tricks.parse(text) == canonical
    assert tricks.parse(canonical) == canonical


@pytest.mark.parametrize("text, needle", [
    ("dropout", "unknown trick 'dropout'; known: none, label-smoothing[=alpha]"),
    ("r1", "trick 'r1' needs a value: r1=gamma"),
    ("spectral-norm=2", "takes no value"),
    ("unrolled=2.5", "K must be an integer"),
    ("label-smoothing=abc", "alpha must be a number"),
    ("none+r1=1", "none cannot be combined"),
    ("label-smoothing+two-sided-smoothing", "both set loss.label_smoothing"),
    ("r1=1+r1=2", "names a trick twice"),
])
def test_bad_tricks_are_named(text, needle):
    with pytest.raises(UsageError, match=None) as e:
        tricks.parse(text)
    assert needle in str(e.value)


def test_trick_settings_are_train_config_fields():
    from bench.config import TrainConfig

    fields = set(TrainConfig.__dataclass_fields__)
    for name, trick in tricks.TRICKS.items():
        value = None if trick.value is None else (trick.default if trick.default is not None else 1.0)
        for key in trick.settings(value):
            assert key.startswith("loss.") or key in fields, (name, key)


def test_trick_cells_fix_their_settings_and_sample_the_rest():
    study = _study(tricks=["none", "spectral-norm", "unrolled=3", "label-smoothing=0.2"])
    grid = cells(study)
    assert [c.key for c in grid] == ["ring8/ns/mlp", "ring8/ns/mlp/spectral-norm", "ring8/ns/mlp/unrolled=3",
                                     "ring8/ns/mlp/label-smoothing=0.2"]
    plain, sn, unrolled, smooth = grid
    assert "d_norm" in plain.space(study) and "d_norm" not in sn.space(study)  # the trick fixes it
    for cid, hp in enumerate(sample_configs(study, sn, 3)):
        spec = make_trial(study, sn, "search", cid, 0, hp, 10)
        assert spec.config["d_norm"] == "spectral" and spec.trick == "spectral-norm"
        assert spec.trial_id == f"ring8-ns-mlp-spectral-norm-search-c{cid:03d}"
    for cid, hp in enumerate(sample_configs(study, unrolled, 3)):  # config 0 (published defaults) included
        assert make_trial(study, unrolled, "search", cid, 0, hp, 10).config["unrolled_steps"] == 3
    spec = make_trial(study, smooth, "seeds", 1, 2, sample_configs(study, smooth, 2)[1], 10)
    assert spec.config["loss_params"]["label_smoothing"] == 0.2 and spec.hp["label_smoothing"] == 0.2
    assert spec.trial_id == "ring8-ns-mlp-label-smoothing_0.2-seeds-c001-s02"


def test_the_loss_alone_is_the_study_it_was_before_tricks():
    """A cell without a trick keeps its key, trial ids, configs and seeds; a study.json written before
    tricks existed is the same study (it resumes)."""
    study = _study()
    old = {k: v for k, v in study.to_dict().items() if k != "tricks"}
    assert _same_study(old, study) and not _same_study({**old, "losses": ["ls"]}, study)
    assert not _same_study({**old, "tricks": ["none", "r1=1"]}, study)
    (cell,) = cells(study)
    assert cell == Cell("ring8", "ns", "mlp") and cell.key == "ring8/ns/mlp"
    spec = make_trial(study, cell, "search", 1, 0, sample_configs(study, cell, 2)[1], 10)
    assert spec.trial_id == "ring8-ns-mlp-search-c001"
    row = {"dataset": "ring8", "loss": "ns", "arch": "mlp"}  # a row of an old ledger: no trick column
    assert cell.holds(row) and cell.holds({**row, "trick": float("nan")}) and not Cell("ring8", "ns", "mlp", "r1=1").holds(row)
    df = pd.DataFrame([row, {**row, "loss": "ls"}])
    assert cell.mask(df).tolist() == [True, False]


@pytest.mark.parametrize("losses_, trick, needle", [
    ("wgan", "label-smoothing", "ring8/wgan/mlp/label-smoothing=0.1: loss 'wgan' has no parameter 'label_smoothing'"),
    ("wgan", "unrolled=2", "ring8/wgan/mlp/unrolled=2: unrolled GAN unrolls D's plain loss"),
    ("began", "feature-matching", "ring8/began/mlp/feature-matching: feature matching needs a logit discriminator"),
    ("ns", "reference-bn", "ring8/ns/mlp/reference-bn: g_norm reference: arch 'mlp': this generator has no batch norm"),
    ("ns", "label-smoothing=0.7", "label_smoothing must be in [0, 0.5)"),
])
def test_a_trick_that_does_not_fit_a_loss_is_refused_before_anything_runs(losses_, trick, needle):
    with pytest.raises(UsageError) as e:
        validate(_study(losses=[losses_], tricks=["none", tricks.parse(trick)]))
    assert needle in str(e.value)


def test_bench_run_refuses_bad_tricks_with_one_line(tmp_path):
    before = tree_snapshot(tmp_path)
    for args, needle in ((["--tricks", "none,dropout"], "unknown trick 'dropout'"),
                         (["--tricks", "unrolled,unrolled=5"], "--tricks names unrolled=5 twice"),
                         (["--losses", "wgan", "--tricks", "none,label-smoothing"], "has no parameter 'label_smoothing'")):
        r = run_cli("run", "--budget", "1", "--dataset", "ring8", "--steps", "5", "--storage", str(tmp_path), *args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_snapshot(tmp_path) == before


# ---- the report along a factor ---------------------------------------------------------------------

def _table(rng, effect: dict[tuple[str, str], float], seeds: int = 10, configs: int = 4) -> pd.DataFrame:
    """A results table: per (loss, trick) ``configs`` search rows and ``seeds`` seeds rows of w1 ~
    1 + effect + N(0, 0.01^2)."""
    rows = []
    for (loss, trick), e in effect.items():
        for phase, n in (("search", configs), ("seeds", seeds)):
            for i in range(n):
                rows.append({"dataset": "ring8", "loss": loss, "arch": "mlp", "trick": trick, "phase": phase,
                             "config_id": i if phase == "search" else 0, "replicate": 0 if phase == "search" else i,
                             "seed": len(rows), "status": "ok", "trial_id": f"t{len(rows)}",
                             "w1": 1.0 + e + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_compare_along_a_factor_relabels_and_keeps_other_factors_apart():
    df = _table(np.random.default_rng(0), {("ns", "none"): 0, ("ns", "r1=1"): 0, ("ls", "none"): 0, ("ls", "r1=1"): 0},
                seeds=1, configs=1)
    by_trick = compare_along(df, "trick")
    assert set(by_trick["loss"]) == {"none", "r1=1"}  # the compared levels
    assert set(by_trick["dataset"]) == {"ring8 [ns]", "ring8 [ls]"}  # tricks are compared within one loss
    assert (by_trick["loss_name"] == df["loss"]).all()
    by_loss = compare_along(df, "loss")
    assert set(by_loss["dataset"]) == {"ring8 [none]", "ring8 [r1=1]"} and set(by_loss["loss"]) == {"ns", "ls"}
    old = df[df["trick"] == "none"].drop(columns="trick")  # a table from before tricks: the losses alone
    assert set(compare_along(old, "loss")["dataset"]) == {"ring8"}
    assert set(compare_along(old, "trick")["loss"]) == {"none"}
    with pytest.raises(UsageError, match="is not a column of the results; accepted: arch, loss, trick"):
        compare_along(df, "colour")
    many = df.assign(hp_lr=np.linspace(1e-4, 1e-3, len(df)))
    many = pd.concat([many] * 6, ignore_index=True).assign(hp_lr=lambda d: np.arange(len(d)))
    with pytest.raises(UsageError, match="distinct values; a factor compares at most 20"):
        compare_along(many, "hp_lr")


def test_report_answers_the_factor_question(tmp_path):
    """A known answer: r1 is better than none by 10 standard deviations with 10 seeds, feature
    matching is the same as none; the headline and the files say it in terms of tricks."""
    df = _table(np.random.default_rng(1), {("ns", "none"): 0.0, ("ns", "r1=1"): -0.1, ("ns", "feature-matching"): 0.0})
    csv = tmp_path / "results.csv"
    df.to_csv(csv, index=False)
    r = run_cli("report", str(csv), "--factor", "trick", "--metric", "w1", "--no-samples", "--resamples", "200", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["factor"] == "trick" and doc["baseline"] == "none"
    assert doc["headline"].startswith("By w1: r1=1 is better than none on ring8"), doc["headline"]
    seeds = {v["trick"]: v["verdict"] for v in doc["verdicts"] if v["kind"] == "seeds"}
    assert seeds == {"r1=1": "better", "feature-matching": "no-difference"}
    out = tmp_path / "report"
    assert "trick" in pd.read_csv(out / "verdicts.csv").columns and "loss" not in pd.read_csv(out / "verdicts.csv").columns
    assert "| trick | seeds |" in (out / "leaderboard.md").read_text()
    # the same table by loss: one loss, nothing to compare (and no mixing of the trick cells)
    r = run_cli("report", str(csv), "--metric", "w1", "--no-samples", "--resamples", "200", "--json", "--out", str(tmp_path / "by-loss"))
    assert r.returncode == 0 and "Only the baseline ns" in json.loads(r.stdout)["headline"], r.stdout + r.stderr
    r = run_cli("report", str(csv), "--factor", "hp_missing", "--no-samples", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "--factor 'hp_missing' is not a column" in r.stderr
    r = run_cli("report", str(csv), "--factor", "arch", "--metric", "w1", "--no-samples", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "--factor arch needs --baseline: one of mlp" in r.stderr
    assert not (tmp_path / "x").exists()


def test_a_study_crossing_tricks_runs_resumes_and_reports(tmp_path):
    """A real Ray study with TPE: ns x {none, unrolled=2}; every cell has its trials, config 0 and
    the TPE proposal carry the trick, resume runs nothing new, status lists the trick cells, and the
    report along the trick factor names the tricks."""
    args = ["--budget", "2", "--seeds", "1", "--dataset", "ring8", "--losses", "ns", "--tricks", "none,unrolled=2",
            "--search", "tpe", "--steps", "20", "--samples", "500", "--storage", str(tmp_path), "--name", "s"]
    r = run_bench("run", *args, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    study = tmp_path / "s"
    df = read_results(study)
    assert sorted(df.groupby(["trick", "phase"]).size().items()) == [
        (("none", "search"), 2), (("none", "seeds"), 1), (("unrolled=2", "search"), 2), (("unrolled=2", "seeds"), 1)]
    assert (df["status"] == "ok").all()
    tricked = df[df["trick"] == "unrolled=2"]
    assert (tricked["hp_unrolled_steps"] == 2).all() and (df.loc[df["trick"] == "none", "hp_unrolled_steps"] == 0).all()
    assert tricked["trial_id"].str.startswith("ring8-ns-mlp-unrolled_2-").all()
    for tid in tricked["trial_id"]:
        assert json.loads((study / "trials" / tid / "config.json").read_text())["unrolled_steps"] == 2
    r = run_bench("resume", str(study), timeout=600)
    assert r.returncode == 0 and len(read_results(study)) == 6, r.stderr[-2000:]
    r = run_bench("status", str(study))
    assert r.returncode == 0 and "ring8/ns/mlp/unrolled=2" in r.stdout, r.stdout
    r = run_cli("report", str(study), "--factor", "trick", "--no-samples", "--resamples", "200", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["losses"] == ["none", "unrolled=2"] and "per trick cannot show a difference" in doc["headline"], doc["headline"]


def test_bench_list_tricks_names_every_trick_with_what_it_sets():
    r = run_cli("list", "tricks")
    assert r.returncode == 0
    for trick in tricks.TRICKS.values():
        assert f"  {trick.usage()} " in r.stdout
    assert "unrolled[=K]" in r.stdout and "sets unrolled_steps" in r.stdout and "r1=gamma" in r.stdout


def test_only_cell_columns_and_searched_hyperparameters_are_factors():
    df = _table(np.random.default_rng(0), {("ns", "none"): 0, ("ns", "r1=1"): 0}, seeds=1, configs=2)
    for bad in ("seed", "config_id", "w1", "_root"):
        with pytest.raises(UsageError, match=f"--factor '{bad}' is not a column of the results; accepted: arch, loss, trick"):
            compare_along(df, bad)
    by_norm = compare_along(df.assign(hp_d_norm=["batch", "none"] * (len(df) // 2)), "hp_d_norm")
    assert set(by_norm["loss"]) == {"batch", "none"} and set(by_norm["dataset"]) == {"ring8 [none]", "ring8 [r1=1]"}


def test_a_ledger_row_from_before_a_setting_existed_keeps_its_default():
    """hp_of_row (seeds phase and TPE warm start): a setting whose column a row lacks, or holds NaN
    for (a table mixing old and new rows), is left at its default, never read as NaN or True."""
    from bench.run_study import hp_of_row

    row = pd.Series({"hp_lr": 1e-3, "hp_conditional": float("nan"), "hp_label_smoothing": 0.1})
    assert hp_of_row(row, "ns") == {"lr": 1e-3, "loss.label_smoothing": 0.1}
    assert hp_of_row(pd.Series({"hp_conditional": np.True_}), "wgan") == {"conditional": True}


def test_a_space_can_search_conditioning(tmp_path):
    import sweeps

    good = tmp_path / "c.toml"
    good.write_text('extends = "lucic-wide"\n[params]\nconditional = { dist = "choice", values = [true, false] }\n')
    sp = sweeps.load(str(good))
    assert sp.params["conditional"].values == (True, False)
    study = Study(name="s", datasets=["digits"], losses=["ns"], budget=12, space=sp.to_dict(), seeds=0, steps=5)
    drawn = [hp["conditional"] for hp in sample_configs(study, cells(study)[0], 12)[1:]]
    assert set(drawn) == {True, False}  # config 0, the published defaults, is unconditional
    specs = [make_trial(study, cells(study)[0], "search", i, 0, hp, 5) for i, hp in enumerate(sample_configs(study, cells(study)[0], 12))]
    assert [s.config["conditional"] for s in specs] == [False, *drawn] and [s.hp["conditional"] for s in specs[1:]] == drawn
    bad = tmp_path / "b.toml"
    bad.write_text('[params]\nconditional = { dist = "choice", values = ["yes"] }\n')
    with pytest.raises(UsageError, match="value 'yes' is not a true or false"):
        sweeps.load(str(bad))
