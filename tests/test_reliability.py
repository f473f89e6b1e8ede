"""Reliability: nothing a user ran is lost under kills, full or read-only storage, or load.

Run alone with ``pytest -m reliability``. Every test here drives the real CLI (or the real ledger) in
a subprocess and kills it with SIGKILL: no mocks. What each test checks after every kill:
the results are readable (and were whole at every moment a reader looked), every row recorded
before the kill is still there unchanged, no finished trial runs again, and no temporary file is left.
Part 2 (storage, diverged configs, load) is tests/test_reliability_storage.py.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.results import read
from tests.conftest import BENCH, run_bench

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
QUICK = ["--steps", "60", "--eval-every", "30", "--samples", "500"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# ---- helpers ---------------------------------------------------------------------------------


def _rows(path: Path) -> pd.DataFrame:
    return read(path)  # the standard empty table when there is no file yet


class Reader(threading.Thread):
    """Reads the study's results every 50 ms while a driver writes them; records any read that fails
    or any row that disappears."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.reads, self.problems, self.seen = path, 0, [], set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                ids = set(_rows(self.path)["trial_id"])
                self.reads += 1
                if not self.seen <= ids:
                    self.problems.append(f"rows vanished: {sorted(self.seen - ids)}")
                self.seen = ids
            except Exception as e:  # noqa: BLE001 - any failed read is the finding
                self.problems.append(repr(e))
            time.sleep(0.05)

    def stop(self) -> None:
        self.halt.set()
        self.join()


def _start(*args: str) -> subprocess.Popen:
    # A session of its own: killing its process group takes Ray's processes too, like a lost machine.
    return subprocess.Popen([*BENCH, *map(str, args)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(1)  # let the kernel reap them and release the study lock


def _wait(proc: subprocess.Popen, until, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not until():
        assert proc.poll() is None, f"the driver ended before {what}: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stale_tmp(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp") if "ray" not in p.relative_to(root).parts]


def _finished_run_files(study: Path, trial_ids) -> dict[str, float]:
    """mtime of every file of the given trials' run directories (a re-run would touch them)."""
    out = {}
    for t in trial_ids:
        for p in (study / "trials" / t).rglob("*"):
            if p.is_file():
                out[str(p)] = p.stat().st_mtime_ns
    return out


# ---- the driver killed at every phase --------------------------------------------------------


def test_driver_sigkilled_at_every_phase_loses_nothing_and_reruns_nothing(tmp_path):
    """Kills: before any trial has finished, mid-search, during the seeds phase; then resume to the end."""
    study = tmp_path / "k"
    results = study
    trials = study / "trials"
    reader = Reader(results)
    reader.start()
    kept: list[pd.DataFrame] = []
    try:
        # 1. before the first trial finishes (it has checkpointed: it is under way)
        proc = _start("run", "--budget", "3", "--dataset", "ring8", "--losses", "ns", "--seeds", "1", *QUICK,
                      "--storage", tmp_path, "--name", "k")
        _wait(proc, lambda: any(trials.glob("*/checkpoints/step_*.pt")), "a first checkpoint")
        assert len(_rows(results)) == 0
        _kill(proc)
        # 2. mid-search: at least one new row, the search not done
        proc = _start("resume", study)
        _wait(proc, lambda: len(_rows(results)) >= 1, "a first row")
        _kill(proc)
        kept.append(_rows(results))
        assert 1 <= len(kept[-1]) < 3 and set(kept[-1]["phase"]) == {"search"}
        # 3. during the seeds phase: a seed trial is under way
        proc = _start("resume", study)
        _wait(proc, lambda: any(trials.glob("*-seeds-*/checkpoints/step_*.pt")), "the seeds phase")
        _kill(proc)
        kept.append(_rows(results))
        assert (kept[-1]["phase"] == "search").sum() == 3
        before_last = _finished_run_files(study, kept[-1]["trial_id"])
        # 4. resume to the end
        r = run_bench("resume", study, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    finally:
        reader.stop()
    final = read(study)
    assert len(final) == 4 and final["trial_id"].is_unique
    assert sorted(final.loc[final["phase"] == "search", "config_id"]) == [0, 1, 2]
    assert list(final.loc[final["phase"] == "seeds", "replicate"]) == [0]
    for before in kept:  # every row recorded before a kill, unchanged
        again = final.set_index("trial_id").loc[before["trial_id"]].reset_index()[before.columns]
        pd.testing.assert_frame_equal(again, before, check_dtype=False)
    assert _finished_run_files(study, kept[-1]["trial_id"]) == before_last  # finished trials were not re-run
    assert _stale_tmp(study) == []  # the killed writers' temporary files were removed on resume
    assert reader.problems == [] and reader.reads > 20


# ---- a trial's worker killed -----------------------------------------------------------------


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root`` (this study's Ray, not another test's)."""
    parent, cmd = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = {}, [root]
    while frontier:
        p = frontier.pop()
        for child, pp in parent.items():
            if pp == p and child not in found:
                found[child] = cmd.get(child, "")
                frontier.append(child)
    return found


def _trial_workers(root: int) -> list[int]:
    """The Tune trial workers below process ``root`` (a driver, or a cluster node)."""
    return [pid for pid, cmd in _descendants(root).items() if cmd.startswith("ray::ImplicitFunc")]


def test_sigkilled_worker_restarts_its_trial_from_the_last_checkpoint(tmp_path):
    study = tmp_path / "w"
    run_dir = study / "trials" / "ring8-ns-mlp-search-c000"
    first = run_dir / "checkpoints" / "step_00000100.pt"
    proc = _start("run", "--budget", "1", "--dataset", "ring8", "--losses", "ns", "--seeds", "0", "--steps", "300",
                  "--eval-every", "100", "--samples", "300", "--storage", tmp_path, "--name", "w")
    try:
        _wait(proc, first.exists, "the first checkpoint")
        stamp = first.stat().st_mtime_ns
        workers = _trial_workers(proc.pid)
        assert workers, "no Tune worker process found"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    finally:
        if proc.poll() is None:
            _kill(proc)
    row = read(study).iloc[0]
    assert (row["status"], row["steps"]) == ("ok", 300)
    assert first.stat().st_mtime_ns == stamp  # step 100 was not trained (or saved) again
    # The restarted attempt wrote later checkpoints after the kill; the log has every step once.
    import json
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 300
    assert (run_dir / "checkpoints" / "step_00000300.pt").stat().st_mtime > killed_at


# ---- the results store killed mid-append and mid-merge ---------------------------------------

WRITER = """
import os, sys, time
from bench.results import Ledger
from bench import results_store
def pause():
    print("inside", flush=True)
    time.sleep(60)
if sys.argv[2] == "append":  # stop inside the next part's write: its temporary file written, not renamed
    real_fsync = os.fsync
    def fsync(fd):
        real_fsync(fd)
        pause()
    os.fsync = fsync
if sys.argv[2] == "merge":  # stop inside the next merge: the merged part written, its inputs not yet deleted
    real_delete = results_store.LocalFolder.delete
    results_store.LocalFolder.delete = lambda self, name: pause() if name.startswith("part-") else real_delete(self, name)
ledger = Ledger(sys.argv[1])
i = len(ledger)
while True:
    ledger.add({"study": "s", "trial_id": f"t{i:05d}", "config_id": i, "fid": float(i), "error": "x" * 200})
    print(i, flush=True)
    i += 1
"""


def _parts(study: Path) -> list[str]:
    return sorted(p.name for p in (study / "results").iterdir())


def test_results_survive_sigkill_mid_append_and_mid_merge(tmp_path):
    """A driver killed while it appends a part or merges parts: the table is the old or the new one,
    never a torn one, no row reported written is lost or doubled, and the next driver tidies what the
    kill left (a temporary file; a merge's inputs). Some kills land at random moments, the others
    inside an append or a merge for certain (the writer pauses there; the kill is the same SIGKILL)."""
    from bench.results_store import live

    rng = random.Random(0)
    reported = 0
    for kill in range(12):
        mode = ("run", "append", "merge")[kill % 3]
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), mode],
                                stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
                                env={**ENV, "PYTHONPATH": "."})
        if mode == "run":
            for _ in range(rng.randint(5, 40) if kill else 200):  # the first run grows the table
                reported = int(proc.stdout.readline()) + 1
            time.sleep(rng.random() * 0.005)
        else:
            while (line := proc.stdout.readline().strip()) != "inside":
                reported = int(line) + 1
        proc.kill()
        proc.wait()
        df = read(tmp_path)  # readable after every kill
        assert list(df["trial_id"]) == [f"t{i:05d}" for i in range(len(df))]  # no row lost, none twice
        if mode == "append":  # the cut append left only its temporary file: the table is the previous one
            assert len(df) == reported and any(n.endswith(".tmp") for n in _parts(tmp_path))
        else:
            assert len(df) >= reported
        if mode == "merge":  # merged part and its inputs side by side: the reader took each row once
            names = _parts(tmp_path)
            assert len(live(names)) < len([n for n in names if n.startswith("part-")])
            # the append before the merge was durable (or, when an earlier kill fell between an append
            # and its merge, the merge is the one a writer catches up on when it opens the store)
            assert len(df) in (reported, reported + 1)
        reported = len(df)
    assert len(live(_parts(tmp_path))) <= 3 * 7  # tiers merged as they filled (8 per tier, ~1,000 appends)
    from bench.results import Ledger

    Ledger(tmp_path)  # the next driver tidies what the kills left
    names = _parts(tmp_path)
    assert live(names) is not None and len(live(names)) == len(names), names  # no temporary file, no merged inputs
    assert list(read(tmp_path)["trial_id"]) == [f"t{i:05d}" for i in range(reported)]


def test_results_reads_are_whole_tables_while_parts_are_appended_and_merged(tmp_path):
    """``bench.results.read`` (used by status, report, rescore and resume) reads each part through one
    open and lists again when a merge deleted a part under it, so it never mixes two versions or
    returns a row twice, while the writer appends and merges (every 8th append merges at least once)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "run"], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent.parent, env={**ENV, "PYTHONPATH": "."})
    try:
        while int(proc.stdout.readline()) < 100:
            pass
        reads, t0 = 0, time.time()
        while time.time() - t0 < 5:
            df = read(tmp_path)
            assert list(df["trial_id"]) == [f"t{i:05d}" for i in range(len(df))]
            reads += 1
        assert proc.poll() is None and reads > 50  # the writer was rewriting all along
    finally:
        proc.kill()
        proc.wait()


# ---- a lost node -----------------------------------------------------------------------------


def test_a_lost_node_s_trial_is_rerun_elsewhere_from_its_last_checkpoint(tmp_path):
    """A two-node loopback cluster; mid-study the second node's raylet and workers are SIGKILLed
    (a lost machine). The trial it ran is restarted on the head from its last checkpoint (Tune's
    FailureConfig), the study finishes without `bench resume`, and every trial is recorded once."""
    from tests.conftest import two_node_cluster

    # Fast node-death detection (Ray's default takes ~30 s to declare a node dead); no token auth.
    env = {**ENV, "RAY_AUTH_MODE": "disabled", "RAY_health_check_period_ms": "1000",
           "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    study = tmp_path / "n"
    with two_node_cluster(env) as (port, node):
        driver = subprocess.Popen([*BENCH, "run", "--budget", "2", "--dataset", "ring8", "--losses", "ns", "--seeds", "0",
                                   "--steps", "900", "--eval-every", "150", "--samples", "300", "--storage", str(tmp_path),
                                   "--name", "n", "--address", f"127.0.0.1:{port}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _wait(driver, lambda: _trial_workers(node.pid) and len(list(study.glob("trials/*/checkpoints/step_*.pt"))) >= 2,
                  "checkpoints of trials on both nodes")
            before = {p: p.stat().st_mtime_ns for p in study.glob("trials/*/checkpoints/step_*.pt")}
            for pid in [node.pid, *_descendants(node.pid)]:  # the node's raylet, its workers, everything below
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed_at = time.time()
            assert driver.wait(timeout=600) == 0, driver.stderr.read()[-3000:]
        finally:
            if driver.poll() is None:
                _kill(driver)
    df = read(study)
    assert len(df) == 2 and df["trial_id"].is_unique and (df["status"] == "ok").all() and (df["steps"] == 900).all()
    assert df["node"].nunique() == 1  # both finished on the head: the other node is gone
    for ck, stamp in before.items():  # nothing trained before the kill was trained again
        assert ck.stat().st_mtime_ns == stamp, ck
    import json

    for run in (study / "trials").glob("*"):
        steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == 900  # every step logged once
    print(f"\nlost node: study finished {time.time() - killed_at:.0f} s after the kill")
