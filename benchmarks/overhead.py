"""Harness overhead: steps/s of ``bench.train.train`` vs a bare hand-written loop, side by side.

    python benchmarks/overhead.py                       # CPU: ring8/mlp and digits/infogan, fp32
    python benchmarks/overhead.py --device cuda         # GPU: infogan at 32 and 64 px, fp32 and bf16
    python benchmarks/overhead.py --device cuda --ab    # + bare loop with channels_last / fused Adam off
    python benchmarks/overhead.py --device cuda --compile   # + both with torch.compile (last case, last precision)
    python benchmarks/overhead.py --device cuda --cuda-graphs   # + every setting with both sides as CUDA graphs

Both sides train the same models (``models.build``), loss (``losses.get``, default ns), batch (64) and
hot-path settings (see benchmarks/common.py); the harness adds its logging, NaN check, run directory
and record. Repeats are interleaved (bare, harness, bare, harness, ...) after one untimed warm-up of
each, and the medians are compared: ratio = harness steps/s / bare steps/s (target >= 0.97).
The harness's steps/s is its loop up to the last log row; the final checkpoint write and the setup
before the loop (dataset, models) are printed separately: they are per checkpoint and per trial costs.
Cases are DATASET:ARCH[:RESOLUTION]; ``bench-rgb`` is random RGB images (CelebA's and CIFAR's shapes).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bare_loop, harness_run, machine, register_synthetic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--cases", help="comma-separated DATASET:ARCH[:RES] (default: per device)")
    ap.add_argument("--precisions", help="comma-separated fp32,bf16 (default: fp32 on CPU, both on CUDA)")
    ap.add_argument("--loss", default="ns")
    ap.add_argument("--steps", type=int, help="steps per timed run (default 200 on CPU, 1000 on CUDA)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch threads on CPU (default: torch's)")
    ap.add_argument("--ab", action="store_true", help="also time the bare loop without channels_last / fused Adam")
    ap.add_argument("--compile", action="store_true", help="also time both with torch.compile (last case and precision)")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="also time every setting with the whole step captured as a CUDA graph, on both sides")
    args = ap.parse_args()

    import torch

    from bench.config import TrainConfig
    from bench.train import pick_device

    register_synthetic()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    cases = args.cases or ("bench-rgb:infogan:32,bench-rgb:infogan:64" if cuda else "ring8:mlp,digits:infogan")
    precisions = (args.precisions or ("fp32,bf16" if cuda else "fp32")).split(",")
    steps = args.steps or (1000 if cuda else 200)
    print(f"machine: {machine()}")
    print(f"device {device}, {steps} steps per run, {args.repeats} interleaved repeats, loss {args.loss}, batch 64\n")

    settings = []
    for case in cases.split(","):
        parts = case.split(":")
        res = int(parts[2]) if len(parts) > 2 else None
        for prec in precisions:
            settings.append((parts[0], parts[1], res, prec, False, False))
            if args.cuda_graphs:
                settings.append((parts[0], parts[1], res, prec, False, True))
    if args.compile:
        settings.append(settings[-1][:4] + (True, False))

    tmp = Path(tempfile.mkdtemp(prefix="gan-bench-overhead-"))
    rows = []
    try:
        for dataset, arch, res, prec, comp, graphs in settings:
            cfg = TrainConfig(dataset=dataset, arch=arch, loss=args.loss, resolution=res, steps=steps, ckpt_every=steps,
                              device=str(device.type), precision=prec, compile=comp, cuda_graphs=graphs, seed=0)
            name = (f"{dataset}:{arch}" + (f":{res}" if res else "") + f" {prec}" + (" compile" if comp else "")
                    + (" graphs" if graphs else ""))
            k = 0

            def harness() -> dict:
                nonlocal k
                k += 1
                out = tmp / f"run{k}"
                try:
                    return harness_run(cfg, out)
                finally:
                    shutil.rmtree(out, ignore_errors=True)

            t = time.perf_counter()
            bare_loop(cfg, min(steps, 200))  # warm-up: allocator, cuDNN autotuning, compilation
            harness()
            warm = time.perf_counter() - t
            bare, harn, ab = [], [], {"no channels_last": [], "no fused Adam": []}
            for r in range(args.repeats):
                order = (0, 1) if r % 2 == 0 else (1, 0)
                for side in order:
                    if side == 0:
                        bare.append(steps / bare_loop(cfg, steps))
                    else:
                        harn.append(harness())
                if args.ab and cuda and not comp:
                    ab["no channels_last"].append(steps / bare_loop(cfg, steps, channels_last=False))
                    ab["no fused Adam"].append(steps / bare_loop(cfg, steps, fused=False))
            hs = [h["steps"] / h["loop_s"] for h in harn]
            b, h = statistics.median(bare), statistics.median(hs)
            row = {"name": name, "bare": b, "harness": h, "ratio": h / b, "bare_all": bare, "harness_all": hs,
                   "ckpt_s": statistics.median(x["ckpt_s"] for x in harn), "ckpt_mb": harn[0]["ckpt_mb"],
                   "setup_s": statistics.median(x["setup_s"] for x in harn), "warm_s": warm,
                   "ab": {k_: statistics.median(v) / b for k_, v in ab.items() if v}}
            rows.append(row)
            print(f"{name}: bare {', '.join(f'{x:.1f}' for x in bare)} steps/s; harness {', '.join(f'{x:.1f}' for x in hs)}"
                  f" steps/s; warm-up {warm:.1f} s" + "".join(f"; bare {k_} {v:.3f}x" for k_, v in row["ab"].items()),
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'setting':<34} {'bare steps/s':>12} {'harness':>10} {'ratio':>7}  {'setup s':>7} {'ckpt s':>7} {'ckpt MB':>8}")
    for r in rows:
        print(f"{r['name']:<34} {r['bare']:>12.1f} {r['harness']:>10.1f} {r['ratio']:>7.3f}  {r['setup_s']:>7.2f} "
              f"{r['ckpt_s']:>7.2f} {r['ckpt_mb']:>8.1f}")
    print("ratio = harness/bare steps/s (medians; target >= 0.97). setup: dataset + models before the loop, once per"
          " trial; ckpt: one checkpoint write (G, D, both Adam states)")
    eager = {r["name"]: r for r in rows}
    for r in rows:
        if r["name"].endswith(" graphs") and r["name"][:-len(" graphs")] in eager:
            e = eager[r["name"][:-len(" graphs")]]
            print(f"CUDA graphs, {r['name'][:-len(' graphs')]}: harness {r['harness'] / e['harness']:.2f}x the eager "
                  f"harness's steps/s, bare {r['bare'] / e['bare']:.2f}x the eager bare loop's (same run, settings timed in turn)")


if __name__ == "__main__":
    main()
