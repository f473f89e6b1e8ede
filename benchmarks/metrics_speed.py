"""Metrics speed on this machine: features/s per extractor, and what the reference cache saves.

    python benchmarks/metrics_speed.py [--checkpoints 10] [--inception-images 16] [--device cuda] [--sections 1,2,3,4]

1. Features per second of each extractor: identity (10,000 2-D points and 1,797 digits),
   digits-cnn (1,797 digits), inception-v3-compat (random weights, a few 8x8 digits, which
   torch-fidelity resizes to 299x299 like any image).
2. Scoring the checkpoints of one short digits run with the real side cached (computed once, then
   read from disk) vs recomputed for every checkpoint, interleaved checkpoint by checkpoint: total
   times and their ratio. Extractors are built once (kept in memory) in both cases.
3. One checkpoint at the default protocol, side by side: this project's exact k-NN precision/recall
   and density/coverage (``bench.metrics.knn``) and batched KID (``bench.metrics.kid``) against
   torch-fidelity 0.4's ``prc_features_to_metric`` / ``kid_features_to_metric`` and the brute-force
   density/coverage this project used before (full distance blocks), on ring8 (10,000 generated vs
   10,000 real points) and digits (1,797 vs 1,797, digits-cnn features): seconds (best of 3 for ours,
   one run for theirs), the speed-up and both values.
4. A whole default score per checkpoint (``Scorer.score``, real side cached) against the training
   time of one evaluation interval at the default study settings: the default length
   (``bench.datasets.describe(name).steps``) / 5 steps; ring8 mlp, batch 256; digits infogan, batch 64.
Runs offline, in a temporary cache; nothing is downloaded. ``--sections 3,4`` runs only the last two.
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
    ap.add_argument("--sections", default="1,2,3,4", help="comma-separated sections to run (default all)")
    args = ap.parse_args()
    sections = {int(x) for x in args.sections.split(",")}
    tmp = Path(tempfile.mkdtemp(prefix="gan-bench-metrics-"))
    os.environ["GAN_BENCH_CACHE"] = str(tmp / "cache")
    os.environ["TORCH_HOME"] = str(tmp / "torch")  # no download can happen: weights are always given

    import torch

    from bench import datasets
    from bench.metrics import get_extractor
    from bench.metrics.feature_extractor_inception import write_random_inception_weights

    device = torch.device(args.device)
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if device.type == "cuda" else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs{gpu}; device {device}")
    digits = datasets.get("digits").uint8()
    points = datasets.get("ring8").real(10_000)
    weights = str(write_random_inception_weights(tmp / "inception.pth"))
    ident, cnn = get_extractor("identity", None, device), get_extractor("digits-cnn", None, device)
    incep = get_extractor("inception-v3-compat", weights, device) if sections & {1, 2} else None
    if 1 in sections:
        features_per_second(ident, cnn, incep, points, digits, digits[: args.inception_images])
    if 2 in sections:
        cache_speedup(tmp, args, weights, device)
    if 3 in sections:
        protocol_side_by_side(cnn, device)
    if 4 in sections:
        score_vs_training(tmp, device)


def features_per_second(ident, cnn, incep, points, digits, few) -> None:
    print("\n1. features per second")
    for name, ex, x in (("identity, 2-D points", ident, points), ("identity, digits 8x8", ident, digits),
                        ("digits-cnn, digits 8x8", cnn, digits),
                        ("inception-v3-compat, digits 8x8 -> 299", incep, few)):
        r = rate(lambda: ex(x, 64), len(x), repeat=1 if ex is incep else 3)
        print(f"  {name:<40} {r:>12,.1f} /s")


def cache_speedup(tmp, args, weights, device) -> None:
    from bench.checkpoint import list_checkpoints
    from bench.config import TrainConfig
    from bench.metrics import score_checkpoint
    from bench.train import train

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


def best(fn, repeat: int) -> tuple[float, object]:
    """(best wall time of ``repeat`` calls, the last result)."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def old_density_coverage(real, fake, k: int = 5):
    """Density/coverage as this project computed it before exact k-NN: float64 distance blocks."""
    import torch

    real, fake = real.double(), fake.double()
    radii = torch.cat([torch.cdist(b, real).kthvalue(k + 1, dim=1).values for b in real.split(1024)])
    inside_total, covered = 0, torch.zeros(len(real), dtype=torch.bool)
    for b in fake.split(1024):
        inside = torch.cdist(b, real) < radii[None]
        inside_total += int(inside.sum())
        covered |= inside.any(0)
    return inside_total / (k * len(fake)), covered.double().mean().item()


def protocol_side_by_side(cnn, device) -> None:
    import torch
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    from bench import datasets
    from bench.metrics import kid, knn

    print("\n3. one checkpoint at the default protocol: this project's functions vs torch-fidelity's "
          "(seconds; ours best of 3, theirs one run)")
    ring = datasets.get("ring8")
    g = torch.Generator().manual_seed(1)
    fake_pts = ring.centres[torch.randint(8, (10_000,), generator=g)] + 1.3 * ring.std * torch.randn(10_000, 2, generator=g)
    digits = datasets.get("digits").uint8()
    noisy = (digits.roll(1, dims=-1).int() + torch.randint(-30, 31, digits.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    cases = (("ring8, 10,000 vs 10,000 points, identity (2-D)", datasets.get("ring8", split="test").real(10_000), fake_pts),
             ("digits, 1,797 vs 1,797, digits-cnn (64-d)", cnn(digits, 64)["penultimate"], cnn(noisy, 64)["penultimate"]))
    for name, real, fake in cases:
        print(f"  {name}; k-NN: {knn.method(real.shape[1])}")
        size = min(1000, len(real), len(fake))
        real_r3, real_r5 = knn.knn_radii(real, 3, device), knn.knn_radii(real, 5, device)  # the reference cache's
        t_r, _ = best(lambda: (knn.knn_radii(real, 3, device), knn.knn_radii(real, 5, device)), 3)
        rows = (
            ("precision/recall (k=3)",
             lambda: knn.precision_recall(real, fake, 3, real_r3, device=device),
             lambda: tuple(prc_features_to_metric(fake, real, prc_neighborhood=3, save_cpu_ram=True,
                                                  verbose=False)[k] for k in ("precision", "recall"))),
            ("density/coverage (k=5)", lambda: knn.density_coverage(real, fake, 5, real_r5, device=device),
             lambda: old_density_coverage(real, fake, 5)),
            (f"KID (100 subsets of {size:,})",
             lambda: kid.kid(fake, real, subset_size=size, subsets=100, seed=2020, device=device)[:2],
             lambda: tuple(kid_features_to_metric(fake, real, kid_subset_size=size, kid_subsets=100, rng_seed=2020,
                                                  verbose=False)[k] for k in ("kernel_inception_distance_mean",
                                                                              "kernel_inception_distance_std"))))
        total_ours = total_theirs = 0.0
        for metric, ours_fn, theirs_fn in rows:
            t_ours, v_ours = best(ours_fn, 3)
            t_theirs, v_theirs = best(theirs_fn, 1)
            total_ours, total_theirs = total_ours + t_ours, total_theirs + t_theirs
            vo = ", ".join(f"{v:.6g}" for v in v_ours)
            vt = ", ".join(f"{v:.6g}" for v in v_theirs)
            print(f"    {metric:<26} ours {t_ours:8.3f} s   theirs {t_theirs:8.3f} s   speed-up {t_theirs / t_ours:8.1f}x"
                  f"   values ours ({vo}) theirs ({vt})")
        print(f"    {'all three':<26} ours {total_ours:8.3f} s   theirs {total_theirs:8.3f} s   speed-up "
              f"{total_theirs / total_ours:8.1f}x;  real-side radii (cached once): {t_r:.3f} s")


def score_vs_training(tmp, device) -> None:
    import torch

    from bench import datasets
    from bench.config import TrainConfig
    from bench.metrics import Scorer
    from common import harness_run

    steps = {name: datasets.describe(name).steps for name in ("ring8", "digits")}

    print("\n4. a whole default score per checkpoint vs the training time of one evaluation interval")
    g = torch.Generator().manual_seed(2)
    ring = datasets.get("ring8")
    pts = ring.centres[torch.randint(8, (10_000,), generator=g)] + 1.3 * ring.std * torch.randn(10_000, 2, generator=g)
    digits = datasets.get("digits").uint8()
    for name, cfg, samples in (
            ("ring8", TrainConfig(dataset="ring8", arch="mlp", steps=steps["ring8"] // 5, batch_size=256, log_every=100,
                                  ckpt_every=steps["ring8"] // 5, device=str(device)), pts),
            ("digits", TrainConfig(dataset="digits", arch="infogan", steps=steps["digits"] // 5, log_every=100,
                                   ckpt_every=steps["digits"] // 5, device=str(device)), digits)):
        scorer = Scorer(name, device=device)
        t_score, out = best(lambda: scorer.score(samples), 3)
        interval = harness_run(cfg, tmp / f"train-{name}")["loop_s"]  # the training loop alone
        print(f"  {name}: default metrics {', '.join(out['provenance']['metrics'])} on {len(samples):,} samples: "
              f"{t_score:.2f} s per checkpoint; training {cfg.steps} steps ({cfg.arch}, batch {cfg.batch_size}): "
              f"{interval:.2f} s; scoring / training = {t_score / interval:.2f}")


if __name__ == "__main__":
    main()
