"""What recording training health costs: the training step with and without bench.health's fields.

    python benchmarks/health_cost.py [--dataset ring8 --arch mlp --steps 300 --repeats 7]

Both sides run in one process on the same Trainee, interleaved: ``Trainee.step`` (every step
returns bench.health.FIELDS) against the same D and G updates returning only (d_loss, g_loss), as the
loop did before health. Prints the median microseconds per step of each and their ratio.
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

    def without_health(at: int) -> torch.Tensor:
        t.D.requires_grad_(True)
        for _ in range(cfg.n_disc):
            d = t.d_step(at)
        t.D.requires_grad_(False)
        g = t.g_objective(at)
        t.opt_g.zero_grad(set_to_none=True)
        g.backward()
        t.opt_g.step()
        return torch.stack((d.detach(), g.detach()))

    def per_step_us(fn) -> float:
        t0 = time.perf_counter()
        for i in range(a.steps):
            fn(i)
        return (time.perf_counter() - t0) / a.steps * 1e6

    for fn in (without_health, t.step):  # warm-up
        per_step_us(fn)
    bare, health = [], []
    for _ in range(a.repeats):
        bare.append(per_step_us(without_health))
        health.append(per_step_us(t.step))
    b, h = statistics.median(bare), statistics.median(health)
    print(f"{a.dataset}:{a.arch} {a.loss} batch {a.batch_size}, {torch.get_num_threads()} threads: "
          f"without health {b:.0f} us/step, with health {h:.0f} us/step, ratio {b / h:.3f} (without/with)")


if __name__ == "__main__":
    main()
