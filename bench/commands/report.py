"""``bench report``: statistical verdicts and a publishable leaderboard from one or more studies."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import UsageError

MIN_RESAMPLES = 100


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="verdicts and a leaderboard: does any loss consistently beat the baseline?",
        description="Turn studies (directories made by bench run) or results files (.parquet or .csv with at "
        "least dataset, loss, phase, config_id, seed, status and the metric) into verdicts against a baseline: "
        "budget curves of the search phase (expected best of k configs), seeds-phase medians, IQMs, Mann-Whitney "
        "tests and probabilities of improvement, Holm-corrected over the whole report, and Friedman/Nemenyi ranks "
        "across >= 3 datasets. Writes index.html, leaderboard.md, summary.csv, verdicts.csv, budget.csv, report.json "
        "and PNG figures. Diverged and failed trials count as the worst value.",
    )
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_RESULTS", help="study directories or results files (merged)")
    p.add_argument("--out", help="report directory (default: report/ in the first input's directory: the study "
                   "directory, or the folder holding the results file); must be new, empty or a previous report")
    p.add_argument("--factor", default="loss", help="what is compared: loss (default), trick (a study's --tricks), arch, "
                   "or a searched hyperparameter with a few values (hp_d_norm, ...); the other cell columns that vary "
                   "join the dataset label, so levels are compared with everything else equal")
    p.add_argument("--baseline", help="the level every other is compared with (default ns for --factor loss, none "
                   "for --factor trick; needed for other factors)")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate of all verdicts (default 0.05)")
    p.add_argument("--metric", default=None, help="what to rank by (default primary: each dataset's primary metric, "
                   "w1 for 2-D point data and fid for images, at each trial's best checkpoint; fid for studies made before "
                   "primary metrics); or a score column (fid, w1, kid, precision, modes, ...: its <metric>_best column where "
                   "present; lower is better for fid/w1/kid, higher for precision, recall, ...; a plugin's metric needs its --plugin), or a `bench rescore` "
                   "protocol such as fid/identity/2k-vs-test to report on those scores")
    p.add_argument("--budget", type=int, nargs="+", action="extend", default=[], metavar="K",
                   help="also give budget verdicts at these k (besides k = the number of search configs)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutation draws (default 0)")
    p.add_argument("--no-samples", action="store_true", help="skip the sample grids from checkpoints")
    p.add_argument("--json", action="store_true", help="print one JSON object (verdicts, headline, ...) on stdout")
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> None:
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must be in (0, 1), got {args.alpha:g}")
    if args.resamples < MIN_RESAMPLES:
        raise UsageError(f"--resamples must be at least {MIN_RESAMPLES}, got {args.resamples}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    bad = [k for k in args.budget if k < 1]
    if bad:
        raise UsageError(f"--budget values must be positive integers, got {bad[0]}")
    if args.metric is not None and (not args.metric or args.metric.startswith(("_", "hp_"))
                                    or args.metric in ("dataset", "loss", "phase", "status")):
        raise UsageError(f"--metric {args.metric!r} is not a score column")


def _unloaded_plugins(inputs: list[str]) -> list[str]:
    """Names of the plugins the input studies ran with (study.json) that this process has not loaded."""
    from bench import plugins
    from bench.study_dir import STUDY

    have = {p.sha256 for p in plugins.loaded()}
    names: list[str] = []
    for where in inputs:
        try:
            recorded = json.loads((Path(where) / STUDY).read_text(encoding="utf-8")).get("plugins") or []
        except (OSError, ValueError, AttributeError):
            continue
        names += [str(p.get("name")) for p in recorded if isinstance(p, dict) and p.get("sha256") not in have]
    return sorted(set(names))


def default_out(first: str) -> Path:
    p = Path(first)
    return (p if p.is_dir() else p.parent) / "report"


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as e:  # names from the table (a loss called "a\nb") must not break the one-line refusal
        text = str(e)
        if "\n" in text or "\r" in text:
            raise UsageError(text.replace("\r", "\\r").replace("\n", "\\n")) from None
        raise


def _run(args: argparse.Namespace) -> int:
    rep, doc, out = build(args)
    if args.json:
        print(json.dumps(doc, allow_nan=False))
        return 0
    from reports import verdicts

    print(rep.headline)
    counts = doc["verdicts"]
    for word in verdicts.VERDICTS:
        n = sum(1 for v in counts if v["verdict"] == word)
        if n:
            print(f"  {word}: {n} comparison(s)")
    print(f"report: {out / 'index.html'} (also leaderboard.md, summary.csv, verdicts.csv, report.json)")
    return 0


def build(args: argparse.Namespace):
    """Write the report the flags ask for; returns (the analysis, the report.json document, the out directory)."""
    from bench.storage import refuse_uri

    for where in args.inputs:  # the report reads results and checkpoints as local files, and writes next to them
        refuse_uri(where, "bench report")
    _validate(args)
    from reports import load, metrics

    protocol = None
    if args.metric is not None and "/" in args.metric:  # a `bench rescore` protocol: its scores.parquet rows, in results-table shape
        from bench.rescore import parse_protocol

        protocol, args.metric = args.metric, parse_protocol(args.metric).metric
    from reports import factor

    table = factor.compare_along(load.read_inputs(args.inputs, protocol), args.factor)
    if args.metric is None:
        args.metric = metrics.default_metric(table)
    try:
        metrics.check(table, args.metric)
    except UsageError as e:
        missing = _unloaded_plugins(args.inputs)
        raise UsageError(f"{e} (the study ran with plugin(s) {', '.join(missing)})" if missing else str(e)) from None
    levels = sorted(table["loss"].astype(str).unique())
    noun = factor.noun(args.factor)
    if args.baseline is None:
        args.baseline = factor.default_baseline(args.factor)
        if args.baseline is None:
            raise UsageError(f"--factor {args.factor} needs --baseline: one of {', '.join(levels)}")
    if args.baseline not in levels:
        raise UsageError(f"unknown baseline '{args.baseline}': the inputs have {noun} {', '.join(levels)}")
    out = Path(args.out) if args.out else default_out(args.inputs[0])
    from reports import analysis, output  # scipy, seaborn: after the cheap checks

    previous = output.check_out(out)
    inputs = [load.input_name(p) for p in args.inputs]

    trials = metrics.prepare(table, args.metric)
    label = f"the primary metric ({metrics.primary_label(table)})" if args.metric == metrics.PRIMARY else args.metric
    rep = analysis.analyse(trials, args.baseline, args.alpha, args.metric, args.budget, args.resamples, args.seed,
                           metric_label=label, factor=noun)
    return rep, output.write(rep, trials, out, inputs, previous, samples=not args.no_samples), out
