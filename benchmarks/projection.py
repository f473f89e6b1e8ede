"""GPU-hours for Lucic et al.'s CelebA phase 1, projected from measured step and scoring times.

    python benchmarks/projection.py --packing 3.1                 # measure here (CUDA: bf16), then project
    python benchmarks/projection.py --step-s 0.004 --score-s 30 --ckpt-s 1.5 --setup-s 5 --packing 3
                                                                  # project from figures measured elsewhere

The study: 7 losses (mm, ns, ls, wgan, wgan-gp, dragan, began) x 100 configs (lucic-wide: n_disc is 1
or 5 with equal odds; config 0 is the loss's published defaults) x 40 epochs of CelebA at 64 px
(162,770 training images, batch 64: ceil(40 * 162,770 / 64) = 101,732 generator steps per trial),
FID on 10,000 generated images at 5 checkpoints per trial (the real side computed once, cached).

    hours = [sum over trials of (steps x step time) + trials x (5 checkpoint writes + setup)] / packing
            + trials x 5 x (one FID scoring)                       (scoring is not assumed to pack)

Measured here (``--measure``, the default unless --step-s is given): the harness's loop time per step
for every loss at n_disc 1 and 5 (infogan, 64 px, ``bench-rgb`` random images of CelebA's shape), the
checkpoint write and setup of those runs, and one checkpoint scored the way a study scores it
(``bench.metrics.Scorer``: 10,000 samples, inception-v3-compat with random weights: the same
network and cost as the real weights). The packing factor is an input: measure it with
benchmarks/packing.py. The result is a projection from measured rates, not a measured study.
"""
from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LOSSES = ("mm", "ns", "ls", "wgan", "wgan-gp", "dragan", "began")
CONFIGS = 100
EPOCHS, N_TRAIN, BATCH = 40, 162_770, 64
STEPS = math.ceil(EPOCHS * N_TRAIN / BATCH)  # 101,732
CHECKPOINTS = 5
EVAL_SAMPLES = 10_000


def measure_steps(device: str, precision: str, res: int, steps: int, tmp: Path, graphs: bool = False) -> dict:
    import losses

    from bench.config import TrainConfig
    from common import harness_run

    per, ck, setup = {}, [], []
    for loss in LOSSES:
        for nd in sorted({1, 5, losses.get(loss).published["n_disc"]}):
            cfg = TrainConfig(dataset="bench-rgb", arch="infogan", loss=loss, resolution=res, steps=steps,
                              ckpt_every=steps, n_disc=nd, device=device, precision=precision, cuda_graphs=graphs,
                              seed=0)
            if not per:  # warm-up: CUDA context, cuDNN autotuning
                harness_run(TrainConfig(**{**cfg.to_dict(), "steps": 50, "ckpt_every": 50}), tmp / "warm")
            out = tmp / f"{loss}-{nd}"
            r = harness_run(cfg, out)
            shutil.rmtree(out, ignore_errors=True)
            per[loss, nd] = r["loop_s"] / r["steps"]
            ck.append(r["ckpt_s"])
            setup.append(r["setup_s"])
            print(f"  {loss:<8} n_disc {nd}: {1000 * per[loss, nd]:7.2f} ms/step, checkpoint {r['ckpt_s']:.2f} s "
                  f"({r['ckpt_mb']:.0f} MB)", flush=True)
    return {"per": per, "ckpt_s": statistics.median(ck), "setup_s": statistics.median(setup)}


def measure_scoring(device: str, res: int, n: int, metrics: list[str], tmp: Path) -> dict:
    import torch

    import models
    from bench.metrics import Scorer
    from bench.metrics.feature_extractor_inception import write_random_inception_weights
    from bench.metrics.samples import sampler

    weights = str(write_random_inception_weights(tmp / "inception.pth"))
    t = time.perf_counter()
    scorer = Scorer("bench-rgb", metrics=metrics, extractor="inception-v3-compat", n=n, fe_weights=weights,
                    resolution=res, device=device)
    ref_s = time.perf_counter() - t
    torch.manual_seed(0)
    G, _ = models.build("infogan", models.DataSpec("images", (3, res, res)), 64, "batch")
    G = G.to(device).eval()
    times = []
    for _ in range(2):
        t = time.perf_counter()
        scorer.score(sampler(G, 64, "uniform", seed=0, device=device))
        times.append(time.perf_counter() - t)
    return {"ref_s": ref_s, "score_s": min(times), "all": times}


ADAM_BYTES = 28  # fused fp32 Adam per parameter: reads param, grad, exp_avg, exp_avg_sq; writes param and both moments


def optimizer_floor(device: str, res: int) -> dict:
    """A lower bound on one study step's time from memory traffic alone: the bytes the Adam updates
    must move (counted from infogan's parameters at ``res`` px) over this device's measured copy
    bandwidth. Forward and backward passes, which also read the weights, come on top."""
    import torch

    import models

    G, D = models.build("infogan", models.DataSpec("images", (3, res, res)), 64, "batch")
    n_g, n_d = (sum(p.numel() for p in m.parameters()) for m in (G, D))
    x = torch.empty(2**28, dtype=torch.uint8, device=device)  # 256 MiB
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    if device == "cuda":
        torch.cuda.synchronize()
    t, k = time.perf_counter(), 20
    for _ in range(k):
        y.copy_(x)
    if device == "cuda":
        torch.cuda.synchronize()
    bw = 2 * x.numel() * k / (time.perf_counter() - t)  # bytes read + written per second
    per = {nd: ADAM_BYTES * (nd * n_d + n_g) / bw for nd in (1, 5)}
    return {"n_g": n_g, "n_d": n_d, "bw": bw, "per": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packing", type=float, default=1.0, help="trials/hour speed-up from packing (benchmarks/packing.py)")
    ap.add_argument("--step-s", type=float, help="mean seconds per generator step over the study's mix (skip measuring)")
    ap.add_argument("--score-s", type=float, help="seconds to score one checkpoint, FID on 10k (skip measuring)")
    ap.add_argument("--no-scoring", action="store_true",
                    help="leave scoring out (not measured): the result is then a lower bound")
    ap.add_argument("--ckpt-s", type=float, help="seconds per checkpoint write")
    ap.add_argument("--setup-s", type=float, help="seconds of setup per trial (dataset, models)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--floor", action="store_true",
                    help="also print the study's GPU-hours at the memory floor of its optimizer updates (measured bandwidth)")
    ap.add_argument("--precision", help="fp32 or bf16 (default: bf16 on CUDA, fp32 on CPU)")
    ap.add_argument("--cuda-graphs", action="store_true", help="measure steps replayed as CUDA graphs (bench train --cuda-graphs)")
    ap.add_argument("--resolution", type=int, default=64, help="measure at this size (64 = CelebA; smaller only for a smoke test)")
    ap.add_argument("--steps", type=int, default=300, help="steps per measured run (default 300)")
    ap.add_argument("--samples", type=int, default=EVAL_SAMPLES, help="samples per scored checkpoint (default 10,000)")
    ap.add_argument("--metrics", default="fid", help="metrics per checkpoint (default fid, Lucic's; 'default' for the study's)")
    args = ap.parse_args()

    from common import machine, register_synthetic

    register_synthetic()
    from bench.train import pick_device

    device = pick_device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    measuring = args.step_s is None or (args.score_s is None and not args.no_scoring)
    print(f"machine: {machine()}" if measuring else
          "all rates given on the command line (this machine measured nothing; name the machine they come from)")
    tmp = Path(tempfile.mkdtemp(prefix="gan-bench-projection-"))
    try:
        if args.step_s is None:
            print(f"measuring the harness loop: infogan {args.resolution} px, {precision}"
                  f"{', CUDA graphs' if args.cuda_graphs else ''}, {args.steps} steps per run", flush=True)
            m = measure_steps(device.type, precision, args.resolution, args.steps, tmp, args.cuda_graphs)
            import losses

            per_loss = {}
            for loss in LOSSES:
                pub = losses.get(loss).published["n_disc"]
                per_loss[loss] = (m["per"][loss, pub] + (CONFIGS - 1) * (m["per"][loss, 1] + m["per"][loss, 5]) / 2) / CONFIGS
            step_s = statistics.mean(per_loss.values())
            src_step = f"measured here ({device.type}, {precision}, {args.resolution} px{', CUDA graphs' if args.cuda_graphs else ''})"
        else:
            step_s, per_loss, m, src_step = args.step_s, None, {}, "given"
        ckpt_s = args.ckpt_s if args.ckpt_s is not None else m.get("ckpt_s", 0.0)
        setup_s = args.setup_s if args.setup_s is not None else m.get("setup_s", 0.0)
        if args.no_scoring:
            score_s, src_score = 0.0, "NOT MEASURED: left out, so the total is a lower bound"
        elif args.score_s is None:
            print(f"measuring one checkpoint's scoring: {args.samples} samples, metrics {args.metrics}, inception-v3-compat",
                  flush=True)
            s = measure_scoring(device.type, args.resolution, args.samples, args.metrics.split(","), tmp)
            score_s = s["score_s"]
            print(f"  real side (once per study, then cached): {s['ref_s']:.1f} s; one checkpoint: "
                  f"{', '.join(f'{x:.1f}' for x in s['all'])} s", flush=True)
            src_score = f"measured here ({device.type})"
        else:
            score_s, src_score = args.score_s, "given"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    trials = len(LOSSES) * CONFIGS
    train_h = trials * STEPS * step_s / 3600
    ckpt_h = trials * CHECKPOINTS * ckpt_s / 3600
    setup_h = trials * setup_s / 3600
    score_h = trials * CHECKPOINTS * score_s / 3600
    total = (train_h + ckpt_h + setup_h) / args.packing + score_h
    print("\nLucic et al. 2018 CelebA phase 1: PROJECTION from measured rates (not a measured study)")
    print(f"  trials            {len(LOSSES)} losses x {CONFIGS} configs = {trials}")
    print(f"  steps per trial   ceil({EPOCHS} x {N_TRAIN:,} / {BATCH}) = {STEPS:,} (batch {BATCH}, 64 px)")
    if per_loss:
        print("  step time per loss, mixed over the study's n_disc (ms): "
              + ", ".join(f"{k} {1000 * v:.2f}" for k, v in per_loss.items()))
    print(f"  mean step time    {1000 * step_s:.3f} ms  [{src_step}]")
    print(f"  checkpoint write  {ckpt_s:.2f} s x {CHECKPOINTS} per trial; setup {setup_s:.2f} s per trial")
    print(f"  scoring           {score_s:.1f} s per checkpoint ({args.samples:,} samples, {args.metrics}) x {CHECKPOINTS}"
          f" per trial  [{src_score}]")
    print(f"  packing           {args.packing:g}x (trials per GPU speed-up; applied to training, checkpoints, setup)")
    print(f"  GPU-hours         training {train_h:.1f} + checkpoints {ckpt_h:.1f} + setup {setup_h:.1f}, / {args.packing:g}"
          f" = {(train_h + ckpt_h + setup_h) / args.packing:.1f}; scoring {score_h:.1f}")
    if args.floor:
        f = optimizer_floor(device.type, args.resolution)
        floor_s = (f["per"][1] + f["per"][5]) / 2  # n_disc 1 or 5 with equal odds (lucic-wide)
        print(f"  memory floor      Adam alone moves {ADAM_BYTES} B x ({f['n_d'] / 1e6:.1f}M D params x n_disc + "
              f"{f['n_g'] / 1e6:.1f}M G params) per step; at the measured {f['bw'] / 1e12:.2f} TB/s that is "
              f"{1000 * f['per'][1]:.2f} ms (n_disc 1) / {1000 * f['per'][5]:.2f} ms (n_disc 5): the study's training "
              f"needs >= {trials * STEPS * floor_s / 3600:.1f} GPU-hours on this device before any forward or backward "
              "pass, whatever the packing (packing shares the same memory bandwidth)")
    bound = " (lower bound: scoring left out)" if args.no_scoring else ""
    print(f"  TOTAL             {total:.1f} GPU-hours{bound} on the device the rates come from (target <= 24 H100-hours: "
          f"{'met' if total <= 24 else 'not met'} if that device is an H100)")


if __name__ == "__main__":
    main()
