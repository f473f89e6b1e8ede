"""The Ray runner's cost on this machine, measured side by side in one run.

    python benchmarks/ray_overhead.py [--trials 12] [--steps 200]

1. Per-trial overhead: N identical tiny trials (ring8, mlp, no scoring) called directly through
   ``bench.train.train`` in this process vs run as Ray Tune trials one at a time (reuse_actors=True).
   A Tune run pays once for starting its worker process (Python, torch, the trainable); that is
   separated from the per-trial cost by timing runs of N and 3N trials: the marginal Ray time per
   trial is (T(3N) - T(N)) / 2N, the per-trial overhead is that minus the direct time per trial, and
   the start-up is what remains of T(N).
2. Throughput: trials/hour with 1 vs 2 concurrent trials on the same trials (2-core machine: the
   ratio shows how far the second core helps).
Everything runs in a temporary directory on a private local Ray.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()

    import ray
    import torch

    import sweeps
    from bench.results import Ledger
    from bench.runner import Driver, Resources, Trials, init_ray, run_trials
    from bench.study import Cell, Study, make_trial
    from bench.train import train

    torch.set_num_threads(1)
    study = Study(name="bench", datasets=["ring8"], losses=["ns"], budget=args.trials,
                  space=sweeps.load("lucic-wide").to_dict(), seeds=0, steps=args.steps, metrics=["fid"])

    def specs(tag: str):
        out = []
        for i in range(args.trials):
            s = make_trial(study, Cell("ring8", "ns", "mlp"), "search", i, 0, {}, args.steps)
            s.config["metrics"] = []  # training alone: the overhead is the harness's, not the scorer's
            s.config["ckpt_every"] = args.steps
            s.trial_id = f"{tag}-{i}"
            out.append(s)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train(specs("warm")[0].train_config(), tmp / "warm")  # imports and first-call costs: not per trial
        t = time.perf_counter()
        for s in specs("direct"):
            train(s.train_config(), tmp / "direct" / s.trial_id)
        direct = time.perf_counter() - t

        init_ray(None, verbose=False)
        timings = {}
        try:
            for conc, k in ((1, 1), (1, 3), (2, 1)):
                d = tmp / f"ray{conc}x{k}"
                d.mkdir()
                t = time.perf_counter()
                run_trials(Driver("bench", d, Ledger(d), Resources(1.0, 0.0, conc)),
                           Trials([s for j in range(k) for s in specs(f"c{conc}x{k}r{j}")]))
                timings[conc, k] = time.perf_counter() - t
        finally:
            ray.shutdown()

    n = args.trials
    marginal = (timings[1, 3] - timings[1, 1]) / (2 * n)
    print(f"{n} trials of {args.steps} steps (ring8, mlp, ns), 1 thread each")
    print(f"direct train():            {direct:7.2f} s  ({direct / n:.3f} s/trial)")
    print(f"Ray Tune, 1 at a time:     {timings[1, 1]:7.2f} s  ({timings[1, 1] / n:.3f} s/trial, start-up included)")
    print(f"Ray Tune, {3 * n} trials:       {timings[1, 3]:7.2f} s")
    print(f"per-trial overhead:        {marginal - direct / n:+.3f} s   (marginal Ray time {marginal:.3f} s/trial vs "
          f"direct {direct / n:.3f}; ratio {marginal * n / direct:.2f})")
    print(f"Tune run start-up (once):  {timings[1, 1] - n * marginal:7.2f} s")
    print(f"trials/hour, 1 concurrent: {3600 * n / timings[1, 1]:8.0f}")
    print(f"trials/hour, 2 concurrent: {3600 * n / timings[2, 1]:8.0f}   (ratio 2/1: {timings[1, 1] / timings[2, 1]:.2f})")
    print("(trials/hour include each Tune run's start-up)")


if __name__ == "__main__":
    main()
