"""Metrics speed on this machine: features/s per extractor, and what the reference cache saves.

    python benchmarks/metrics_speed.py [--checkpoints 10] [--inception-images 16] [--device cuda]

1. Features per second of each extractor: identity (10,000 2-D points and 1,797 digits),
   digits-cnn (1,797 digits), inception-v3-compat (random weights, a few 8x8 digits, which
   torch-fidelity resizes to 299x299 like any image).
2. Scoring the checkpoints of one short digits run with the real side cached (computed once, then
   read from disk) vs recomputed for every checkpoint, interleaved checkpoint by checkpoint: total
   times and their ratio. Extractors are built once (kept in memory) in both cases.
Runs offline, in a temporary cache; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rate(fn, n: int, repeat: int = 3) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return n * repeat / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=10)
    ap.add_argument("--inception-images", type=int, default=16)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where extractors and scoring run (default cpu)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gan-bench-metrics-"))
    os.environ["GAN_BENCH_CACHE"] = str(tmp / "cache")
    os.environ["TORCH_HOME"] = str(tmp / "torch")  # no download can happen: weights are always given

    import torch

    from bench import datasets
    from bench.checkpoint import list_checkpoints
    from bench.config import TrainConfig
    from bench.metrics import get_extractor, score_checkpoint
    from bench.metrics.feature_extractor_inception import write_random_inception_weights
    from bench.train import train

    device = torch.device(args.device)
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if device.type == "cuda" else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs{gpu}; device {device}")
    digits = datasets.get("digits").uint8()
    points = datasets.get("ring8").real(10_000)
    weights = str(write_random_inception_weights(tmp / "inception.pth"))
    ident, cnn = get_extractor("identity", None, device), get_extractor("digits-cnn", None, device)
    incep = get_extractor("inception-v3-compat", weights, device)
    few = digits[: args.inception_images]
    print("\n1. features per second")
    for name, ex, x in (("identity, 2-D points", ident, points), ("identity, digits 8x8", ident, digits),
                        ("digits-cnn, digits 8x8", cnn, digits),
                        ("inception-v3-compat, digits 8x8 -> 299", incep, few)):
        r = rate(lambda: ex(x, 64), len(x), repeat=1 if ex is incep else 3)
        print(f"  {name:<40} {r:>12,.1f} /s")

    run = tmp / "run"
    k = args.checkpoints
    train(TrainConfig(dataset="digits", arch="infogan", steps=k, log_every=1, ckpt_every=1, n_disc=1, device=args.device), run)
    cks = list_checkpoints(run)
    print(f"\n2. scoring {len(cks)} checkpoints of a digits run, real side cached vs recomputed each time")
    setups = (("digits-cnn, default metrics, 1,797 vs 1,797", dict(extractor="digits-cnn")),
              (f"inception-v3-compat, fid+kid+prc, {args.inception_images} vs {args.inception_images}",
               dict(extractor="inception-v3-compat", fe_weights=weights, n=args.inception_images,
                    metrics=["fid", "kid", "prc"])))
    for name, kw in setups:
        times = {True: 0.0, False: 0.0}
        for ck in cks:  # interleaved, so that load from other processes hits both alike
            for cache in (True, False):
                t = time.perf_counter()
                score_checkpoint(ck, cache=cache, device=device, **kw)
                times[cache] += time.perf_counter() - t
        print(f"  {name}\n    cached {times[True]:.1f} s, uncached {times[False]:.1f} s, "
              f"cached/uncached time ratio {times[True] / times[False]:.3f} (speed-up {times[False] / times[True]:.2f}x)")


if __name__ == "__main__":
    main()
