"""The report's causes (reports.causes): how many trials diverged, saturated or collapsed against
brute-force counts at the stated thresholds, the curves read from real run directories, and
`bench report` showing them (table, causes.csv, report.json, figures)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports import causes as C
from reports import metrics as M
from tests.conftest import run_cli


def table(rng, n=40) -> pd.DataFrame:
    losses = np.repeat(["ns", "mm"], n // 2)
    status = np.where(rng.random(n) < 0.2, "diverged", "ok")
    sat = rng.choice([0.0, 0.3, 0.5, 0.49, 0.9, 1.0, np.nan], n)  # 0.5 is saturated, 0.49 is not
    modes = rng.integers(0, 9, n).astype(float)  # of 8: 0..3 collapsed, 4 is not
    df = pd.DataFrame({"dataset": "ring8", "loss": losses, "phase": "search", "status": status,
                       "trial_id": [f"ring8-{x}-mlp-search-c{i:03d}" for i, x in enumerate(losses)],
                       "d_saturated": sat, "modes": modes, "modes_total": 8.0, "d_auc": rng.random(n),
                       "hq_fraction": rng.choice([0.0, 0.049, 0.05, 0.4], n),  # 0.05 is on the data
                       "g_grad_norm": rng.random(n), "g_grad_norm_min": rng.random(n) / 2,
                       "w1": np.where(status == "ok", rng.random(n), np.nan)})
    return df


def test_counts_equal_brute_force_at_the_stated_thresholds():
    df = table(np.random.default_rng(0))
    got = C.causes_table(df).set_index("loss")
    for loss in ("ns", "mm"):
        rows = [r for r in df.to_dict("records") if r["loss"] == loss]
        assert got.loc[loss, "trials"] == len(rows)
        assert got.loc[loss, "diverged"] == sum(r["status"] == "diverged" for r in rows)
        assert got.loc[loss, "saturated"] == sum(r["d_saturated"] >= 0.5 for r in rows if not math.isnan(r["d_saturated"]))
        assert got.loc[loss, "collapsed"] == sum(r["modes"] < 4 and r["hq_fraction"] >= 0.05 for r in rows)
        assert got.loc[loss, "off_data"] == sum(r["modes"] < 4 and r["hq_fraction"] < 0.05 for r in rows)
        assert got.loc[loss, "collapsed_trials"] == sorted(r["trial_id"] for r in rows if r["modes"] < 4 and r["hq_fraction"] >= 0.05)
        assert 0 < got.loc[loss, "collapsed"] and 0 < got.loc[loss, "off_data"]  # both cases are exercised
        assert got.loc[loss, "median_d_auc"] == pytest.approx(np.median([r["d_auc"] for r in rows]))
    # a dataset without modes has no collapse count (not zero)
    nomodes = C.causes_table(df.drop(columns=["modes", "modes_total", "hq_fraction"]))
    assert nomodes["collapsed"].isna().all() and nomodes["off_data"].isna().all()
    assert (nomodes["collapsed_trials"].map(len) == 0).all()


def _write_trial(root: Path, tid: str, g_norms, modes, total=8):
    run = root / "trials" / tid
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"step": 100 * (i + 1), "d_loss": 1.0, "g_loss": 1.0, "g_grad_norm": g}) + "\n" for i, g in enumerate(g_norms)))
    (run / "scores.jsonl").write_text("".join(
        json.dumps({"step": 100 * (i + 1), "modes": m, "modes_total": total}) + "\n" for i, m in enumerate(modes)))


@pytest.fixture
def study(tmp_path) -> Path:
    """A study directory with real trial files: ns's best covers the modes, its worst diverged; one mm
    trial collapses (8 -> 2 modes, its samples on them), one does not, and a wgan one is off the data."""
    root = tmp_path / "s"
    rows = [("ns", "ring8-ns-mlp-search-c000", "ok", 0.1, 8, 0.0), ("ns", "ring8-ns-mlp-search-c001", "diverged", math.nan, 5, 0.0),
            ("mm", "ring8-mm-mlp-search-c000", "ok", 0.9, 2, 0.95), ("mm", "ring8-mm-mlp-search-c001", "ok", 0.3, 7, 0.1),
            ("wgan", "ring8-wgan-mlp-search-c000", "ok", 2.0, 0, 0.0)]
    for loss, tid, status, w1, last_modes, sat in rows:
        _write_trial(root, tid, [1.0, 0.1, 0.01], [8, 6, last_modes])
    df = pd.DataFrame([{"study": "s", "dataset": "ring8", "loss": loss, "arch": "mlp", "phase": "search", "trial_id": tid,
                        "config_id": int(tid[-1]), "replicate": 0, "seed": i, "status": status, "primary_metric": "w1",
                        "primary": w1, "primary_best": w1, "w1": w1, "modes": float(m), "modes_total": 8.0, "d_saturated": sat,
                        "hq_fraction": 0.0 if loss == "wgan" else 0.9,
                        "d_auc": 0.5 + sat / 2, "g_grad_norm": 0.01, "g_grad_norm_min": 0.01}
                       for i, (loss, tid, status, w1, m, sat) in enumerate(rows)])
    (root / "study.json").write_text("{}")
    df.to_parquet(root / "results.parquet")
    return root


def test_trial_curves_read_the_best_the_worst_and_every_trial(study):
    from reports.load import read_one

    trials = M.prepare(read_one(study), "primary")
    got = C.trial_curves(trials, "ring8")
    assert got["ns"]["best"].trial_id == "ring8-ns-mlp-search-c000"
    assert got["ns"]["worst"].trial_id == "ring8-ns-mlp-search-c001" and math.isinf(got["ns"]["worst"].value)
    assert got["ns"]["best"].g_grad_norm == [1.0, 0.1, 0.01] and got["ns"]["best"].steps == [100, 200, 300]
    mm = {c.trial_id: c for c in got["mm"]["all"]}
    assert mm["ring8-mm-mlp-search-c000"].collapsed and mm["ring8-mm-mlp-search-c000"].modes == [8, 6, 2]
    assert not mm["ring8-mm-mlp-search-c001"].collapsed and mm["ring8-mm-mlp-search-c001"].modes_total == 8
    assert got["wgan"]["best"].off_data and not got["wgan"]["best"].collapsed


def test_a_large_cell_draws_max_curves_evenly_by_rank_and_counts_every_trial(tmp_path):
    root = tmp_path / "big"
    n = C.MAX_CURVES * 3 + 1
    rows = []
    for i in range(n):
        tid = f"ring8-ns-mlp-search-c{i:03d}"
        _write_trial(root, tid, [1.0], [2 if i % 5 == 0 else 8])
        rows.append({"dataset": "ring8", "loss": "ns", "phase": "search", "status": "ok", "trial_id": tid,
                     "config_id": i, "primary_metric": "w1", "primary_best": float(n - i), "modes": 2.0 if i % 5 == 0 else 8.0,
                     "modes_total": 8.0, "hq_fraction": 0.9, "_root": str(root)})
    got = C.trial_curves(M.prepare(pd.DataFrame(rows), "primary"), "ring8")["ns"]
    assert len(got["all"]) == C.MAX_CURVES and got["trials"] == n
    assert got["collapsed"] == len(range(0, n, 5)) and got["off_data"] == 0  # over the cell, not the drawn
    assert got["best"].trial_id == rows[-1]["trial_id"] and got["worst"].trial_id == rows[0]["trial_id"]
    drawn = sorted(int(c.trial_id[-3:]) for c in got["all"])
    assert drawn[0] == 0 and drawn[-1] == n - 1 and max(np.diff(drawn)) <= 4  # spread over the whole ranking


def test_report_shows_the_causes_and_their_curves(study, tmp_path):
    out = tmp_path / "rep"
    assert run_cli("report", str(study), "--resamples", "100", "--no-samples", "--out", str(out)).returncode == 0
    doc = json.loads((out / "report.json").read_text())
    causes = {r["loss"]: r for r in doc["causes"]}
    assert causes["mm"]["collapsed"] == 1 and causes["mm"]["saturated"] == 1 and causes["ns"]["diverged"] == 1
    assert causes["mm"]["collapsed_trials"] == ["ring8-mm-mlp-search-c000"]
    assert causes["wgan"]["collapsed"] == 0 and causes["wgan"]["off_data"] == 1
    assert "modes < modes_total / 2" in doc["cause_thresholds"]
    assert {"health.png", "health-00-ring8.png", "causes.csv"} <= set(doc["files"])
    md = (out / "leaderboard.md").read_text()
    assert "How the trials failed" in md and "| search-c000 |" in md and "d\\_saturated &gt;= 0.5" in md
    assert "How the trials failed" in (out / "index.html").read_text()
    csv = pd.read_csv(out / "causes.csv")
    assert csv.set_index("loss").loc["mm", "collapsed_trials"] == "ring8-mm-mlp-search-c000"
