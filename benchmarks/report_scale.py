"""``bench report`` on a large synthetic study, timed by stage.

    python benchmarks/report_scale.py [--datasets 10] [--losses 10] [--configs 950] [--seeds 50] [--profile]

The table: datasets x losses cells, each with ``--configs`` search configs and ``--seeds`` seeds of its
best (10 x 10 x (950 + 50) = 100,000 rows, the issue's scale), W1-like scores drawn per cell from a
lognormal whose location differs by loss (so some comparisons are significant and some are not),
5% of configs diverged. No checkpoints: the samples figure is skipped, as for a results file. The
whole report (analysis, tables, figures, HTML) runs in-process through ``reports.output`` as `bench
report` runs it; printed: seconds per stage and in all.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def table(datasets: int, losses: int, configs: int, seeds: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = ["ns", *[f"l{i}" for i in range(1, losses)]]
    frames = []
    for d in range(datasets):
        for j, loss in enumerate(names):
            shift = 0.1 * (j % 4)  # losses 4 apart share a distribution: nulls and effects both
            search = np.exp(rng.normal(shift, 0.5, configs))
            status = np.where(rng.random(configs) < 0.05, "diverged", "ok")
            best = int(np.argmin(np.where(status == "ok", search, np.inf)))
            seed_vals = np.exp(rng.normal(shift + np.log(search[best]) * 0 - 0.3, 0.2, seeds))
            for phase, vals, st, cfg in (("search", search, status, np.arange(configs)),
                                         ("seeds", seed_vals, np.full(seeds, "ok"), np.full(seeds, best))):
                n = len(vals)
                frames.append(pd.DataFrame({
                    "study": "scale", "dataset": f"ds{d}", "loss": loss, "arch": "mlp", "phase": phase,
                    "trial_id": [f"ds{d}-{loss}-{phase}-{i}" for i in range(n)], "config_id": cfg,
                    "replicate": np.arange(n) if phase == "seeds" else 0, "seed": rng.integers(0, 2**31, n),
                    "status": st, "steps": 2000, "primary_metric": "w1",
                    "primary_best": np.where(st == "ok", vals, np.nan), "w1": np.where(st == "ok", vals, np.nan),
                    "fid_best": np.nan, "hp_lr": 10 ** rng.uniform(-5, -2, n)}))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=10)
    ap.add_argument("--losses", type=int, default=10)
    ap.add_argument("--configs", type=int, default=950)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", type=Path, help="keep the report here (default: a temporary directory)")
    args = ap.parse_args()
    from benchmarks.common import machine
    from bench import api

    df = table(args.datasets, args.losses, args.configs, args.seeds)
    print(f"machine: {machine()}\nrows: {len(df):,} ({args.datasets} datasets x {args.losses} losses x "
          f"({args.configs} configs + {args.seeds} seeds))")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.parquet"
        df.to_parquet(path, index=False)
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        api.report(path, out=args.out or Path(tmp) / "report")
        if prof:
            prof.disable()
        print(f"bench report: {time.perf_counter() - t0:.1f} s")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
