"""Studies on S3 (``bench run --storage s3://...``) against a real S3 server: moto's, as a subprocess
on a loopback port, with a real local Ray and the real CLI as a subprocess.

What a cluster without a shared filesystem needs: the driver and the trials reach the study only
through S3 (trials train in local scratch and upload their run directories), the ledger read back
from S3 is whole and names checkpoints that are there, and a driver on another machine (an empty
working copy) can `bench status` and `bench resume` the study from its URI alone.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Iterator

import pandas as pd
import pytest

from tests.conftest import free_port, run_bench, run_cli, wait_for_port

pytestmark = pytest.mark.slow
pafs = pytest.importorskip("pyarrow.fs")
pytest.importorskip("moto.server", reason="moto[server] (the dev extras) runs the S3 server these tests use")

QUICK = ["--steps", "60", "--eval-every", "30", "--samples", "500"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
BUCKET = "bench"
# Trials' scratch is <tmp>/gan-bench/<hash of bucket/path>/: a prefix of this session's own keeps two
# test sessions on one machine (each with its own moto server) out of each other's scratch.
PREFIX = f"x-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port holding one empty bucket; its endpoint URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, server, 30, "moto server")
        url = f"http://127.0.0.1:{port}"
        _fs(url, allow_bucket_creation=True).create_dir(BUCKET)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture
def s3_env(monkeypatch, tmp_path) -> dict[str, str]:
    """Credentials for the moto server, and a cache of this test's own (the drivers' working copies)."""
    env = {**CREDENTIALS, "GAN_BENCH_CACHE": str(tmp_path / "cache")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return env


def _fs(url: str, **kw):
    return pafs.S3FileSystem(endpoint_override=url, scheme="http", region="us-east-1",
                             access_key="testing", secret_key="testing", **kw)


def _uri(url: str, path: str) -> str:
    return f"s3://{BUCKET}/{path}?endpoint_override={url}&scheme=http"


def _objects(url: str, prefix: str = "") -> dict[str, int]:
    """Every object under ``bench/<prefix>`` with its size (directory markers left out)."""
    infos = _fs(url).get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}".rstrip("/"), recursive=True,
                                                     allow_not_found=True))
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


def _read(url: str, key: str) -> bytes:
    with _fs(url).open_input_stream(f"{BUCKET}/{key}") as f:
        return f.read()


def _results(url: str) -> pd.DataFrame:
    """The study's results as read from S3 alone (``bench.results.read`` of its URI)."""
    from bench.results import read

    return read(_uri(url, f"{PREFIX}/s"))


def _write(url: str, key: str, data: bytes) -> None:
    with _fs(url).open_output_stream(f"{BUCKET}/{key}") as f:
        f.write(data)


def test_study_on_s3_runs_and_resumes_from_its_uri(endpoint, s3_env, tmp_path, monkeypatch):
    t0 = time.time()
    r = run_bench("run", "--budget", "2", "--seeds", "0", "--dataset", "ring8", "--losses", "ns", *QUICK,
                  "--storage", _uri(endpoint, PREFIX), "--name", "s", cwd=tmp_path, env=s3_env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"results: s3://bench/{PREFIX}/s (2 rows" in r.stdout
    ran = time.time() - t0

    # The durable study: study.json, a whole ledger, and every row's run directory and checkpoints.
    objects = _objects(endpoint, f"{PREFIX}/s")
    df = _results(endpoint)
    assert not any(o.endswith("results.parquet") for o in objects)
    assert sorted(o.rsplit("/", 1)[1] for o in objects if "/s/results/" in o) == [
        "part-000000000-000000000.parquet", "part-000000001-000000001.parquet"]  # one small object per trial
    assert len(df) == 2 and df["trial_id"].is_unique and (df["status"] == "ok").all()
    assert df["fid_best"].notna().all() and (df["steps"] == 60).all()
    for _, row in df.iterrows():
        for ck in (row["checkpoint"], row["checkpoint_best"]):
            assert ck.startswith(f"trials/{row['trial_id']}/checkpoints/step_") and f"bench/{PREFIX}/s/{ck}" in objects
        for name in ("config.json", "metrics.jsonl", "scores.jsonl", "record.json"):
            assert f"bench/{PREFIX}/s/trials/{row['trial_id']}/{name}" in objects
        assert b'"status": "ok"' in _read(endpoint, f"{PREFIX}/s/trials/{row['trial_id']}/record.json")
    assert f"bench/{PREFIX}/s/study.json" in objects
    assert not list(tmp_path.glob("s3*")), "a URI must not become a local directory"
    from bench.storage import TrialMirror

    scratch = TrialMirror(_uri(endpoint, f"{PREFIX}/s"), "any").local.parent
    assert not scratch.exists(), "finished trials leave no scratch on their node"

    # Another machine: no working copy, the endpoint from AWS_ENDPOINT_URL. The ledger is a study's
    # made before the parts store (one results.parquet) and lost its last row (as if the first
    # driver died before uploading it): status reads it; resume turns it into part 0 and re-runs
    # exactly the lost trial, which finds its finished run directory on S3 (nothing retrained).
    env2 = {**s3_env, "GAN_BENCH_CACHE": str(tmp_path / "cache2"), "AWS_ENDPOINT_URL": endpoint}
    lost = df.iloc[-1]
    _fs(endpoint).delete_dir_contents(f"{BUCKET}/{PREFIX}/s/results")
    _write(endpoint, f"{PREFIX}/s/results.parquet", _parquet(df.iloc[:-1]))
    ck_before = _objects(endpoint, f"{PREFIX}/s/trials/{lost['trial_id']}")
    for k in ("GAN_BENCH_CACHE", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(k, env2[k])
    st = run_cli("status", f"s3://bench/{PREFIX}/s")
    assert st.returncode == 0, st.stderr
    assert st.stdout.split("\n")[1].split()[:4] == ["ring8/ns/mlp", "search", "1", "2"], st.stdout
    t1 = time.time()
    r = run_bench("resume", f"s3://bench/{PREFIX}/s", env=env2, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = time.time() - t1
    again = _results(endpoint)
    assert sorted(again["trial_id"]) == sorted(df["trial_id"])
    left = {o.rsplit("/s/", 1)[1] for o in _objects(endpoint, f"{PREFIX}/s") if "/trials/" not in o}
    assert {o for o in left if o.startswith("results")} == {
        "results/part-000000000-000000000.parquet", "results/part-000000001-000000001.parquet"}  # migrated
    back = again[again["trial_id"] == lost["trial_id"]].iloc[0]
    assert (back["fid_best"], back["checkpoint"], back["steps"]) == (lost["fid_best"], lost["checkpoint"], 60)
    pd.testing.assert_frame_equal(again.iloc[:-1], df.iloc[:-1])  # earlier rows unchanged
    assert _objects(endpoint, f"{PREFIX}/s/trials/{lost['trial_id']}") == ck_before  # no new checkpoint: not retrained
    print(f"\ns3 study: run {ran:.1f} s, resume {resumed:.1f} s")

    # The same --name with another definition is refused, and the study on S3 is unchanged.
    before = _objects(endpoint, f"{PREFIX}/s")
    r = run_cli("run", "--budget", "3", "--seeds", "0", "--dataset", "ring8", "--losses", "ns", *QUICK,
                "--storage", _uri(endpoint, PREFIX), "--name", "s")
    assert r.returncode == 2 and f"s3://bench/{PREFIX}/s holds another study" in r.stderr, r.stderr
    assert _objects(endpoint, f"{PREFIX}/s") == before


class _NodeLost(Exception):
    """Raised from the checkpoint hook: the node dies right after uploading that checkpoint."""


def test_a_trial_restarted_on_another_node_resumes_from_what_it_uploaded(endpoint, s3_env, tmp_path, monkeypatch):
    import json
    import tempfile

    import torch

    from bench.callbacks import Callback
    from bench.config import TrainConfig
    from bench.storage import TrialMirror
    from bench.train import train

    cfg = TrainConfig(dataset="ring8", loss="ns", arch="mlp", steps=60, log_every=10, ckpt_every=20,
                      metrics=["fid"], eval_samples=300)
    study = _uri(endpoint, "m/s")

    def on_node(name: str) -> TrialMirror:  # the trial's scratch on another machine
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / name))
        return TrialMirror(study, "t")

    a = on_node("node-a")
    a.pull()  # nothing uploaded yet: a fresh run

    class NodeDies(Callback):  # after the mirror has pushed the checkpoint at step 40
        def on_checkpoint(self, event):
            if event.step == 40:
                raise _NodeLost

    with pytest.raises(_NodeLost):
        train(cfg, a.local, callbacks=[a, NodeDies()])

    b = on_node("node-b")
    b.pull()
    assert sorted(p.name for p in (b.local / "checkpoints").iterdir()) == ["step_00000040.pt"]
    result = train(cfg, b.local, callbacks=[b])  # the mirror pushes every checkpoint and, at the end, the record
    assert (result.status, result.step) == ("ok", 60)
    assert not b.local.exists()  # then frees the node's scratch

    # What S3 holds is the run an uninterrupted trial makes: the same weights, losses and scores.
    whole = tmp_path / "whole"
    train(cfg, whole)
    uploaded = tmp_path / "uploaded"
    for key, _ in _objects(endpoint, "m/s/trials/t").items():
        rel = key.removeprefix("bench/m/s/trials/t/")
        (uploaded / rel).parent.mkdir(parents=True, exist_ok=True)
        (uploaded / rel).write_bytes(_read(endpoint, key.removeprefix("bench/")))
    assert sorted(p.name for p in (uploaded / "checkpoints").iterdir()) == [
        "step_00000020.pt", "step_00000040.pt", "step_00000060.pt"]
    for a_ck, w_ck in ((uploaded / "checkpoints/step_00000060.pt", whole / "checkpoints/step_00000060.pt"),):
        x, y = torch.load(a_ck, weights_only=True), torch.load(w_ck, weights_only=True)
        for part in ("G", "D"):
            assert all(torch.equal(x[part][k], y[part][k]) for k in y[part]), part

    def rows(run, name, *keys):
        return [tuple(r[k] for k in keys) for r in map(json.loads, (run / name).read_text().splitlines())]

    assert rows(uploaded, "metrics.jsonl", "step", "d_loss", "g_loss") == rows(whole, "metrics.jsonl", "step", "d_loss", "g_loss")
    assert rows(uploaded, "scores.jsonl", "step", "fid") == rows(whole, "scores.jsonl", "step", "fid")
    assert json.loads((uploaded / "record.json").read_text())["status"] == "ok"


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _bad(endpoint: str) -> list[tuple[list[str], str]]:
    run = ["run", "--budget", "1", "--dataset", "ring8", "--losses", "ns", "--storage"]
    return [
        ([*run, "gs://bench/x"], "gs:// is not supported"),
        ([*run, "http://127.0.0.1/x"], "http:// is not supported"),
        ([*run, f"s3://no-such-bucket/x?endpoint_override={endpoint}&scheme=http"], "bucket 'no-such-bucket' does not exist"),
        ([*run, f"s3://bench/x?endpoint_override={endpoint}&colour=blue"], "Unexpected query parameter"),
        ([*run, "s3://bench/x?endpoint_override=http://127.0.0.1:1&scheme=http"], "cannot reach S3"),
        (["status", f"s3://bench/nothing-here?endpoint_override={endpoint}&scheme=http"], "not a study directory"),
        (["resume", "gs://bench/x/s"], "gs:// is not supported"),
        (["report", "s3://bench/x/s"], "aws s3 sync s3://bench/x/s ./s"),
        (["rescore", "s3://bench/x/s"], "reads a study from a local directory"),
    ]


def test_bad_s3_input_is_one_line_and_writes_nothing(endpoint, s3_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _objects(endpoint)
    for args, needle in _bad(endpoint):
        r = run_cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert _objects(endpoint) == before
    assert not any(tmp_path.iterdir()), sorted(tmp_path.iterdir())  # no cache, no local "s3:" directory
