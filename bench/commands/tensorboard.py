"""``bench tensorboard``: a study's (or a run's) training curves, health and scores as TensorBoard event files."""
from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tensorboard", help="export a study's or a run's curves (losses, health, scores) for TensorBoard",
        description="Write the metrics.jsonl and scores.jsonl of every trial of STUDY_OR_RUN as TensorBoard event "
        "files, one TensorBoard run per trial named CELL/TRIAL_ID (CELL = dataset-loss-arch), tags train/, health/, "
        "speed/ and scores/. Run it again to refresh (a running study exports what it has so far). "
        "Then: tensorboard --logdir OUT",
    )
    p.add_argument("source", metavar="STUDY_OR_RUN", help="a bench run study directory or a bench train run directory")
    p.add_argument("--out", help="output directory (default: STUDY_OR_RUN/tensorboard); "
                   "must be new, empty or a previous export")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.tensorboard_export import export

    done = export(args.source, args.out)
    if args.json:
        print(json.dumps(done))
    else:
        print(f"exported {done['runs']} run(s) in {done['cells']} cell(s), {done['scalars']} scalars, to {done['out']}")
        print(f"open them with: tensorboard --logdir {done['out']}")
    return 0
