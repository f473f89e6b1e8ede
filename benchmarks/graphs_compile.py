"""CUDA graphs with and without torch.compile: harness steps/s side by side, per loss and n_disc.

    python benchmarks/graphs_compile.py [--resolution 64] [--steps 600] [--repeats 2] [--cases ns:1,ns:5,wgan-gp:5]

Both settings run ``bench.train.train`` (infogan, bf16, ``bench-rgb`` images, --cuda-graphs) after an
untimed warm-up of each (compilation, cuDNN autotuning); repeats are interleaved and the best of
each is compared. Gradient penalties run through the eager D (compiled graphs have no double
backward), so losses with one gain less. CUDA only.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cases", default="ns:1,ns:5,wgan-gp:5", help="comma-separated LOSS:N_DISC")
    args = ap.parse_args()

    import torch

    from common import harness_run, machine, register_synthetic  # first: puts the repository on sys.path

    from bench.config import TrainConfig

    if not torch.cuda.is_available():
        sys.exit("graphs_compile.py measures CUDA graphs: no CUDA GPU here")
    register_synthetic()
    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="gan-bench-graphs-compile-"))
    try:
        for case in args.cases.split(","):
            loss, nd = case.split(":")
            cfgs = {name: TrainConfig(dataset="bench-rgb", arch="infogan", loss=loss, n_disc=int(nd),
                                      resolution=args.resolution, steps=args.steps, ckpt_every=args.steps, device="cuda",
                                      precision="bf16", seed=0, cuda_graphs=True, compile=comp)
                    for name, comp in (("graphs", False), ("graphs+compile", True))}
            for name, cfg in cfgs.items():  # warm-up: compilation, autotuning
                harness_run(TrainConfig(**{**cfg.to_dict(), "steps": 50, "ckpt_every": 50}), tmp / f"warm-{name}-{loss}-{nd}")
            rates: dict[str, list[float]] = {name: [] for name in cfgs}
            for rep in range(args.repeats):
                for name, cfg in cfgs.items():
                    out = tmp / f"{name}-{loss}-{nd}-{rep}"
                    r = harness_run(cfg, out)
                    shutil.rmtree(out, ignore_errors=True)
                    rates[name].append(r["steps"] / r["loop_s"])
            g, c = max(rates["graphs"]), max(rates["graphs+compile"])
            print(f"{loss} n_disc {nd}, {args.resolution} px bf16: graphs {', '.join(f'{x:.1f}' for x in rates['graphs'])} "
                  f"steps/s; graphs + compile {', '.join(f'{x:.1f}' for x in rates['graphs+compile'])}; ratio {c / g:.2f}",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
