"""Training curves in TensorBoard: a study's (or one run's) metrics.jsonl and scores.jsonl as event files.

    bench tensorboard STUDY_OR_RUN [--out DIR]     # default DIR: STUDY_OR_RUN/tensorboard
    tensorboard --logdir DIR

One TensorBoard run per trial, named by its trial_id and grouped by its cell,
``<dataset>-<loss>-<arch>/<trial_id>``, so TensorBoard's run filter selects a cell with a regex.
Tags (the x axis is the generator step; the wall time is the run's own training seconds, so
TensorBoard's "Relative" axis shows training time):

    train/<key>    the losses of every log row (d_loss, g_loss, a loss's own state such as BEGAN's k_t)
    health/<key>   the training health of that window (``bench.health``: gradient norms, D's outputs,
                   d_auc, d_saturated, g_grad_norm_min)
    speed/steps_per_s
    scores/<key>   every numeric score of each scored checkpoint (scores.jsonl), ``scores/primary``
                   the dataset's primary metric; descriptive bitmasks (modes_mask) are not curves

A diverged run's NaN and inf losses are written as such (TensorBoard shows them), never dropped.

Everything is written with ``torch.utils.tensorboard.SummaryWriter`` into a temporary directory
beside DIR, which then takes DIR's place by rename (a previous export is renamed away first): DIR
never holds half an export, and a failed export leaves the previous one. DIR must be new, empty, or
a previous export (it holds ``MARKER``).
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from bench import health
from bench.errors import UsageError
from bench.run_dir import CONFIG, RunDir
from bench.study_dir import STUDY, TRIALS

MARKER = ".gan-bench-tensorboard.json"
FORMAT = "gan-bench/tensorboard/1"
DEFAULT_DIR = "tensorboard"
HEALTH = (*health.FIELDS[2:], "g_grad_norm_min", "d_saturated")
SPEED = ("steps_per_s",)
NOT_CURVES = {"step", "wall_s", "diverged_at", "health_steps"}  # the axes, and counts that are not curves
NOT_SCORES = {"step", "checkpoint", "provenance", "primary", "modes_mask"}


@dataclass(frozen=True)
class Run:
    """A run to export: its directory and the name TensorBoard shows (``cell/trial_id``)."""

    run: RunDir
    name: str


def _number(v: Any) -> float | None:
    """A JSON value as a scalar: numbers, and the strings json_safe writes for NaN and inf."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and v.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(v)
    return None


def scalars(metrics: Iterable[dict[str, Any]], scores: Iterable[dict[str, Any]]) -> list[tuple[str, int, float, float | None]]:
    """A run's (tag, step, value, walltime) from its metrics.jsonl and scores.jsonl rows."""
    out: list[tuple[str, int, float, float | None]] = []
    wall: dict[int, float] = {}
    for row in metrics:
        step = row.get("step")
        if not isinstance(step, int):
            continue
        w = _number(row.get("wall_s"))
        if w is not None and math.isfinite(w):
            wall[step] = w
        for k, v in sorted(row.items()):
            x = _number(v)
            if k in NOT_CURVES or x is None:
                continue
            group = "health" if k in HEALTH else "speed" if k in SPEED else "train"
            out.append((f"{group}/{k}", step, x, wall.get(step)))
    for row in scores:
        step = row.get("step")
        if not isinstance(step, int):
            continue
        primary = row.get("primary")
        if isinstance(primary, dict) and _number(primary.get("value")) is not None:
            out.append(("scores/primary", step, _number(primary["value"]), wall.get(step)))
        for k, v in sorted(row.items()):
            x = _number(v)
            if k not in NOT_SCORES and x is not None:
                out.append((f"scores/{k}", step, x, wall.get(step)))
    return out


def cell_name(config: dict[str, Any]) -> str:
    """``<dataset>-<loss>-<arch>`` as a directory name (a folder:PATH dataset keeps its last part)."""
    dataset = str(config.get("dataset", "unknown"))
    if dataset.startswith("folder:"):
        dataset = "folder-" + Path(dataset[len("folder:"):]).name
    name = f"{dataset}-{config.get('loss', 'unknown')}-{config.get('arch', 'unknown')}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"


def _config(run: RunDir) -> dict[str, Any]:
    try:
        d = json.loads((run / CONFIG).read_text())
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def find_runs(source: Path) -> list[Run]:
    """The runs of a study directory (every trials/<id>/ holding a config.json) or of one run directory."""
    if (source / STUDY).is_file():
        trials = sorted(p for p in (source / TRIALS).glob("*") if (p / CONFIG).is_file())
        return [Run(RunDir(p), f"{cell_name(_config(RunDir(p)))}/{p.name}") for p in trials]
    if (source / CONFIG).is_file():
        run = RunDir(source)
        return [Run(run, f"{cell_name(_config(run))}/{source.absolute().name}")]
    raise UsageError(f"{source} is neither a study directory ({STUDY}) nor a run directory ({CONFIG})")


def check_out(out: Path) -> None:
    """Refuse an ``out`` that holds anything but a previous export, before anything is written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"--out {out} holds other files and no previous export ({MARKER}): give a new or empty directory")


def export(source: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Write the event files of ``source`` (a study or run directory) into ``out``; returns a summary
    ``{"out", "runs", "cells", "scalars"}``."""
    if str(source).startswith("s3://"):
        raise UsageError("bench tensorboard reads a local study directory: copy the S3 study down first "
                         "(e.g. aws s3 sync s3://BUCKET/STUDY STUDY)")
    source = Path(source)
    if not source.is_dir():
        raise UsageError(f"no such study or run directory: {source}")
    out = Path(out) if out is not None else source / DEFAULT_DIR
    runs = find_runs(source)
    check_out(out)
    from torch.utils.tensorboard import SummaryWriter

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    n = 0
    try:
        for r in runs:
            writer = SummaryWriter(log_dir=str(tmp / r.name))
            try:
                for tag, step, value, walltime in scalars(r.run.metrics(), r.run.scores()):
                    writer.add_scalar(tag, value, step, walltime=walltime)
                    n += 1
            finally:
                writer.close()
        tmp.mkdir(parents=True, exist_ok=True)  # a study with no trials yet exports an empty directory
        doc = {"format": FORMAT, "source": str(source.absolute()), "runs": [r.name for r in runs], "scalars": n}
        (tmp / MARKER).write_text(json.dumps(doc, indent=1) + "\n")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return {"out": str(out), "runs": len(runs), "cells": len({r.name.split("/")[0] for r in runs}), "scalars": n}
