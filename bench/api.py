"""gan-bench from Python (a notebook, a script): the CLI's commands as functions, with its defaults.

    from bench import api

    df = api.run_study(dataset="ring8", losses=["ns", "hinge"], budget=4, seeds=5,
                       storage="runs/studies", name="demo")            # the results table (pandas)
    doc = api.report("runs/studies/demo")                             # report.json's document; files in .../report/
    print(doc["headline"])
    api.results("runs/studies/demo")                                  # read a study's results again
    s = api.score("runs/r8", metrics=["w1", "modes"])                 # a checkpoint or run directory
    r = api.train(dataset="ring8", loss="ns", steps=2000, out="runs/r8")
    g = api.diagnose("runs/r8", losses="mm,ns")                        # G frozen, D toward optimality
    api.tensorboard("runs/studies/demo")                               # event files; tensorboard --logdir ...
    api.load_plugin("examples/fgan_kl.py")                            # what --plugin does

Every keyword is the command's flag with ``-`` as ``_`` (``--eval-every`` is ``eval_every``) and has
the flag's default: the one defaults table is each command's argparse definition (bench/commands/),
which ``options(command)`` reads, so the API and the CLI cannot drift apart. A list may stand for a
comma-separated flag. Bad input raises ``bench.errors.UsageError`` with the CLI's one-line message,
before anything is written; nothing is printed.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bench.errors import UsageError

__all__ = ["options", "run_study", "resume_study", "status", "results", "report", "score", "train", "diagnose",
           "tensorboard", "load_plugin"]


def _subparser(command: str) -> argparse.ArgumentParser:
    from bench.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def options(command: str) -> dict[str, Any]:
    """The keywords a command takes and their defaults (``None``: the dataset's or the run's own)."""
    return {a.dest: a.default for a in _subparser(command)._actions
            if a.dest not in ("help", "json", "plugin") and a.default is not argparse.SUPPRESS}


def _args(command: str, given: dict[str, Any]) -> argparse.Namespace:
    """The Namespace the CLI's parser would make: defaults, then ``given`` (lists joined by commas)."""
    known = options(command)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TypeError(f"{command}() got unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    actions = {a.dest: a for a in _subparser(command)._actions}
    needed = [d for d, a in actions.items()
              if (a.required or (not a.option_strings and a.nargs not in ("?", "*"))) and given.get(d) is None]
    if needed:
        raise TypeError(f"{command}() needs {', '.join(needed)}")
    values = dict(known)
    for k, v in given.items():
        values[k] = _value(actions[k], v)
    return argparse.Namespace(command=command, json=False, plugin=None, **values)


def _value(action: argparse.Action, v: Any) -> Any:
    """A keyword's value as argparse would have parsed it: a list for a comma-separated flag joined,
    paths as strings, a string through the flag's ``type``, the flag's ``choices`` enforced."""
    flag = action.option_strings[0] if action.option_strings else action.dest
    if isinstance(v, (list, tuple)) and type(action) is argparse._StoreAction and action.nargs is None:
        v = ",".join(map(str, v))  # losses=["ns", "hinge"] is --losses ns,hinge
    if isinstance(v, (list, tuple)):  # a repeatable flag (--reg r1=1 --reg noise=0.1): each item typed
        items = [str(x) for x in v]
        return [_typed(action, flag, x) for x in items] if isinstance(action, argparse._AppendAction) else items
    if isinstance(v, os.PathLike):
        v = str(v)
    v = _typed(action, flag, v)
    if action.choices is not None and v is not None and v not in action.choices:
        raise UsageError(f"{flag}: invalid choice {v!r} (choose from {', '.join(map(str, action.choices))})")
    return v


def _typed(action: argparse.Action, flag: str, v: Any) -> Any:
    """A string through the flag's ``type``, as argparse applies it; anything else as given."""
    if not (isinstance(v, str) and callable(action.type)):
        return v
    try:
        return action.type(v)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
        raise UsageError(f"{flag}: invalid value {v!r} ({e})") from None


def run_study(**kw: Any):
    """``bench run``: create and run a study; returns its results table (``df.attrs["study"]``: where it is)."""
    from bench.commands import run

    place, df = run.start(_args("run", kw))
    df.attrs["study"] = str(place)
    return df


def resume_study(study_dir: str | Path, **kw: Any):
    """``bench resume``: run exactly the trials the study's ledger lacks; returns its results table."""
    from bench.commands import run

    place, df = run.restart(_args("resume", {"study_dir": study_dir, **kw}))
    df.attrs["study"] = str(place)
    return df


def status(study_dir: str | Path):
    """``bench status``: the study's progress per cell (a DataFrame)."""
    from bench.run_study import status_table
    from bench.storage import study_dir_at

    return status_table(study_dir_at(str(study_dir)))


def results(study_dir: str | Path):
    """A study's results table (one row per finished trial; ``bench.results.read``)."""
    from bench import results as results_

    if not results_.exists(study_dir):  # a directory, or an s3:// URI
        raise UsageError(f"no study results at {study_dir} (expected a study directory made by bench run)")
    return results_.read(study_dir)


def report(*inputs: str | Path, **kw: Any) -> dict[str, Any]:
    """``bench report``: write the report of studies or results files; returns report.json's document
    (with ``out``: the directory holding index.html)."""
    from bench.commands import report as report_

    if not inputs:
        raise TypeError("report() needs at least one study directory or results file")
    _, doc, out = report_.build(_args("report", {"inputs": list(inputs), **kw}))
    return {**doc, "out": str(out)}


def score(target: str | Path | None = None, **kw: Any) -> dict[str, Any]:
    """``bench score``: scores of a checkpoint or run directory (or ``generator=FILE.pt2, z_dim=, dataset=``)."""
    from bench.commands import score as score_

    return score_.compute(_args("score", {"target": target, **kw}))


def train(**kw: Any):
    """``bench train``: train (or resume) one run into ``out``; returns its ``RunResult``."""
    from bench.commands import train as train_

    return train_.execute(_args("train", kw))


def diagnose(target: str | Path | None = None, **kw: Any) -> dict[str, Any]:
    """``bench diagnose``: Arjovsky & Bottou's gradient experiment on a checkpoint or run directory
    (``{"losses": {NAME: {"d_steps", "g_grad_norm_mean", "g_grad_norm_std", ...}}, "provenance"}``),
    and with ``divergences=True`` the JS/W1 curves; the files go to ``out``."""
    from bench.commands import diagnose as diagnose_

    return diagnose_.compute(_args("diagnose", {"target": None if target is None else str(target), **kw}))


def tensorboard(source: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """``bench tensorboard``: a study's or run's curves as TensorBoard event files in ``out``
    (default SOURCE/tensorboard); returns ``{"out", "runs", "cells", "scalars"}``."""
    from bench.tensorboard_export import export

    args = _args("tensorboard", {"source": str(source), "out": None if out is None else str(out)})
    return export(args.source, args.out)


def load_plugin(spec: str | Path):
    """What ``--plugin`` does: import a file or module that registers components (idempotent)."""
    from bench import plugins

    return plugins.load(str(spec))
