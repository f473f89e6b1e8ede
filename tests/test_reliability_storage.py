"""Reliability, part 2: storage that fills up or turns read-only, diverged configs, and load.

Part 1 (kills) and the conventions are in tests/test_reliability.py. The storage test mounts a small
tmpfs (root only; skipped elsewhere with the reason).
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.results import read
from tests.conftest import run_bench
from tests.test_reliability import QUICK, _rows, _stale_tmp, _start, _wait

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


# ---- storage that fills up, then turns read-only ---------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 3 MB tmpfs (one trial of ring8 needs ~1.6 MB: two checkpoints and Tune's copy)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _remount(mnt: Path, opts: str) -> None:
    for _ in range(50):  # EBUSY while a file is open for writing: retry
        if subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"could not remount {mnt} {opts}")


def test_full_then_read_only_storage_stops_cleanly_and_resume_finishes(small_fs):
    study = small_fs / "s"

    # 1. the storage fills up: one line, exit 1, the trials that fit are recorded, no half-written file
    r = run_bench("run", "--budget", "4", "--dataset", "ring8", "--losses", "ns", "--seeds", "0", *QUICK,
                  "--storage", small_fs, "--name", "s", timeout=600)
    assert r.returncode == 1, r.stderr[-3000:]
    assert r.stderr.count("\n") == 1 and "No space left on device" in r.stderr and "Traceback" not in r.stderr
    full = _rows(study)
    assert len(full) < 4 and set(full["status"]) <= {"ok"}  # a trial that could not save is not a "failed" row
    assert _stale_tmp(study) == []
    # 2. more space; the storage turns read-only while the study runs
    _remount(small_fs, "size=64m")
    proc = _start("resume", study)
    _wait(proc, lambda: len(_rows(study)) > len(full), "a new row")
    _remount(small_fs, "ro")
    assert proc.wait(timeout=300) == 1
    err = proc.stderr.read()
    assert err.count("\n") == 1 and "Read-only file system" in err, err[-3000:]
    frozen = _rows(study)
    assert len(full) < len(frozen) <= 4
    # 3. writable again: resume finishes, every earlier row unchanged, each trial once
    _remount(small_fs, "rw")
    r = run_bench("resume", study, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    final = read(study)
    assert sorted(final["config_id"]) == [0, 1, 2, 3] and (final["status"] == "ok").all()
    again = final.set_index("trial_id").loc[frozen["trial_id"]].reset_index()[frozen.columns]
    pd.testing.assert_frame_equal(again, frozen, check_dtype=False)
    assert _stale_tmp(study) == []


# ---- load ------------------------------------------------------------------------------------

LOAD_TRIALS = int(os.environ.get("GAN_BENCH_LOAD_TRIALS", "200"))


def _kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_load_many_tiny_trials_all_recorded_with_bounded_driver_memory(tmp_path):
    """LOAD_TRIALS (200) tiny ring8 trials on the local Ray: every one a row; the driver's peak
    memory (VmHWM) is printed, bounded, and does not grow with the number of finished trials."""
    study = tmp_path / "load"
    proc = _start("run", "--budget", LOAD_TRIALS, "--dataset", "ring8", "--losses", "ns", "--seeds", "0",
                  "--steps", "10", "--eval-every", "10", "--metrics", "fid", "--samples", "200",
                  "--storage", tmp_path, "--name", "load")
    rss_at: dict[int, int] = {}  # rows finished -> driver RSS (KiB)
    peak = 0
    t0 = time.time()
    while proc.poll() is None:
        peak = max(peak, _kib(proc.pid, "VmHWM") or 0)
        rss = _kib(proc.pid, "VmRSS")
        if rss:
            rss_at.setdefault(len(_rows(study)), rss)
        assert time.time() - t0 < 3600, "load test took over an hour"
        time.sleep(0.5)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stderr.read()[-3000:]
    df = read(study)
    assert len(df) == LOAD_TRIALS and df["trial_id"].is_unique and (df["status"] == "ok").all()
    quarter = min((n for n in rss_at if n >= LOAD_TRIALS // 4), default=None)
    last = max(rss_at)
    growth_mib = (rss_at[last] - rss_at[quarter]) / 1024 if quarter is not None else 0.0
    print(f"\nload: {LOAD_TRIALS} trials, 0 lost, {wall:.0f} s ({wall / LOAD_TRIALS:.2f} s/trial), driver peak "
          f"{peak / 1024:.0f} MiB, RSS growth from trial {quarter} to {last}: {growth_mib:+.0f} MiB")
    assert peak < 3 * 1024 * 1024, f"driver peak {peak / 1024:.0f} MiB"
    assert growth_mib < 200, f"driver memory grew {growth_mib:.0f} MiB over {last - quarter} trials"


# ---- configs that diverge --------------------------------------------------------------------


def test_diverged_configs_are_rows_and_the_report_counts_them(tmp_path):
    """A space whose learning rates are absurd (1e10-1e12): LS's squares overflow and config 1 of ls
    diverges, NS's logits stay finite (a bad but finite FID); config 0, the published defaults, trains.
    Diverged trials are rows, and `bench status` and the report count them."""
    space = tmp_path / "explode.toml"
    space.write_text('extends = "lucic-narrow"\n[params]\nlr = { dist = "loguniform", low = 1e10, high = 1e12 }\n'
                     'beta1 = { dist = "fixed", value = 0.0 }\n')
    r = run_bench("run", "--budget", "2", "--dataset", "ring8", "--losses", "ns,ls", "--space", space, "--seeds", "0",
                  *QUICK, "--storage", tmp_path, "--name", "d", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    df = read(tmp_path / "d").sort_values(["loss", "config_id"])
    assert list(df["status"]) == ["ok", "diverged", "ok", "ok"]  # ls c0, ls c1, ns c0, ns c1
    assert df.loc[df["status"] == "diverged", "hp_lr"].min() >= 1e10
    assert df["fid_best"].isna().tolist() == [False, True, False, False]
    status = run_bench("status", tmp_path / "d").stdout.splitlines()  # cell phase done expected ok diverged failed best
    assert status[0].split()[:7] == ["cell", "phase", "done", "expected", "ok", "diverged", "failed"]
    search = {line.split()[0]: line.split()[1:7] for line in status[1:] if line.split()[1] == "search"}
    assert search == {"ring8/ls/mlp": ["search", "2", "2", "1", "1", "0"], "ring8/ns/mlp": ["search", "2", "2", "2", "0", "0"]}
    r = run_bench("report", tmp_path / "d", "--json", "--resamples", "100")
    assert r.returncode == 0, r.stderr[-3000:]
    board = (tmp_path / "d" / "report" / "leaderboard.md").read_text()
    assert board.count("1 diverged") == 1 and "| ls |" in board, board
