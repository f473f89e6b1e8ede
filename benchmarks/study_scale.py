"""A study of many one-step ring8 trials through the real CLI: wall time per trial as the study
grows, and the driver's memory.

    python benchmarks/study_scale.py [--trials 2000] [--concurrent 2]

`bench run --budget N/2 --losses ns,hinge --seeds 0 --steps 1` (W1 on 200 samples) on a private local
Ray, in a temporary directory. Every 0.5 s the driver's VmRSS and VmHWM are read from /proc and the
rows recorded counted (``bench.results.read``). Printed: wall seconds per trial over the second and
the last quarter of the rows (their ratio: a driver whose cost per trial grows shows it), the
driver's peak memory, and that every trial is in the table exactly once.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--concurrent", type=int, default=2)
    args = ap.parse_args()
    from benchmarks.common import machine
    from bench.results import read

    budget = args.trials // 2
    bench = [str(Path(sys.executable).parent / "bench")]
    print(f"machine: {machine()}\n{2 * budget} one-step ring8 trials, {args.concurrent} at a time")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([*bench, "run", "--budget", str(budget), "--dataset", "ring8", "--losses", "ns,hinge",
                                 "--seeds", "0", "--steps", "1", "--eval-every", "1", "--samples", "200", "--metrics", "w1",
                                 "--max-concurrent", str(args.concurrent), "--storage", tmp, "--name", "scale"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        t0, when, peak, rss = time.time(), {}, 0, {}
        while proc.poll() is None:
            peak = max(peak, kib(proc.pid, "VmHWM") or 0)
            n = len(read(Path(tmp) / "scale"))
            when.setdefault(n, time.time() - t0)
            rss.setdefault(n, kib(proc.pid, "VmRSS") or 0)
            time.sleep(0.5)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"bench run failed: {proc.stderr.read()[-2000:]}")
        df = read(Path(tmp) / "scale")
    total = 2 * budget
    assert len(df) == total and df["trial_id"].is_unique, (len(df), df["trial_id"].duplicated().sum())
    marks = sorted(when)

    def at(frac: float) -> tuple[int, float]:
        n = min(marks, key=lambda m: abs(m - frac * total))
        return n, when[n]

    (n1, t1), (n2, t2), (n3, t3), (n4, t4) = at(0.25), at(0.5), at(0.75), at(1.0)  # from 25%: start-up excluded
    first, last = (t2 - t1) / max(n2 - n1, 1), (t4 - t3) / max(n4 - n3, 1)
    print(f"rows: {len(df):,}, each trial once; wall {wall:.0f} s ({wall / total:.3f} s per trial, start-up included)")
    print(f"s per trial: rows 25-50% {first:.3f}, rows 75-100% {last:.3f}, ratio {last / first:.2f}")
    r1, r2 = rss[min(rss, key=lambda m: abs(m - 0.25 * total))], rss[max(rss)]
    print(f"driver: peak {peak / 1024:.0f} MiB (VmHWM), RSS {r1 / 1024:.0f} MiB at a quarter, {r2 / 1024:.0f} MiB at the end")


if __name__ == "__main__":
    main()
