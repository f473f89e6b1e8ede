"""Studies on a real local Ray: a complete small study, bad input, a killed driver, two nodes."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bench.results import COLUMNS, read
from tests.conftest import run_bench, run_cli, tree_snapshot, two_node_cluster
from tests.test_tensorboard import read_events, runs_of

pytestmark = pytest.mark.slow
QUICK = ["--steps", "60", "--eval-every", "30", "--samples", "500"]


def test_small_study_writes_complete_results(tmp_path):
    # --gpus-per-trial auto goes through the packing table; 2-D data takes no GPU.
    r = run_bench("run", "--budget", "4", "--dataset", "ring8", "--losses", "ns,wgan-gp", "--seeds", "2",
                  "--gpus-per-trial", "auto", *QUICK, "--storage", tmp_path, "--name", "s", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    df = read(tmp_path / "s")
    assert len(df) == 2 * 4 + 2 * 2 and df["trial_id"].is_unique
    assert set(COLUMNS) <= set(df.columns)
    assert {"hp_lr", "hp_lr_d", "hp_beta1", "hp_n_disc", "hp_d_norm", "hp_gp_lambda", "hp_r2_gamma"} <= set(df.columns)
    assert (df["hp_lr_d"] == df["hp_lr"]).all() and (df["hp_r2_gamma"] == 0).all()  # TTUR and R2 off unless searched
    search = df[df["phase"] == "search"]
    assert sorted(search.groupby("loss")["config_id"].apply(sorted).tolist()) == [[0, 1, 2, 3]] * 2
    assert set(df["status"]) <= {"ok", "diverged", "failed"} and (df["status"] == "ok").all()
    assert df["fid"].notna().all() and df["fid_best"].notna().all() and (df["fid_best"] <= df["fid"] + 1e-12).all()
    # the primary metric of 2-D data is W1, at the last checkpoint and at the best one
    assert (df["primary_metric"] == "w1").all() and (df["primary"] == df["w1"]).all()
    assert (df["primary_best"] <= df["primary"] + 1e-12).all() and df["best_step"].isin([30, 60]).all()
    assert (df["extractor"] == "identity").all() and (df["n_samples"] == 500).all() and (df["steps"] == 60).all()
    # config 0 is the published defaults (ns: lr 5e-5, n_disc 1) with the default 2-D space's fixed
    # entries (mixtures-2d: beta1 0.5, batch 256, no normalisation in D)
    c0 = search[(search["loss"] == "ns") & (search["config_id"] == 0)].iloc[0]
    assert (c0["hp_lr"], c0["hp_beta1"], c0["hp_n_disc"], c0["hp_d_norm"], c0["hp_batch_size"]) == \
        (5e-5, 0.5, 1, "none", 256)
    # seeds phase: the best search config of each cell by its primary metric (not FID), new seeds
    for loss, rows in df[df["phase"] == "seeds"].groupby("loss"):
        s = search[search["loss"] == loss]
        assert rows["config_id"].nunique() == 1
        assert rows["config_id"].iloc[0] == s.sort_values(["primary_best", "config_id"])["config_id"].iloc[0]
        assert not set(rows["seed"]) & set(s["seed"])
    for ck in df["checkpoint"]:
        assert (tmp_path / "s" / ck).is_file()
    # training health: each row summarises its trial's metrics.jsonl (bench.health), and mode hopping
    # its two checkpoints' covered modes
    for _, r in df.iterrows():
        logged = [json.loads(x) for x in (tmp_path / "s" / "trials" / r["trial_id"] / "metrics.jsonl").read_text().splitlines()]
        assert r["g_grad_norm"] == logged[-1]["g_grad_norm"] and r["d_auc"] == logged[-1]["d_auc"]
        assert r["g_grad_norm_min"] == min(x["g_grad_norm_min"] for x in logged) and 0 <= r["d_saturated"] <= 1
        assert r["mode_hops"] >= 0 and r["mode_hops"] == int(r["mode_hops"])
    st = run_bench("status", tmp_path / "s")
    assert st.returncode == 0 and "ring8/wgan-gp/mlp" in st.stdout and " w1 " in st.stdout
    # bench tensorboard: one TensorBoard run per trial, cell/trial_id, with its health and scores
    tb = run_bench("tensorboard", tmp_path / "s", "--out", tmp_path / "tb")
    assert tb.returncode == 0, tb.stderr
    assert runs_of(tmp_path / "tb") == sorted(f"ring8-{r.loss}-mlp/{r.trial_id}" for r in df.itertuples())
    for r in df.itertuples():
        events = read_events(tmp_path / "tb" / f"ring8-{r.loss}-mlp" / r.trial_id)
        assert events["health/d_auc"][-1][1] == pytest.approx(r.d_auc, rel=1e-6)
        assert [s for s, _, _ in events["scores/primary"]] == [30, 60]
        assert events["scores/primary"][-1][1] == pytest.approx(r.primary, rel=1e-6)
    study = json.loads((tmp_path / "s" / "study.json").read_text())
    assert study["search"] == "random" and study["budget"] == 4 and study["space"]["name"] == "mixtures-2d"


BAD = [
    (["--budget", "0"], "--budget must be a positive integer"),
    (["--budget", "x"], "invalid int value"),
    (["--losses", "ns,nope"], "unknown loss 'nope'"),
    (["--archs", "nope"], "unknown arch 'nope'"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--archs", "infogan"], "infogan"),  # does not fit 2-D points
    (["--space", "nope"], "unknown space 'nope'"),
    (["--dataset", "ring8,digits"], "different default search spaces (ring8: mixtures-2d, digits: lucic-wide); give --space"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    (["--search", "grid"], "invalid choice"),
    (["--metrics", "fid,sharpness"], "unknown metric 'sharpness'"),
    (["--feature-extractor", "vgg99"], "unknown feature extractor 'vgg99'"),
    (["--fe-weights", "/nonexistent/inception.pth"], "no such file"),
]


@pytest.mark.parametrize("extra,needle", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, extra, needle):
    storage = tmp_path / "studies"
    args = ["run", "--budget", "2", "--dataset", "ring8", "--storage", storage, *extra]
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not storage.exists()


def test_bad_space_key_and_foreign_name(tmp_path):
    space = tmp_path / "bad.toml"
    space.write_text("[params]\nlearning_rate = { dist = 'fixed', value = 1e-3 }\n")
    r = run_cli("run", "--budget", "2", "--dataset", "ring8", "--space", space, "--storage", tmp_path / "st")
    assert r.returncode == 2 and "learning_rate" in r.stderr and not (tmp_path / "st").exists()
    other = tmp_path / "st" / "x"
    other.mkdir(parents=True)
    (other / "study.json").write_text(json.dumps({"name": "x", "datasets": ["grid25"]}))
    before = tree_snapshot(other)
    r = run_cli("run", "--budget", "2", "--dataset", "ring8", "--storage", tmp_path / "st", "--name", "x")
    assert r.returncode == 2 and "holds another study" in r.stderr
    assert tree_snapshot(other) == before


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path):
    # Head, worker and driver must agree on Ray's token authentication (on by default since Ray 2.59).
    # The cluster's nodes have their own cache: a plugin's source reaches their workers only through the study.
    worker_cache = tmp_path / "worker-cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "GAN_BENCH_CACHE": str(worker_cache)}
    with two_node_cluster(env) as (port, _):
        # a loss from a plugin file (README, "Benchmark your own loss") next to ns
        plugin = Path(__file__).resolve().parents[1] / "examples" / "fgan_kl.py"
        r = run_bench("--plugin", plugin, "run", "--budget", "2", "--dataset", "ring8", "--losses", "ns,fgan-kl",
                      "--seeds", "0", *QUICK, "--storage", tmp_path, "--name", "c", "--address", f"127.0.0.1:{port}",
                      timeout=600, env={"RAY_AUTH_MODE": "disabled"})
    assert r.returncode == 0, r.stderr[-3000:]
    df = read(tmp_path / "c")
    assert len(df) == 4 and df["node"].nunique() == 2 and (df["status"] == "ok").all()
    assert sorted(df["loss"].unique()) == ["fgan-kl", "ns"]
    sha = hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert (worker_cache / "plugins" / sha / "fgan_kl.py").read_bytes() == plugin.read_bytes()


def test_tpe_search_with_asha_records_its_choices(tmp_path):
    r = run_bench("run", "--budget", "4", "--dataset", "ring8", "--losses", "wgan", "--search", "tpe",
                  "--early-stop", "asha", "--seeds", "1", *QUICK, "--storage", tmp_path, "--name", "t", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    df = read(tmp_path / "t")
    search = df[df["phase"] == "search"]
    assert sorted(search["config_id"]) == [0, 1, 2, 3] and df["trial_id"].is_unique
    assert len(df[df["phase"] == "seeds"]) == 1
    c0 = search[search["config_id"] == 0].iloc[0]
    assert (c0["hp_lr"], c0["hp_n_disc"], c0["hp_clip"]) == (5e-5, 5, 0.01)  # published defaults
    proposed = search[search["config_id"] > 0]
    assert proposed["hp_clip"].between(1e-3, 1.0).all() and proposed["hp_lr"].between(1e-5, 1e-2).all()
    assert proposed["trial_id"].str.contains("-search-t").all()
    study = json.loads((tmp_path / "t" / "study.json").read_text())
    assert (study["search"], study["early_stop"]) == ("tpe", "asha")
    # early_stopped says whether ASHA cut the trial short: exactly the ok rows that did not reach 60 steps
    # (Tune marks a stopped trial's last result done=True too, so that flag cannot tell)
    ok = df[df["status"] == "ok"]
    assert (ok["early_stopped"] == (ok["steps"] < 60)).all(), ok[["trial_id", "steps", "early_stopped"]]
