"""The driver's cost per recorded trial at 1,000 and at 50,000 rows, side by side in one run.

    python benchmarks/ledger_scale.py [--appends 512] [--sizes 1000,50000] [--no-s3]

For each size N a study's results store is put in the state N single-trial appends leave
(``bench.results_store``: one part per base-8 digit unit of N), then ``--appends`` more realistic
rows (the columns ``bench.runner.make_row`` writes, hp columns included) are recorded through
``bench.results.Ledger.add`` plus the progress line the driver prints, and timed. 512 appends
(8^3) include their share of merges of tiers 0 to 2; a merge of a tier above happens once per
4,096 appends or more and costs a whole rewrite of that tier's rows (at 50,000 rows under a second,
so under 0.3 ms per append amortised). Printed: ms per trial at each N and ``ratio`` (largest N /
smallest; target <= 1.5), for local storage and for S3 (a moto server on a loopback port, as the
tests use: every part is one PUT, a merge one PUT and eight DELETEs). For reference, the ledger
before the parts store (the whole table rewritten per trial) is timed at the same sizes on fewer
appends.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from bench.results import COLUMNS, Ledger, order_columns  # noqa: E402
from bench.results_store import FANOUT, Part, to_bytes  # noqa: E402

HP = ("lr", "beta1", "beta2", "n_disc", "batch_size", "loss__gp_lambda", "noise_std", "label_smoothing")


def row(i: int, rng: random.Random) -> dict:
    """A finished trial's row with the types make_row gives each column."""
    r: dict = {c: rng.random() for c in COLUMNS}
    r.update(study="scale", dataset=rng.choice(["ring8", "grid25", "stacked-digits"]), loss=rng.choice(["ns", "wgan-gp"]),
             arch="mlp", trick="none", phase="search", trial_id=f"scale-{i:07d}", config_id=i, replicate=0,
             seed=rng.randrange(2**31), status="ok", steps=2000, primary_metric="w1", best_step=2000, modes=7,
             modes_total=8, checkpoint=f"trials/scale-{i:07d}/checkpoints/step_00002000.pt",
             checkpoint_best=f"trials/scale-{i:07d}/checkpoints/step_00002000.pt", node="10.0.0.1",
             started_at="2026-12-06T21:00:00", ended_at="2026-12-06T21:00:09", extractor="points",
             n_samples=2000, early_stopped=False, error=None)
    r.update({f"hp_{k}": rng.random() for k in HP})
    return r


def seed_store(study: Path, n: int, rng: random.Random) -> None:
    """The parts N single-row appends leave: for each base-F digit d_k of N, d_k parts of F^k rows."""
    folder = study / "results"
    folder.mkdir(parents=True)
    digits, m = [], n
    while m:
        digits.append(m % FANOUT)
        m //= FANOUT
    first = 0
    for k in reversed(range(len(digits))):
        for _ in range(digits[k]):
            size = FANOUT ** k
            df = order_columns(pd.DataFrame([row(i, rng) for i in range(first, first + size)]))
            (folder / Part(first, first + size - 1).name).write_bytes(to_bytes(df))
            first += size


def time_parts(n: int, appends: int, remote=None) -> float:
    """Seconds per recorded trial (Ledger.add and the progress line) after N rows."""
    from bench.progress import Progress
    from bench.study import Cell, Study, make_trial

    rng = random.Random(n)
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "s"
        seed_store(study, n, rng)
        if remote is not None:  # the durable copy holds the same parts
            for p in sorted((study / "results").iterdir()):
                remote.child("results").write(p.name, p.read_bytes())
        ledger = Ledger(study, remote)
        spec = make_trial(Study(name="scale", datasets=["ring8"], losses=["ns"]), Cell("ring8", "ns", "mlp"),
                          "search", 0, 0, {}, 2000)
        with Progress({"ring8/ns/mlp": n + appends}, live=False) as progress, contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            for i in range(n, n + appends):
                r = row(i, rng)
                ledger.add(r)
                progress("done", spec, r)
            dt = time.perf_counter() - t0
        assert len(ledger) == n + appends
    return dt / appends


def time_rewrite(n: int, appends: int) -> float:
    """The ledger before the parts store: the whole table rewritten (atomically) per trial."""
    from bench.io import atomic_write_bytes

    rng = random.Random(n)
    rows = [row(i, rng) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.parquet"
        t0 = time.perf_counter()
        for i in range(n, n + appends):
            rows.append(row(i, rng))
            ids = {r["trial_id"] for r in rows}  # what add() rebuilt per trial
            assert len(ids) == len(rows)
            atomic_write_bytes(path, to_bytes(order_columns(pd.DataFrame(rows))))
        return (time.perf_counter() - t0) / appends


@contextlib.contextmanager
def moto_s3():
    """A moto S3 server on a loopback port with one bucket; yields a Remote for a study in it."""
    import pyarrow.fs as pafs

    from bench.storage import Remote
    from tests.conftest import free_port, wait_for_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        wait_for_port(port, server, 30, "moto server")
        url = f"http://127.0.0.1:{port}"
        pafs.S3FileSystem(endpoint_override=url, scheme="http", allow_bucket_creation=True).create_dir("bench")
        counter = iter(range(10**6))
        yield lambda: Remote.at(f"s3://bench/s{next(counter)}?endpoint_override={url}&scheme=http")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--appends", type=int, default=FANOUT ** 3)
    ap.add_argument("--sizes", default="1000,50000")
    ap.add_argument("--rewrite-appends", type=int, default=10, help="appends timed for the old whole-table ledger")
    ap.add_argument("--no-s3", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from benchmarks.common import machine

    print(f"machine: {machine()}")
    print(f"{args.appends} appends after N rows; ms per recorded trial (Ledger.add + progress line)")
    results = {"local": [time_parts(n, args.appends) for n in sizes]}
    if not args.no_s3:
        with moto_s3() as new_remote:
            results["s3 (moto)"] = [time_parts(n, args.appends, new_remote()) for n in sizes]
    results["old: table rewritten"] = [time_rewrite(n, args.rewrite_appends) for n in sizes]
    print(f"{'storage':<22}" + "".join(f"{f'N={n:,}':>14}" for n in sizes) + f"{'ratio':>8}")
    for name, secs in results.items():
        ratio = secs[-1] / secs[0] if secs[0] > 0 else math.nan
        print(f"{name:<22}" + "".join(f"{s * 1e3:>12.2f}ms" for s in secs) + f"{ratio:>8.2f}")


if __name__ == "__main__":
    main()
