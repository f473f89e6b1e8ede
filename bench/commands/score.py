"""``bench score``: score a checkpoint of ``bench train``, or a generator trained anywhere."""
from __future__ import annotations

import argparse
import json
from typing import Any

from bench.errors import UsageError

# Keys shown by the table, in order (others follow).
_ORDER = ("w1", "fid", "kid", "kid_std", "precision", "recall", "f_score", "density", "coverage", "is", "is_std",
          "modes", "modes_total", "hq_fraction", "mode_kl")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from bench.metrics import DEFAULTS, registry
    p = sub.add_parser(
        "score", help="score a checkpoint (or a torch.export generator) with W1, FID, KID, PR, density/coverage, IS, modes",
        description="Score RUN_DIR_OR_CHECKPOINT (a run directory means its latest checkpoint) or, with --generator, "
        "a torch.export program mapping z ~ N(0, I) [N, D] to samples. Real-side features are cached under "
        "$GAN_BENCH_CACHE/reference. Nothing is downloaded: Inception weights come from --fe-weights, "
        "$GAN_BENCH_INCEPTION_WEIGHTS or $TORCH_HOME/hub/checkpoints/. The dataset's primary metric (the one studies "
        "rank by: w1 for 2-D point data, fid for images) is always computed and shown first.",
    )
    p.add_argument("target", nargs="?", metavar="RUN_DIR_OR_CHECKPOINT", help="a bench train run directory or checkpoint")
    p.add_argument("--generator", metavar="FILE.pt2", help="a torch.export program (torch.export.save) instead")
    p.add_argument("--z-dim", type=int, help="latent dimension of --generator (z ~ N(0, I))")
    p.add_argument("--dataset", help="dataset to compare with (default: the run's; required with --generator)")
    p.add_argument("--metrics", help=f"comma-separated: {','.join(registry.metric_names())} or 'default' (default: the dataset's)")
    p.add_argument("--feature-extractor", help=f"{', '.join(registry.extractor_names())} (default: the dataset's, "
                   "`bench list datasets`)")
    p.add_argument("--fe-weights", metavar="PATH", help="feature-extractor weights (Inception: "
                   "weights-inception-2015-12-05-6726825d.pth)")
    p.add_argument("--samples", type=int, help="generated samples (default: the dataset's, `bench list datasets`); "
                   "the real side uses min(this, split size)")
    p.add_argument("--split", default=DEFAULTS["split"], help="real split to compare with: train or test (default test)")
    p.add_argument("--resolution", type=int, help="image size (default: the run's, or the generator's output size)")
    p.add_argument("--data-root", help="where real datasets live (default: the run's, $GAN_BENCH_DATA or ./data)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of the latent draws (default 0)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> list[str] | None:
    """Cheap checks first, before torch-fidelity or any data is loaded."""
    from bench.metrics import registry

    if (args.target is None) == (args.generator is None):
        raise UsageError("give either RUN_DIR_OR_CHECKPOINT or --generator FILE.pt2 (exactly one)")
    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not metrics:
            raise UsageError("--metrics is empty")
        registry.check_metrics(metrics)
    if args.feature_extractor is not None:
        registry.check_extractor(args.feature_extractor)
    if args.samples is not None and args.samples <= 0:
        raise UsageError(f"--samples must be a positive integer, got {args.samples}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    from bench.config import DEVICES

    if args.device not in DEVICES:
        raise UsageError(f"unknown device '{args.device}'; known: {', '.join(DEVICES)}")
    from pathlib import Path

    path = Path(args.generator if args.generator is not None else args.target)
    if not path.exists():
        raise UsageError(f"{'generator' if args.generator is not None else 'checkpoint'} not found: {path}")
    if args.generator is not None:
        if args.z_dim is None or args.dataset is None:
            raise UsageError("--generator needs --z-dim D and --dataset NAME")
        if args.z_dim <= 0:
            raise UsageError(f"--z-dim must be a positive integer, got {args.z_dim}")
    elif args.z_dim is not None:
        raise UsageError("--z-dim applies only to --generator (a checkpoint knows its own)")
    return metrics


def run(args: argparse.Namespace) -> int:
    out = compute(args)
    print(json.dumps(out, sort_keys=True) if args.json else _table(out))
    return 0


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """The scores the flags ask for (strict JSON: non-finite values as strings), with provenance."""
    metrics = _validate(args)
    from bench.metrics.score import json_safe, score_checkpoint, score_generator_file
    from bench.train import pick_device

    device = pick_device(args.device)
    kw: dict[str, Any] = dict(metrics=metrics, extractor=args.feature_extractor, n=args.samples,
                              fe_weights=args.fe_weights, split=args.split, seed=args.seed, device=device)
    for k in ("resolution", "data_root"):
        if getattr(args, k) is not None:
            kw[k] = getattr(args, k)
    if args.generator is not None:
        if "resolution" not in kw:
            kw["resolution"] = _probe_resolution(args)
        out = score_generator_file(args.generator, args.z_dim, args.dataset, **kw)
    else:
        out = score_checkpoint(args.target, dataset=args.dataset, **kw)
    return json_safe(out)


def _probe_resolution(args: argparse.Namespace) -> int | None:
    """Image datasets: the generator's output size (checked against the dataset later)."""
    import torch

    from bench import datasets
    from bench.metrics.generator_file import load_generator_file

    if datasets.get(args.dataset, split=args.split, root=args.data_root).kind == "points":
        return None
    x = load_generator_file(args.generator)(torch.zeros(2, args.z_dim))
    return int(x.shape[-1]) if x.dim() == 4 and x.shape[-1] == x.shape[-2] else None


def _table(out: dict[str, Any]) -> str:
    p = out["primary"]
    keys = [k for k in _ORDER if k in out] + sorted(k for k in out if k not in (*_ORDER, "provenance", "primary"))
    lines = [f"primary: {p['metric']} = {_fmt(p['value'])} ({'lower' if p['lower_is_better'] else 'higher'} is better)",
             f"{'metric':<12} value"] + [f"{k:<12} {_fmt(out[k])}" for k in keys]
    lines.append("provenance:")
    lines += [f"  {k:<20} {v}" for k, v in sorted(out["provenance"].items())]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)
