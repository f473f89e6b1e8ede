"""``bench rescore``: score a study's stored checkpoints under a new protocol, as Ray tasks; or add a
generator trained elsewhere (a torch.export program) to the study's scores."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from bench.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from bench.metrics import registry

    p = sub.add_parser(
        "rescore", help="score a study's checkpoints under a new protocol (Ray tasks), or add an external generator",
        description="Score the checkpoints of the study DIR with --metrics / --feature-extractor / --samples / --split "
        "as Ray tasks (a private local Ray, or --address). The real-side statistics are computed once in the driver "
        "and shared with every task. Scores go to DIR/scores.parquet, one row per (trial_id, step, protocol), where the "
        "protocol is METRIC/EXTRACTOR[@WEIGHTS8]/COUNT-vs-SPLIT (e.g. fid/inception-v3-compat@f58cb969/10k-vs-test). "
        "Only what is missing is scored; earlier scores are never overwritten. A missing, corrupt or refused "
        "checkpoint is an error row and the exit status is 1. With --generator FILE.pt2 ... --into DIR, a generator "
        "trained elsewhere is scored the same way and added as source=external, loss=LABEL.",
    )
    p.add_argument("study_dir", nargs="?", metavar="DIR", help="the study directory (<storage>/<name>)")
    p.add_argument("--metrics", help=f"comma-separated families: {','.join(registry.metric_names())} or default (default: each "
                   "dataset's)")
    p.add_argument("--feature-extractor", help=f"{', '.join(registry.extractor_names())} (default: the dataset's)")
    p.add_argument("--fe-weights", metavar="PATH", help="feature-extractor weights (Inception: "
                   "weights-inception-2015-12-05-6726825d.pth; a path every Ray node can read)")
    p.add_argument("--samples", type=int, help="generated samples per checkpoint (default: the dataset's)")
    p.add_argument("--split", default="test", help="real split to compare with: test or train (default test)")
    p.add_argument("--checkpoints", help="final (default: each trial's last), best (its best by training FID) or "
                   "all (every stored checkpoint)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="join the Ray cluster at HOST:PORT; default: a private local Ray (env RAY_ADDRESS)")
    p.add_argument("--gpus-per-task", type=float, default=0.0, help="GPUs each task reserves (fractions share one; default 0)")
    p.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs each task reserves (default 1)")
    g = p.add_argument_group("a generator trained elsewhere")
    g.add_argument("--generator", metavar="FILE.pt2", help="a torch.export program mapping z ~ N(0, I) [N, D] to samples")
    g.add_argument("--z-dim", type=int, help="its latent dimension D")
    g.add_argument("--dataset", help="the study dataset it is compared on")
    g.add_argument("--label", help="its name in the leaderboard (the loss column)")
    g.add_argument("--into", metavar="DIR", help="the study whose scores.parquet it joins")
    p.add_argument("--verbose", action="store_true", help="show Ray's own output")
    p.add_argument("--json", action="store_true", help="print one JSON object (the summary)")
    p.set_defaults(func=run)


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError("--metrics is empty")
    return names


def _options(args: argparse.Namespace):
    from bench.rescore.driver import CHECKPOINTS, Options, check_options

    checkpoints = args.checkpoints or "final"
    if checkpoints not in CHECKPOINTS:
        raise UsageError(f"--checkpoints must be one of {', '.join(CHECKPOINTS)}, got {checkpoints!r}")
    opts = Options(metrics=_names(args.metrics) if args.metrics is not None else None, extractor=args.feature_extractor,
                   fe_weights=args.fe_weights, samples=args.samples, split=args.split, checkpoints=checkpoints,
                   address=args.address, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                   verbose=args.verbose)
    check_options(opts)
    return opts


def run(args: argparse.Namespace) -> int:
    from bench.storage import refuse_uri

    # Rescoring reads every checkpoint and rewrites scores.parquet next to them: a local copy (S3 later).
    for where in (args.study_dir, args.into):
        if where is not None:
            refuse_uri(where, "bench rescore")
    external = [args.generator, args.z_dim, args.dataset, args.label, args.into]
    if args.generator is not None:
        if args.study_dir is not None:
            raise UsageError("with --generator, name the study with --into DIR (not as DIR)")
        if None in external:
            flags = [f for f, v in zip(("--generator", "--z-dim", "--dataset", "--label", "--into"), external) if v is None]
            raise UsageError("--generator needs --z-dim D, --dataset NAME, --label LABEL and --into DIR "
                             f"(missing {', '.join(flags)})")
        if args.checkpoints is not None:
            raise UsageError("--checkpoints applies to a study's checkpoints, not to --generator")
        opts = _options(args)
        from bench.rescore.driver import add_external

        summary = add_external(args.into, args.generator, args.z_dim, args.dataset, args.label, opts)
        return _report(summary, args.json, f"external generator {args.label}")
    if any(v is not None for v in external[1:]):
        raise UsageError("--z-dim, --dataset, --label and --into apply only with --generator FILE.pt2")
    if args.study_dir is None:
        raise UsageError("give a study DIR, or --generator FILE.pt2 with --z-dim, --dataset, --label and --into")
    opts = _options(args)
    from bench.rescore.driver import rescore_study

    quiet = args.json
    done = [0]

    def progress(job: dict[str, Any], res: dict[str, Any]) -> None:
        done[0] += 1
        if not quiet:
            what = f"error: {res['error']}" if res.get("error") else "ok"
            sys.stderr.write(f"[{done[0]}/{job['of']}] {job['trial_id']} step {job['step']}: {what}\n")

    summary = rescore_study(args.study_dir, opts, progress)
    return _report(summary, args.json, "checkpoints")


def _report(summary, as_json: bool, what: str) -> int:
    d = summary.to_dict()
    if as_json:
        print(json.dumps(d, sort_keys=True, default=str))
    else:
        print(f"rescore {summary.study_dir}: {summary.checkpoints} {what}, {summary.scored} scored, "
              f"{len(summary.errors)} errors, {summary.already} already scored"
              + (f", {len(summary.no_checkpoint)} trials without a checkpoint" if summary.no_checkpoint else "")
              + f" ({summary.wall_s:.1f} s)")
        print("protocols: " + ", ".join(summary.protocols))
        for e in summary.errors:
            print(f"error: {e['trial_id']} step {e['step']} ({e['checkpoint']}): {e['error']}")
        print(f"scores: {d['scores']} ({summary.rows_total} rows, {summary.rows_added} new)")
    return 1 if summary.errors else 0
