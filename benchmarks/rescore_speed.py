"""Rescore speed on this machine: checkpoints/s with the real-side statistics shared vs recomputed.

    python benchmarks/rescore_speed.py [--trials 2] [--checkpoints 6] [--rounds 2] [--inception-images 0]

Setups: digits with FID on digits-cnn features (all 1,797 images); ring8 with FID and
density/coverage on 5,000 points (identity features: the real side is FID statistics plus k-NN
radii); with ``--inception-images N > 0`` (slow on a CPU), digits with FID on inception-v3-compat
(random weights, N vs N images resized to 299: the real side costs as much as the generated side,
as for real FID).
For each dataset a study is made from real training runs (``--trials`` runs, a checkpoint at every
step, ``--checkpoints`` steps each). Then, in one local Ray session (workers warmed up first), the
same ``bench rescore --checkpoints all`` is run on fresh copies of the study, alternating:

- shared: the driver computes the real side once (through the reference cache) and ``ray.put``s it;
  every task only scores the generated side (what ``bench rescore`` does),
- recomputed: every task computes the real side again for its checkpoint (features, FID statistics,
  k-NN radii), as scoring each checkpoint on its own would.

Prints checkpoints/s of both and their ratio. Everything runs offline in a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARCH = {"digits": "infogan", "ring8": "mlp"}


def make_study(root: Path, dataset: str, trials: int, steps: int) -> Path:
    import pandas as pd

    from bench.config import TrainConfig
    from bench.io import atomic_write_json
    from bench.study import Study
    from bench.train import train

    arch = ARCH[dataset]
    d = root / f"{dataset}-study"
    atomic_write_json(d / "study.json", Study(name=d.name, datasets=[dataset], losses=["ns"], archs=[arch], budget=trials,
                                              seeds=0, steps=steps).to_dict())
    rows = []
    for c in range(trials):
        tid = f"{dataset}-ns-{arch}-search-c{c:03d}"
        res = train(TrainConfig(dataset=dataset, loss="ns", arch=arch, steps=steps, log_every=steps, ckpt_every=1,
                                seed=c, device="cpu"), d / "trials" / tid)
        rows.append({"study": d.name, "dataset": dataset, "loss": "ns", "arch": arch, "phase": "search", "trial_id": tid,
                     "config_id": c, "replicate": 0, "seed": c, "status": "ok", "steps": res.step,
                     "checkpoint": f"trials/{tid}/{res.checkpoint}", "checkpoint_best": None})
    pd.DataFrame(rows).to_parquet(d / "results.parquet", index=False)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--checkpoints", type=int, default=6, help="checkpoints per trial")
    ap.add_argument("--rounds", type=int, default=2, help="shared/recomputed pairs per setup (alternating)")
    ap.add_argument("--inception-images", type=int, default=0, help="samples of the Inception setup (0: skip it)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gan-bench-rescore-"))
    os.environ["GAN_BENCH_CACHE"] = str(tmp / "cache")  # before Ray starts: local workers inherit it
    os.environ["TORCH_HOME"] = str(tmp / "torch")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import ray
    import torch

    from bench.rescore import Options, rescore_study
    from bench.runner import init_ray

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; Ray tasks: 1 CPU each, 1 thread")
    setups = [("digits, fid, digits-cnn", "digits", dict(metrics=["fid"], samples=1797)),
              ("ring8, fid+dc, identity", "ring8", dict(metrics=["fid", "dc"], samples=5000))]
    if args.inception_images > 0:
        from bench.metrics.feature_extractor_inception import write_random_inception_weights

        w = str(write_random_inception_weights(tmp / "inception.pth"))
        setups.append(("digits, fid, inception-v3-compat (random weights)", "digits",
                        dict(metrics=["fid"], samples=args.inception_images, extractor="inception-v3-compat", fe_weights=w)))
    studies = {ds: make_study(tmp, ds, args.trials, args.checkpoints) for ds in sorted({s[1] for s in setups})}
    init_ray(None, False)
    try:
        print(f"Ray: {int(ray.cluster_resources().get('CPU', 0))} CPUs")
        for i, (title, name, kw) in enumerate(setups):
            total = args.trials * args.checkpoints
            print(f"\n{title}: {total} checkpoints, {kw['samples']:,} vs {kw['samples']:,} samples")
            warm = tmp / f"{i}-warm"
            shutil.copytree(studies[name], warm)
            for share in (True, False):  # warm-up: workers import torch and build the extractor
                rescore_study(warm, Options(checkpoints="final", share_reference=share, **kw))
                (warm / "scores.parquet").unlink(missing_ok=True)
            times = {True: 0.0, False: 0.0}
            comps = {True: 0, False: 0}
            for r in range(args.rounds):
                for share in ((True, False) if r % 2 == 0 else (False, True)):
                    d = tmp / f"{i}-{r}-{'shared' if share else 'recomputed'}"
                    shutil.copytree(studies[name], d)
                    t = time.perf_counter()
                    s = rescore_study(d, Options(checkpoints="all", share_reference=share, **kw))
                    times[share] += time.perf_counter() - t
                    comps[share] += s.worker_reference_computations
                    assert s.scored == total and not s.errors, s.errors
            n = total * args.rounds
            shared, recomputed = n / times[True], n / times[False]
            print(f"  shared real side      {shared:8.2f} checkpoints/s  (real-side computations in tasks: {comps[True]})")
            print(f"  recomputed per task   {recomputed:8.2f} checkpoints/s  (real-side computations in tasks: {comps[False]})")
            print(f"  ratio shared / recomputed: {shared / recomputed:.2f}x")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
