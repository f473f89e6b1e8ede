"""Packing trials on one GPU: trials/hour for infogan at 32 and 64 px with 1, 2, 4 and 8 trials at once.

    python benchmarks/packing.py [--resolutions 32,64] [--packings 1,2,4,8] [--precision bf16] [--steps 2000] [--cuda-graphs]

Each trial is one ``bench.train.train`` call (ns loss, published defaults, batch 64, one checkpoint at
its end) in its own process, as Ray runs trials with a fractional ``--gpus-per-trial``: Ray itself
is not needed for the measurement (it only starts the processes), so this script starts them. Per
resolution, 8 worker processes start once (imports, CUDA context, a warm-up run); then for each
packing N, workers 0..N-1 start a trial at the same instant. Printed per N:
  trials/hour   N / (last end - start) * 3600, trials of --steps steps, checkpoint write included
  steps/s       N * steps / (longest loop time): aggregate training throughput, checkpoint excluded
  speed-up      steps/s at N over steps/s at 1 (target: >= 3x at the best packing)
Data: ``bench-rgb`` (random RGB images at CelebA's and CIFAR's shapes; see benchmarks/common.py).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _config(res: int, steps: int, precision: str, compile_: bool, device: str, graphs: bool = False):
    from bench.config import TrainConfig

    return TrainConfig(dataset="bench-rgb", arch="infogan", loss="ns", resolution=res, steps=steps, ckpt_every=steps,
                       device=device, precision=precision, compile=compile_, cuda_graphs=graphs, seed=0)


def worker(idx: int, res: int, precision: str, compile_: bool, graphs: bool, device: str, tmp: str, tasks, results) -> None:
    import torch

    from common import harness_run, register_synthetic

    torch.set_num_threads(1)
    register_synthetic()
    out = Path(tmp) / f"w{idx}"
    harness_run(_config(res, 100, precision, compile_, device, graphs), out / "warm")  # CUDA context, cuDNN autotuning, caches
    shutil.rmtree(out / "warm", ignore_errors=True)
    results.put(("ready", idx, None))
    while True:
        task = tasks.get()
        if task is None:
            return
        n, start_at, steps = task
        d = out / f"n{n}"
        time.sleep(max(0.0, start_at - time.time()))
        t0 = time.time()
        r = harness_run(_config(res, steps, precision, compile_, device, graphs), d)
        r.update(t0=t0, t1=time.time())
        shutil.rmtree(d, ignore_errors=True)
        results.put(("done", idx, r))


def _get(results, procs):
    """The next result; fails (instead of waiting forever) when a worker died."""
    import queue

    while True:
        try:
            return results.get(timeout=2)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"worker {dead[0].name} died with exit code {dead[0].exitcode}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", default="32,64")
    ap.add_argument("--packings", default="1,2,4,8")
    ap.add_argument("--precision", default="bf16", help="fp32 or bf16 (default bf16)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cuda-graphs", action="store_true", help="each trial replays its step as a CUDA graph")
    ap.add_argument("--steps", type=int, default=2000, help="steps per trial (default 2000)")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to try the script out")
    args = ap.parse_args()

    import torch

    from common import machine

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("packing.py measures trials per GPU: no CUDA GPU here")
    packings = [int(x) for x in args.packings.split(",")]
    print(f"machine: {machine()}")
    print(f"infogan, ns, batch 64, {args.precision}{', compile' if args.compile else ''}{', CUDA graphs' if args.cuda_graphs else ''}, trials of {args.steps} steps "
          "(one checkpoint each), one process per trial\n", flush=True)
    ctx = mp.get_context("spawn")
    table = []
    for res in (int(x) for x in args.resolutions.split(",")):
        tmp = tempfile.mkdtemp(prefix="gan-bench-packing-")
        tasks = [ctx.Queue() for _ in range(max(packings))]
        results = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(i, res, args.precision, args.compile, args.cuda_graphs, args.device, tmp, tasks[i], results))
                 for i in range(max(packings))]
        t = time.time()
        for p in procs:
            p.start()
        try:
            for _ in procs:
                _get(results, procs)
            print(f"{res} px: {len(procs)} workers ready in {time.time() - t:.1f} s", flush=True)
            base = None
            for n in packings:
                start_at = time.time() + 1.0
                for i in range(n):
                    tasks[i].put((n, start_at, args.steps))
                runs = [_get(results, procs)[2] for _ in range(n)]
                wall = max(r["t1"] for r in runs) - start_at
                sps = n * args.steps / max(r["loop_s"] for r in runs)
                base = base or sps
                row = {"res": res, "n": n, "trials_h": n / wall * 3600, "sps": sps, "speedup": sps / base,
                       "per_trial": sps / n, "ckpt_s": max(r["ckpt_s"] for r in runs)}
                table.append(row)
                print(f"  {n} per GPU: {row['trials_h']:8.0f} trials/h of {args.steps} steps, {sps:8.1f} steps/s aggregate "
                      f"({row['per_trial']:.1f} per trial), speed-up {row['speedup']:.2f}x, slowest checkpoint write "
                      f"{row['ckpt_s']:.1f} s", flush=True)
        finally:
            for q in tasks:
                q.put(None)
            for p in procs:
                p.join(timeout=60)
                if p.is_alive():
                    p.terminate()
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'res':>4} {'per GPU':>8} {'trials/h':>9} {'steps/s':>9} {'speed-up':>9} {'full CelebA trials/h':>21}")
    for r in table:
        full = r["sps"] * 3600 / 101_732  # a Lucic CelebA trial: ceil(40 * 162,770 / 64) steps, n_disc 1
        print(f"{r['res']:>4} {r['n']:>8} {r['trials_h']:>9.0f} {r['sps']:>9.1f} {r['speedup']:>8.2f}x {full:>21.2f}")
    print("full CelebA trials/h: aggregate steps/s x 3600 / 101,732 steps (n_disc 1; training only, no scoring): "
          "a projection from the measured rate")


if __name__ == "__main__":
    main()
