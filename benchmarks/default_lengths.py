"""How long must a trial train before its primary metric means something? (issue 12, item 3)

For each loss, the configs a study would run on the dataset (config 0 = the published defaults, then
draws from the search space, exactly as ``bench run`` samples them) are trained for ``--steps`` and
scored every ``--every`` steps on the dataset's primary metric and mode coverage. Printed per loss and
checkpoint: the best config's primary value and its modes, and the first step at which the best
config covers at least ``--min-modes`` modes. The README's default training lengths come from here.

    python benchmarks/default_lengths.py --dataset ring8 --losses ns,wgan-gp --configs 6 --steps 5000
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_config(job: dict) -> list[dict]:
    import torch

    from bench.config import TrainConfig
    from bench.train import train

    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict(job["config"])
    with tempfile.TemporaryDirectory() as d:
        train(cfg, Path(d) / "run")
        rows = [json.loads(line) for line in (Path(d) / "run" / "scores.jsonl").read_text().splitlines()]
    return [{"loss": job["loss"], "config_id": job["config_id"], "lr": cfg.lr, "beta1": cfg.beta1, "step": r["step"],
             "primary": float(r["primary"]["value"]), "modes": r.get("modes"), "modes_total": r.get("modes_total")}
            for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ring8")
    p.add_argument("--losses", default="ns,wgan-gp")
    p.add_argument("--configs", type=int, default=6, help="configs per loss (config 0 = published defaults)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--min-modes", type=int, default=7)
    p.add_argument("--space", help="search space (default: the dataset's registration, bench.datasets.describe)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()

    import sweeps
    from bench.study import Cell, default_arch, Study, default_space, make_trial, sample_configs

    args.space = args.space or default_space([args.dataset])
    # the primary metric is always scored; modes is the secondary column this benchmark reads
    study = Study(name="lengths", datasets=[args.dataset], losses=args.losses.split(","), budget=args.configs,
                  space=sweeps.load(args.space).to_dict(), steps=args.steps, eval_every=args.every,
                  metrics=["modes"], eval_samples=args.samples)
    jobs = []
    for loss in study.losses:
        cell = Cell(args.dataset, loss, default_arch(args.dataset))
        for cid, hp in enumerate(sample_configs(study, cell, args.configs)):
            spec = make_trial(study, cell, "search", cid, 0, hp, args.steps)
            jobs.append({"loss": loss, "config_id": cid, "config": spec.config})
    rows = []
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for rs in pool.imap_unordered(run_config, jobs):  # each config's rows as it finishes (partial runs are usable)
            rows += rs
            print("config done:", json.dumps(rs), flush=True)

    print(f"dataset {args.dataset}, {args.configs} configs per loss ({args.space}), primary metric at "
          f"{args.samples} samples, batch {jobs[0]['config']['batch_size']}; best config per checkpoint (lowest primary):")
    for loss in study.losses:
        mine = [r for r in rows if r["loss"] == loss]
        first = None
        print(f"  {loss}:")
        for step in sorted({r["step"] for r in mine}):
            at = [r for r in mine if r["step"] == step and math.isfinite(r["primary"])]
            if not at:
                print(f"    step {step:>6}: no finite score")
                continue
            best = min(at, key=lambda r: r["primary"])
            covered = max(r["modes"] or 0 for r in at)
            if first is None and (best["modes"] or 0) >= args.min_modes:
                first = step
            print(f"    step {step:>6}: best primary {best['primary']:.4f} (config {best['config_id']}, lr {best['lr']:.2g}, "
                  f"beta1 {best['beta1']:.2f}, modes {best['modes']}/{best['modes_total']}); most modes of any config {covered}")
        print(f"  {loss}: the best config first covers >= {args.min_modes} modes at step "
              f"{first if first is not None else f'> {args.steps}'}")


if __name__ == "__main__":
    main()
