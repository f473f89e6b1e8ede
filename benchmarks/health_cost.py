"""What recording training health costs: the training step with and without bench.health's fields.

    python benchmarks/health_cost.py [--dataset ring8 --arch mlp --steps 300 --repeats 7]

Three sides run in one process on the same Trainee, interleaved: ``Trainee.step(measure=False)``
(the update alone, returning (d_loss, g_loss)), health measured at every step, and health measured
at every ``health_every``-th step as ``bench train`` does by default (TrainConfig.health_every).
Prints the median microseconds per step of each and their ratios to the update alone.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.config import TrainConfig
from bench.train import Trainee


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ring8")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--loss", default="ns")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    cfg = TrainConfig(dataset=a.dataset, loss=a.loss, arch=a.arch, steps=a.steps, batch_size=a.batch_size).resolved()
    t = Trainee.build(cfg, torch.device("cpu"))

    every = cfg.health_every
    sides = {"without health": lambda i: t.step(i, measure=False),
             "health every step": lambda i: t.step(i, measure=True),
             f"health every {every} steps": lambda i: t.step(i, measure=i % every == 0)}

    def per_step_us(fn) -> float:
        t0 = time.perf_counter()
        for i in range(a.steps):
            fn(i)
        return (time.perf_counter() - t0) / a.steps * 1e6

    for fn in sides.values():  # warm-up
        per_step_us(fn)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(a.repeats):
        for k, fn in sides.items():
            times[k].append(per_step_us(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["without health"]
    print(f"{a.dataset}:{a.arch} {a.loss} batch {a.batch_size}, {torch.get_num_threads()} threads, "
          f"medians of {a.repeats} interleaved repeats:")
    for k, v in med.items():
        print(f"  {k:24s} {v:7.0f} us/step   ratio {base / v:.3f} (without/with)")

if __name__ == "__main__":
    main()
