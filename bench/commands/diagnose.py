"""``bench diagnose``: why a loss fails, measured on a stored checkpoint (bench.diagnose)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    import losses
    import models

    p = sub.add_parser(
        "diagnose", help="Arjovsky & Bottou's experiment on a checkpoint: G frozen, D trained toward optimality, "
                         "every loss's generator gradient measured",
        description="Freeze the generator of CHECKPOINT_OR_RUN (a run directory means its latest checkpoint), train a "
        "fresh discriminator toward optimality with each loss's D objective, and measure the norm of each loss's "
        "generator gradient along the way (Arjovsky & Bottou 2017, Fig. 2): mm's vanishes as D improves, ns's stays "
        "large with growing variance. Writes diagnose.json and gradients.png into --out. --divergences adds JS, KL "
        "and W1 between two Gaussians pulled apart, computed exactly (divergences.json, divergences.png).",
    )
    p.add_argument("target", nargs="?", metavar="CHECKPOINT_OR_RUN", help="a bench train checkpoint or run directory")
    p.add_argument("--losses", default="all", help=f"comma-separated, or all (default): {', '.join(losses.names())}")
    p.add_argument("--d-steps", type=int, default=2000, help="D steps toward optimality (default 2000)")
    p.add_argument("--lr", type=float, default=1e-3, help="D's Adam learning rate (default 1e-3)")
    p.add_argument("--beta1", type=float, default=0.5, help="D's Adam beta1 (default 0.5)")
    p.add_argument("--beta2", type=float, default=0.999, help="D's Adam beta2 (default 0.999)")
    p.add_argument("--norm", default="none", help=f"D normalization: {', '.join(models.NORMS)} (default none: "
                   "BatchNorm normalises real and fake batches apart, which keeps D from being sure)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the checkpoint's)")
    p.add_argument("--batches", type=int, default=10, help="fresh batches per measurement (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of D's initialisation and the batches (default 0)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--divergences", action="store_true", help="also (or, without a checkpoint, only) the JS/W1 figure")
    p.add_argument("--sigma", type=float, default=0.1, help="the Gaussians' standard deviation for --divergences (default 0.1)")
    p.add_argument("--out", help="output directory (default: diagnose/ in the checkpoint's run directory, "
                   "or ./diagnose for --divergences alone)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def _loss_names(text: str) -> list[str]:
    import losses

    names = losses.names() if text.strip() == "all" else [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise UsageError("--losses names no loss")
    for n in names:
        if n not in losses.names():
            raise UsageError(f"unknown loss '{n}'; known: {', '.join(losses.names())} (or all)")
    return names


def default_out(target: str | None) -> Path:
    if target is None:
        return Path("diagnose")
    p = Path(target)
    run = p if p.is_dir() else p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run / "diagnose"


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``bench diagnose`` prints and writes: ``{"losses", "skipped", "provenance"}`` for a
    checkpoint, ``"divergences"`` with --divergences; the files go to ``out`` (returned as ``out``)."""
    import math

    from bench.io import atomic_write_bytes, atomic_write_json

    if args.target is None and not args.divergences:
        raise UsageError("give CHECKPOINT_OR_RUN, or --divergences (or both)")
    if not (math.isfinite(args.sigma) and args.sigma > 0):
        raise UsageError(f"--sigma must be a positive number, got {args.sigma}")
    out: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if args.target is not None:
        from bench.diagnose import figures, gradients

        names = _loss_names(args.losses)
        settings = gradients.Settings(d_steps=args.d_steps, lr=args.lr, beta1=args.beta1, beta2=args.beta2,
                                      d_norm=args.norm, batch_size=args.batch_size, batches=args.batches,
                                      seed=args.seed, device=args.device)
        settings.check()  # before the checkpoint is read
        out.update(gradients.curves(args.target, names, settings))
        files["gradients.png"] = figures.gradients(out)
    if args.divergences:
        import numpy as np

        from bench.diagnose import divergences, figures

        out["divergences"] = divergences.curves(np.linspace(0, 10 * args.sigma, 51), args.sigma)
        files["divergences.png"] = figures.divergences(out["divergences"])
    where = Path(args.out) if args.out else default_out(args.target)
    for name, data in files.items():
        atomic_write_bytes(where / name, data)
    atomic_write_json(where / "diagnose.json", out)
    return {**out, "out": str(where)}


def run(args: argparse.Namespace) -> int:
    out = compute(args)
    print(json.dumps(out, sort_keys=True) if args.json else _table(out))
    return 0


def _table(out: dict[str, Any]) -> str:
    lines = []
    if "losses" in out:
        lines.append("||grad of G's loss|| (mean over batches) after D steps toward optimality, G frozen:")
        steps = next(iter(out["losses"].values()))["d_steps"] if out["losses"] else []
        lines.append(f"{'loss':<10}" + "".join(f"{s:>10}" for s in steps) + f"{'last/first':>12}")
        for name, r in out["losses"].items():
            m = r["g_grad_norm_mean"]
            lines.append(f"{name:<10}" + "".join(f"{v:>10.3g}" for v in m) + f"{m[-1] / m[0] if m[0] else float('nan'):>12.3g}")
        for name, why in out.get("skipped", {}).items():
            lines.append(f"{name:<10}skipped: {why}")
    if "divergences" in out:
        d = out["divergences"]
        lines.append(f"JS / W1 between N(0, {d['sigma']:g}^2 I) and N((theta, 0), {d['sigma']:g}^2 I):")
        for t, js, w in list(zip(d["theta"], d["js"], d["w1"]))[::5]:
            lines.append(f"  theta {t:6.3f}  JS {js:.6f} nats (log 2 = 0.693147)  W1 {w:.3f}")
    lines.append(f"written: {out['out']}/diagnose.json and its figures")
    return "\n".join(lines)
