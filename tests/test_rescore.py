"""``bench rescore``: stored checkpoints re-scored as Ray tasks into ``scores.parquet``.

Studies are made by hand from real ``bench train`` runs (in-process ``train``) plus a results.parquet,
which is what ``bench run`` leaves (trials/<id>/checkpoints/step_*.pt, paths relative to the study).
One Ray head (``ray start``, its own cache directory) serves the module: the driver of this process
joins it once, so its workers are reused across calls; CLI subprocesses join it with --address, and
one CLI run uses the default private local Ray.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.errors import UsageError
from tests.conftest import BENCH, free_port, run_bench, tree_snapshot, wait_for_port

pytestmark = pytest.mark.slow

STEPS, EVERY, N_TRAIN = 40, 10, 200   # main study: 4 trials x 4 checkpoints, fid at 200 samples in training
MANY = 25                             # kill study: 2 trials x 25 checkpoints
P200 = "fid/identity/200-vs-test"
P400 = "fid/identity/400-vs-test"
RING = [[math.cos(2 * math.pi * k / 8) * 2, math.sin(2 * math.pi * k / 8) * 2] for k in range(8)]


# ---- studies made from real training runs ------------------------------------------------------


def _make_study(study_dir: Path, trials: list[tuple[str, int]], steps: int, every: int, metrics: list[str]) -> None:
    from bench.config import TrainConfig
    from bench.io import atomic_write_json
    from bench.run_dir import RunDir
    from bench.runner import summarize
    from bench.study import Study
    from bench.train import train

    study = Study(name=study_dir.name, datasets=["ring8"], losses=sorted({l for l, _ in trials}), budget=2, seeds=0,
                  steps=steps, eval_every=every, metrics=metrics, eval_samples=N_TRAIN)
    atomic_write_json(study_dir / "study.json", study.to_dict())
    rows = []
    for loss, cid in trials:
        tid = f"ring8-{loss}-mlp-search-c{cid:03d}"
        run = study_dir / "trials" / tid
        cfg = TrainConfig(dataset="ring8", loss=loss, arch="mlp", steps=steps, log_every=steps, ckpt_every=every,
                          seed=100 + cid, metrics=metrics, eval_samples=N_TRAIN, device="cpu")
        res = train(cfg, run)
        s = summarize(RunDir(run).scores())
        rows.append({"study": study.name, "dataset": "ring8", "loss": loss, "arch": "mlp", "phase": "search",
                     "trial_id": tid, "config_id": cid, "replicate": 0, "seed": 100 + cid, "status": "ok",
                     "steps": res.step, "fid": s["fid"], "fid_best": s["fid_best"], "best_step": s["best_step"],
                     "checkpoint": f"trials/{tid}/{res.checkpoint}",
                     "checkpoint_best": f"trials/{tid}/{s['checkpoint_best']}" if s["checkpoint_best"] else None,
                     "extractor": s["extractor"], "n_samples": s["n_samples"], "error": None, "hp_lr": 1e-4})
    pd.DataFrame(rows).to_parquet(study_dir / "results.parquet", index=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Two studies (main: 4 trials x 4 checkpoints; many: 2 trials x 40 checkpoints) and a Ray head."""
    import ray

    from bench.runner import init_ray

    base = tmp_path_factory.mktemp("rescore")
    saved = {k: os.environ.get(k) for k in ("GAN_BENCH_CACHE", "RAY_AUTH_MODE")}
    os.environ["GAN_BENCH_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")  # as tests.conftest
    os.environ["RAY_AUTH_MODE"] = "disabled"  # head, workers and drivers must agree
    port = free_port()
    worker_cache = base / "worker-cache"  # the cluster's own cache: shared statistics never reach it
    head_env = {**os.environ, "OMP_NUM_THREADS": "1", "GAN_BENCH_CACHE": str(worker_cache)}
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--num-cpus=2", f"--temp-dir=/tmp/ray-{port}",
                             "--include-dashboard=false", "--block"], env=head_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny MLPs: threads only contend (much slower on a busy machine)
    try:
        main, many = base / "main", base / "many"
        _make_study(main, [("ns", 0), ("ns", 1), ("ls", 0), ("ls", 1)], STEPS, EVERY, ["fid"])
        _make_study(many, [("ns", 0), ("ls", 0)], MANY, 1, [])
        wait_for_port(port, head, 90, "ray head")
        address = f"127.0.0.1:{port}"
        init_ray(address, False)
        yield {"main": main, "many": many, "base": base, "address": address, "worker_cache": worker_cache}
    finally:
        ray.shutdown()
        torch.set_num_threads(threads)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def _copy(env, name: str, new: str) -> Path:
    dst = env["base"] / new
    shutil.copytree(env[name], dst)
    return dst


def _scores(d: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(d / "scores.parquet")
    except (FileNotFoundError, OSError):
        return pd.DataFrame(columns=["trial_id", "step", "protocol", "metric"])


def _bench_env(env) -> dict:
    return {"RAY_AUTH_MODE": "disabled", "GAN_BENCH_CACHE": os.environ["GAN_BENCH_CACHE"]}


# ---- tests ---------------------------------------------------------------------------------------


def test_protocol_strings_round_trip():
    from bench.rescore import format_protocol, parse_protocol

    s = format_protocol("fid", "inception-v3-compat", "f58cb969" + "0" * 56, 10_000, "test")
    assert s == "fid/inception-v3-compat@f58cb969/10k-vs-test"
    p = parse_protocol(s)
    assert (p.metric, p.extractor, p.weights8, p.n_generated, p.split) == ("fid", "inception-v3-compat", "f58cb969", 10_000, "test")
    assert str(parse_protocol("kid_std/identity/1797-vs-train")) == "kid_std/identity/1797-vs-train"
    assert parse_protocol("modes/none/2k-vs-test").n_generated == 2000
    for bad in ("fid", "fid/identity/0-vs-test", "fid/identity/10k", "a/b/c/d"):
        with pytest.raises(UsageError, match="not a protocol"):
            parse_protocol(bad)


def test_rescore_twice_then_a_second_protocol_side_by_side(env):
    from bench.rescore import Options, rescore_study, results_for_protocol

    d = _copy(env, "main", "twice")
    s1 = rescore_study(d, Options(metrics=["fid"], samples=200, checkpoints="all", address=env["address"]))
    assert (s1.checkpoints, s1.scored, s1.already, s1.errors) == (16, 16, 0, [])
    assert s1.shared_reference and s1.worker_reference_computations == 0
    df = _scores(d)
    assert len(df) == 16 and set(df["protocol"]) == {P200} and (df["status"] == "ok").all()
    assert not df.duplicated(["trial_id", "step", "protocol"]).any()
    assert {"trial_id", "step", "checkpoint", "protocol", "metric", "value", "extractor", "weights_sha256", "n_generated",
            "n_real", "split", "status", "error", "scored_at", "dataset", "loss", "arch", "phase", "config_id", "seed",
            "source", "label"} <= set(df.columns)
    assert (df["n_generated"] == 200).all() and (df["n_real"] == 200).all() and (df["source"] == "study").all()
    # Same protocol as training (fid, 200 samples, seed 0, test split): the very same numbers.
    for r in df.itertuples():
        train_rows = [json.loads(x) for x in (d / "trials" / r.trial_id / "scores.jsonl").read_text().splitlines()]
        assert {t["step"]: t["fid"] for t in train_rows}[r.step] == pytest.approx(r.value, rel=1e-9, abs=1e-12)
    before = (d / "scores.parquet").read_bytes()

    # The second run (CLI) scores nothing new, starts no Ray and does not even rewrite the file.
    r = run_bench("rescore", d, "--metrics", "fid", "--samples", 200, "--checkpoints", "all", "--json",
                  env=_bench_env(env))
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert (out["scored"], out["already"], out["rows_added"], out["errors"]) == (0, 16, 0, [])
    assert (d / "scores.parquet").read_bytes() == before

    # A second protocol (400 samples) next to the first; earlier rows untouched.
    s2 = rescore_study(d, Options(metrics=["fid"], samples=400, checkpoints="all", address=env["address"]))
    assert (s2.scored, s2.already) == (16, 0)
    after = _scores(d)
    assert len(after) == 32 and after.groupby("protocol").size().to_dict() == {P200: 16, P400: 16}
    old = after[after["protocol"] == P200].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, _read_bytes(before))

    t = results_for_protocol(d, P400)
    assert len(t) == 4 and t["trial_id"].is_unique and (t["protocol"] == P400).all()
    for c in ("dataset", "loss", "arch", "phase", "config_id", "seed", "status", "fid", "fid_best", "best_step"):
        assert c in t.columns, c
    assert (t["fid_best"] <= t["fid"] + 1e-12).all() and (t["n_scored"] == 4).all()
    p400 = after[after["protocol"] == P400]
    for row in t.itertuples():
        vals = p400[p400["trial_id"] == row.trial_id].set_index("step")["value"]
        assert row.fid == vals[STEPS] and row.fid_best == vals.min()
    with pytest.raises(UsageError, match="several protocols"):
        results_for_protocol(d, "fid")
    with pytest.raises(UsageError, match="no scores for"):
        results_for_protocol(d, "fid/identity/999-vs-test")
    assert not (env["worker_cache"] / "reference").exists()  # tasks never computed nor cached the real side

    # `bench report --metric PROTOCOL` reports on the second protocol's scores.
    from bench.cli import main

    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["report", str(d), "--metric", P400, "--out", str(d / "report400"), "--no-samples",
                     "--resamples", "200", "--json"]) == 0
    (v,) = [v for v in json.loads(buf.getvalue())["verdicts"] if v["kind"] == "budget"]
    # k = B: the best of all configs, from the second protocol's scores (not the training-time ones)
    best = t.groupby("loss")["fid_best"].min()
    assert (v["loss"], v["budget"]) == ("ls", 2) and v["estimate"] == pytest.approx(best["ls"] - best["ns"], rel=1e-9)

def _read_bytes(b: bytes) -> pd.DataFrame:
    import io

    return pd.read_parquet(io.BytesIO(b))


@pytest.mark.reliability
def test_sigkilled_rescore_loses_nothing_and_finishes(env):
    from bench.rescore import Options, rescore_study

    d = _copy(env, "many", "killed")
    args = ["rescore", str(d), "--checkpoints", "all", "--metrics", "fid,kid", "--samples", "200",
            "--address", env["address"]]
    proc = subprocess.Popen([*BENCH, *args], env={**os.environ, "OMP_NUM_THREADS": "1", **_bench_env(env)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    try:
        while _scores(d).empty:
            assert proc.poll() is None and time.time() < deadline, "rescore ended before it could be killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = _scores(d)
    n = before[["trial_id", "step"]].drop_duplicates().shape[0]
    assert 0 < n < 2 * MANY and len(before) == 3 * n  # fid, kid, kid_std per checkpoint; killed mid-way
    s = rescore_study(d, Options(metrics=["fid", "kid"], samples=200, checkpoints="all", address=env["address"]))
    assert (s.scored, s.already, s.errors) == (2 * MANY - n, n, [])
    after = _scores(d)
    assert len(after) == 3 * 2 * MANY and not after.duplicated(["trial_id", "step", "protocol"]).any()
    assert sorted(after[after["metric"] == "fid"]["step"].tolist()) == sorted(list(range(1, MANY + 1)) * 2)
    kept = after.merge(before[["trial_id", "step", "protocol", "value", "scored_at"]], on=["trial_id", "step", "protocol"],
                       suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept["scored_at"] == kept["scored_at_before"]).all()
    assert ((kept["value"] == kept["value_before"]) | kept["value"].isna()).all()


class _Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(path: Path, marker: Path) -> None:
    from bench.checkpoint import FORMAT

    torch.save({"format": FORMAT, "G": _Evil(marker)}, path)


def test_corrupt_missing_and_malicious_checkpoints_are_error_rows(env, tmp_path):
    from bench.rescore import Options, rescore_study

    d = _copy(env, "main", "broken")
    res = pd.read_parquet(d / "results.parquet")
    corrupt, missing, evil = (d / res.loc[i, "checkpoint"] for i in range(3))
    data = missing.read_bytes()
    corrupt.write_bytes(corrupt.read_bytes()[:300])
    missing.unlink()
    marker = tmp_path / "pwned"
    _evil_checkpoint(evil, marker)
    # The payload is live: an unsafe load of the same kind of file runs it.
    probe, probe_marker = tmp_path / "probe.pt", tmp_path / "probe-ran"
    _evil_checkpoint(probe, probe_marker)
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(probe)!r}, weights_only=False)"], check=False,
                   capture_output=True, timeout=120)
    assert probe_marker.exists()

    # The CLI on the default private local Ray.
    r = run_bench("rescore", d, "--checkpoints", "all", "--metrics", "fid", "--samples", 200, "--json", timeout=400)
    assert r.returncode == 1, r.stderr[-3000:]
    assert not marker.exists()  # weights_only=True: the pickle never ran
    out = json.loads(r.stdout)
    assert out["scored"] == 13 and len(out["errors"]) == 3
    df = _scores(d)
    assert len(df) == 16 and not df.duplicated(["trial_id", "step", "protocol"]).any()
    errors = df[df["status"] == "error"].set_index("checkpoint")
    assert set(errors.index) == {str(p.relative_to(d)) for p in (corrupt, missing, evil)}
    assert "cannot read checkpoint" in errors.loc[str(corrupt.relative_to(d)), "error"]
    assert "checkpoint not found" in errors.loc[str(missing.relative_to(d)), "error"]
    assert "refusing to load" in errors.loc[str(evil.relative_to(d)), "error"]
    assert all("\n" not in e for e in errors["error"]) and errors["value"].isna().all()
    assert (df[df["status"] == "ok"]["value"].notna()).all()

    # Errors are not scores: the next rescore tries those checkpoints again, never the ok ones.
    missing.write_bytes(data)
    s = rescore_study(d, Options(metrics=["fid"], samples=200, checkpoints="all", address=env["address"]))
    assert (s.scored, len(s.errors), s.already) == (1, 2, 13)
    df2 = _scores(d)
    assert len(df2) == 16 and (df2["status"] == "error").sum() == 2
    assert not marker.exists()


class _RingGenerator(torch.nn.Module):
    """z ~ N(0, I) [N, 3] -> ring8: the mode from Phi(z_0), 0.02 * (z_1, z_2) around it."""

    def __init__(self, noise: float = 0.02):
        super().__init__()
        self.register_buffer("centres", torch.tensor(RING))
        self.noise = noise

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = (torch.special.ndtr(z[:, 0]) * 8).floor().clamp(0, 7).long()
        return self.centres[k] + self.noise * z[:, 1:3]


def _export(module: torch.nn.Module, path: Path) -> Path:
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(module, (torch.randn(16, 3),), dynamic_shapes={"z": {0: batch}}), path)
    return path


def test_external_generator_joins_the_leaderboard(env, tmp_path):
    from bench.rescore import Options, add_external, rescore_study, results_for_protocol

    d = _copy(env, "main", "external")
    gen = _export(_RingGenerator(), tmp_path / "ring.pt2")
    rescore_study(d, Options(metrics=["fid"], samples=200, checkpoints="final", address=env["address"]))
    ext = ["rescore", "--generator", gen, "--z-dim", 3, "--dataset", "ring8", "--label", "perfect", "--into", d,
           "--metrics", "fid", "--samples", 200]
    r = run_bench(*ext, "--json", env=_bench_env(env))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["scored"] == 1
    df = _scores(d)
    e = df[df["source"] == "external"]
    assert len(e) == 1 and e.iloc[0]["loss"] == "perfect" and e.iloc[0]["label"] == "perfect"
    assert e.iloc[0]["protocol"] == P200 and e.iloc[0]["trial_id"] == "external-perfect" and e.iloc[0]["step"] == 0
    again = add_external(d, gen, 3, "ring8", "perfect", Options(metrics=["fid"], samples=200))  # incremental too
    assert (again.scored, again.already) == (0, 1) and len(_scores(d)) == len(df)
    t = results_for_protocol(d, P200)
    assert len(t) == 5 and "fid_best" not in t.columns  # final checkpoints only
    row = t[t["loss"] == "perfect"].iloc[0]
    assert (row["source"], row["phase"], row["config_id"], row["status"]) == ("external", "seeds", 0, "ok")
    assert row["fid"] < 0.2 < t[t["source"] == "study"]["fid"].min()
    # Another file under the same label, or a label that is a study loss: refused.
    other = _export(_RingGenerator(noise=0.05), tmp_path / "other.pt2")
    with pytest.raises(UsageError, match="already names another generator"):
        add_external(d, other, 3, "ring8", "perfect", Options(metrics=["fid"], samples=200))
    assert len(_scores(d)) == len(df)


def _bad_cases(env, d: Path, digits: Path, gen: Path) -> dict[str, tuple[list, str]]:
    g = ["--generator", gen, "--z-dim", 3, "--dataset", "ring8", "--label", "x", "--into", d]
    return {
        "not a study": ([env["base"]], "not a study directory"),
        "no such dir": ([env["base"] / "nope"], "not a study directory"),
        "unknown metric": ([d, "--metrics", "fid,fjd"], "unknown metric 'fjd'"),
        "unknown extractor": ([d, "--feature-extractor", "vgg"], "unknown feature extractor 'vgg'"),
        "bad --checkpoints": ([d, "--checkpoints", "some"], "--checkpoints must be one of"),
        "samples zero": ([d, "--samples", 0], "--samples must be a positive integer"),
        "samples negative": ([d, "--samples", -5], "--samples must be a positive integer"),
        "bad split": ([d, "--split", "val"], "--split must be test or train"),
        "cpus zero": ([d, "--cpus-per-task", 0], "--cpus-per-task must be > 0"),
        "no cluster": ([d, "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
        "generator without label": ([a for a in g if a not in ("--label", "x")], "missing --label"),
        "generator without z-dim": ([*g[:2], *g[4:]], "missing --z-dim"),
        "generator without into": (g[:-2], "missing --into"),
        "z-dim without generator": ([d, "--z-dim", 3], "apply only with --generator"),
        "generator dataset not in study": ([*g[:5], "grid25", *g[6:]], "not a dataset of the study"),
        "generator label is a loss": ([*g[:7], "ns", *g[8:]], "is a loss of the study"),
        "no inception weights": ([digits, "--feature-extractor", "inception-v3-compat"], "weights-inception-2015-12-05"),
    }


def _cli(capsys, *args) -> tuple[int, str, str]:
    """``bench ARGS`` in this process (a subprocess costs a torch import): (status, stdout, stderr)."""
    from bench.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


# The rest in-process; "not a study" as a subprocess is in tests/test_bad_inputs.py.
SUBPROCESS = ("bad --checkpoints", "generator without label")


def test_bad_input_is_one_line_exit_2_and_nothing_written(env, tmp_path, capsys, monkeypatch):
    from bench.io import atomic_write_json
    from bench.study import Study

    d = _copy(env, "main", "bad")
    digits = tmp_path / "digits-study"
    atomic_write_json(digits / "study.json", Study(name="d", datasets=["digits"], losses=["ns"]).to_dict())
    pd.DataFrame(columns=["study", "dataset", "loss", "arch", "phase", "trial_id", "config_id", "replicate", "seed",
                          "status", "checkpoint", "checkpoint_best"]).to_parquet(digits / "results.parquet")
    gen = _export(_RingGenerator(), tmp_path / "g.pt2")
    cases = _bad_cases(env, d, digits, gen)
    before = {p: tree_snapshot(p) for p in (d, digits, env["base"] / "main")}
    e = {**_bench_env(env), "TORCH_HOME": str(tmp_path / "torch-home"), "GAN_BENCH_INCEPTION_WEIGHTS": ""}
    for k, v in e.items():
        monkeypatch.setenv(k, v)
    with ThreadPoolExecutor(3) as pool:
        sub = {n: pool.submit(run_bench, "rescore", *cases[n][0], env=e) for n in SUBPROCESS}
        results = {n: (r.returncode, r.stdout, r.stderr) for n, r in ((n, f.result()) for n, f in sub.items())}
    for name, (args, _) in cases.items():
        if name not in SUBPROCESS:
            results[name] = _cli(capsys, "rescore", *args)
    for name, (code, out, err) in results.items():
        lines = err.strip().splitlines()
        assert code == 2, (name, code, err[-2000:])
        assert len(lines) == 1 and "Traceback" not in err and out == "", (name, err)
        assert cases[name][1] in lines[0], (name, lines[0])
    assert {p: tree_snapshot(p) for p in before} == before
    assert not (tmp_path / "torch-home").exists()  # nothing was downloaded
