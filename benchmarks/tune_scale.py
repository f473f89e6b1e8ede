"""Ray Tune's own cost per trial as a Tuner grows, side by side in one run: one Tuner of N trials
against the same N trials as a sequence of Tuners of ``--chunk`` each.

    python benchmarks/tune_scale.py [--sizes 500,2000,5000] [--chunk 500]

The trainable returns at once (one report), so what is timed is Tune's controller (creating,
scheduling, and tracking trials, its experiment-state snapshots) and Ray's actor reuse, not training
or the harness. Two trials at a time on a private local Ray, as a study on this machine runs. Printed
per N: seconds per trial in one Tuner, in chunks, and their ratio; a controller whose per-trial cost
grows with the trials it holds shows as a one-Tuner cost rising with N (what ``bench.runner``'s
``TUNER_TRIALS`` chunking avoids).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def trivial(config):
    from ray import tune

    tune.report({"objective": float(config["i"])})


def fit(n: int, first: int, storage: Path) -> float:
    from ray import tune

    t0 = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(trivial, {"cpu": 1}),
        param_space={"i": tune.grid_search(list(range(first, first + n)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name=f"t{first}-{n}", storage_path=str(storage), verbose=0),
    )
    results = tuner.fit()
    assert len(results) == n and not results.errors
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,2000,5000")
    ap.add_argument("--chunk", type=int, default=500)
    args = ap.parse_args()
    import ray

    from benchmarks.common import machine
    from bench.runner import init_ray

    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {machine()}")
    init_ray(None, verbose=False)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fit(20, 0, Path(tmp))  # worker start-up and imports: not per trial
            for n in sizes:
                one = fit(n, 0, Path(tmp) / f"one{n}") / n
                chunked = sum(fit(min(args.chunk, n - s), s, Path(tmp) / f"ch{n}") for s in range(0, n, args.chunk)) / n
                rows.append((n, one, chunked))
                print(f"N={n:>6,}: one Tuner {one * 1e3:7.1f} ms/trial, chunks of {args.chunk} {chunked * 1e3:7.1f} ms/trial, "
                      f"ratio {one / chunked:5.2f}", flush=True)
    finally:
        ray.shutdown()
    n0, one0, ch0 = rows[0]
    n1, one1, ch1 = rows[-1]
    print(f"growth N={n0:,} -> N={n1:,}: one Tuner {one1 / one0:.2f}x per trial, chunked {ch1 / ch0:.2f}x")


if __name__ == "__main__":
    main()
