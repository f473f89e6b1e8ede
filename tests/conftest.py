"""Shared fixtures: an isolated cache, and helpers to run the real ``bench`` CLI: as a subprocess
(``run_bench``: what a user runs), or in this process (``run_cli``: the same ``bench.cli.main`` without
the ~4 s of starting Python and torch; for long lists of refused inputs, whose subprocess behaviour
tests/test_bad_inputs.py covers command by command)."""
from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = [sys.executable, "-m", "bench.cli"]

# Seconds each test file took in one measured run (2 cores, 2026-12-03): only the order in which
# `make test` hands files to its workers (longest first, so no long file starts last and leaves a
# worker idle; run with --no-loadscope-reorder). Never a timed assertion; a file not listed runs last.
FILE_SECONDS = {"test_reliability_storage": 240, "test_study": 179, "test_train": 163, "test_reliability": 210,
                "test_bad_inputs": 111, "test_plugins": 109, "test_metrics": 104, "test_reports": 93,
                "test_rescore": 90, "test_study_s3": 79, "test_api": 56, "test_score_cli": 39, "test_models": 36,
                "test_diagnose": 30, "test_health": 14, "test_tensorboard": 12, "test_causes": 5, "test_tricks": 100,
                "test_factor": 60, "test_conditional": 25, "test_results_store": 20, "test_driver": 10}


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: -FILE_SECONDS.get(Path(str(item.fspath)).stem, 0))  # stable: order within a file kept


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # One cache per test session (datasets and extractors are expensive to rebuild), never ~/.cache.
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("GAN_BENCH_CACHE", str(cache))


def run_bench(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    if env:
        e.update(env)
    return subprocess.run([*BENCH, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=e, timeout=timeout)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout: float, what: str) -> None:
    """Wait until ``server`` accepts connections on ``port``; fail if it exits or ``timeout`` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.time() < deadline and server.poll() is None, f"{what} did not start"
            time.sleep(0.2)


@contextlib.contextmanager
def two_node_cluster(env: dict):
    """A Ray cluster of two nodes on loopback, 1 CPU each (``ray start --block``, each in a session of
    its own); yields (the head's port, the second node's process). Both are stopped afterwards."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = free_port()
    temp = f"/tmp/ray-{port}"  # Ray's socket paths must stay short
    quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    procs = [subprocess.Popen([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                               "--num-cpus=1", f"--temp-dir={temp}", "--include-dashboard=false", "--block"], **quiet)]
    try:
        wait_for_port(port, procs[0], 60, "head")
        procs.append(subprocess.Popen([ray_bin, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                                       "--num-cpus=1", "--block"], **quiet))
        time.sleep(8)  # the second node registers with the head
        yield port, procs[1]
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its content (to prove that nothing was written)."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``bench ARGS`` through ``bench.cli.main`` in this process: exit status, stdout, stderr."""
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own complaints
            code = e.code
    return subprocess.CompletedProcess(["bench", *map(str, args)], code, out.getvalue(), err.getvalue())
