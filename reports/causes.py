"""How the trials failed: what connects a verdict to its causes (training health, ``bench.health``).

Per dataset and loss, over every trial of the cell (search and seeds phases), with fixed thresholds
that the report states:

    diverged    status diverged: a loss became NaN or inf (``bench.train``)
    saturated   d_saturated >= SATURATED_FRACTION: D ordered every (real, fake) pair of its batch
                correctly (d_auc >= bench.health.SATURATED) on at least half of the measured steps,
                the regime where the minimax generator gradient vanishes (Arjovsky & Bottou 2017)
    collapsed   the last checkpoint covers fewer than COLLAPSED_FRACTION of the dataset's modes
                (modes < modes_total / 2, ``bench.metrics.modes``) while at least ON_DATA_FRACTION of its
                samples lie on a mode (hq_fraction >= ON_DATA_FRACTION): what reaches the data goes to few modes
    off-data    as few modes, and almost no sample on any mode (hq_fraction < ON_DATA_FRACTION): G
                has not reached the data (diffuse or displaced samples), which is not mode collapse
                Both only on datasets with modes.

A trial can be counted under several causes (a saturated D often precedes a collapse). Medians of
the health columns beside them show the typical trial. ``trial_curves`` reads each trial's own
metrics.jsonl and scores.jsonl (through the study directory the row came from) for the figures of
``reports.plots.health_curves``: the best and the worst trial's G-gradient norm, and every trial's
mode coverage with the collapsed ones marked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.health import SATURATED

SATURATED_FRACTION = 0.5
COLLAPSED_FRACTION = 0.5
ON_DATA_FRACTION = 0.05  # ring8's modes (3 std radius) cover 0.4% of its [-2.5, 2.5]^2 box: 5% is far above chance
HEALTH_MEDIANS = ("d_auc", "d_saturated", "g_grad_norm", "g_grad_norm_min")
THRESHOLDS = (f"diverged: a loss became NaN or inf; saturated: d_saturated >= {SATURATED_FRACTION:g} (D ordered every "
              f"real/fake pair of its batch correctly, d_auc >= {SATURATED:g}, on at least half of the measured steps); "
              f"collapsed: the last checkpoint covers fewer than {COLLAPSED_FRACTION:.0%} of the dataset's modes "
              f"(modes < modes_total / 2) with samples on the data (hq_fraction >= {ON_DATA_FRACTION:g}); off-data: "
              f"as few modes and almost no sample on any mode (hq_fraction < {ON_DATA_FRACTION:g}): G has not reached "
              "the data. A trial may count under several causes.")


def _num(trials: pd.DataFrame, col: str) -> pd.Series:
    if col not in trials.columns:
        return pd.Series(np.nan, index=trials.index, dtype=float)
    return pd.to_numeric(trials[col], errors="coerce").astype(float)


def flags(trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: boolean ``diverged``, ``saturated``, ``collapsed`` and ``off_data`` (the last two NA
    where the trial has no mode count)."""
    modes, total, hq = _num(trials, "modes"), _num(trials, "modes_total"), _num(trials, "hq_fraction")
    known = (np.isfinite(modes) & np.isfinite(total) & (total > 0) & np.isfinite(hq)).to_numpy()
    few = (modes < COLLAPSED_FRACTION * total).to_numpy()
    on_data = (hq >= ON_DATA_FRACTION).to_numpy()
    collapsed = pd.Series(pd.NA, index=trials.index, dtype="boolean")
    off_data = pd.Series(pd.NA, index=trials.index, dtype="boolean")
    collapsed[known] = (few & on_data)[known]
    off_data[known] = (few & ~on_data)[known]
    return pd.DataFrame({
        "diverged": trials["status"].astype(str) == "diverged",
        "saturated": _num(trials, "d_saturated") >= SATURATED_FRACTION,
        "collapsed": collapsed, "off_data": off_data,
    }, index=trials.index)


def causes_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, loss): trials, how many diverged / saturated / collapsed / off-data (the last two
    NaN on datasets without modes), the collapsed trials' ids, and the medians of the health columns."""
    f = flags(trials)
    rows = []
    for (ds, loss), g in trials.groupby(["dataset", "loss"], sort=True):
        fg = f.loc[g.index]
        known = fg["collapsed"].notna()
        collapsed_ids = sorted(g.loc[fg["collapsed"].fillna(False).astype(bool), "trial_id"].astype(str)) \
            if "trial_id" in g else []
        row = {"dataset": ds, "loss": loss, "trials": len(g), "diverged": int(fg["diverged"].sum()),
               "saturated": int(fg["saturated"].sum()),
               "collapsed": int(fg["collapsed"].fillna(False).sum()) if known.any() else math.nan,
               "off_data": int(fg["off_data"].fillna(False).sum()) if known.any() else math.nan,
               "collapsed_trials": collapsed_ids}
        for col in HEALTH_MEDIANS:
            v = _num(g, col)
            v = v[np.isfinite(v)]
            row[f"median_{col}"] = float(v.median()) if len(v) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "loss", "trials", "diverged", "saturated", "collapsed", "off_data",
                                       "collapsed_trials", *(f"median_{c}" for c in HEALTH_MEDIANS)])


@dataclass
class Curves:
    """One trial's curves, read from its run directory (empty lists where a file is missing)."""

    trial_id: str
    value: float  # the report's lower-better value (+inf: worst)
    collapsed: bool
    off_data: bool = False
    steps: list[int] = field(default_factory=list)  # metrics.jsonl rows with health
    g_grad_norm: list[float] = field(default_factory=list)
    score_steps: list[int] = field(default_factory=list)  # scores.jsonl rows
    modes: list[float] = field(default_factory=list)
    modes_total: float = math.nan


def _jsonl(path: Path) -> list[dict]:
    from bench.io import read_jsonl

    try:
        return read_jsonl(path)
    except (OSError, ValueError):
        return []


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_curves(row: pd.Series, collapsed: bool, off_data: bool = False) -> Curves | None:
    """A results row's trial curves from ``<_root>/trials/<trial_id>/``; None without that directory."""
    from bench.run_dir import METRICS, SCORES
    from bench.study_dir import trial_rel

    if not isinstance(row.get("trial_id"), str) or not isinstance(row.get("_root"), str):
        return None
    run = Path(row["_root"]) / trial_rel(row["trial_id"])
    if not run.is_dir():
        return None
    c = Curves(row["trial_id"], float(row["value"]), collapsed, off_data)
    for r in _jsonl(run / METRICS):
        if isinstance(r.get("step"), int) and "g_grad_norm" in r:
            c.steps.append(r["step"])
            c.g_grad_norm.append(_float(r["g_grad_norm"]))
    for r in _jsonl(run / SCORES):
        if isinstance(r.get("step"), int) and "modes" in r:
            c.score_steps.append(r["step"])
            c.modes.append(_float(r["modes"]))
            c.modes_total = _float(r.get("modes_total"))
    return c


MAX_CURVES = 64  # trials per cell whose curves the health figure draws (a line per trial: more is a blur)


def trial_curves(trials: pd.DataFrame, dataset: str) -> dict[str, dict[str, object]]:
    """Per loss of ``dataset``: ``best`` and ``worst`` (Curves of the cell's best and worst trial by the
    report's value; ties by trial_id), ``all`` (the Curves of every trial, or of MAX_CURVES spaced
    evenly in that order, best and worst included, in a larger cell: reading 1,000 trials' logs per
    cell takes longer than the rest of a report), and ``trials``, ``collapsed``, ``off_data``: counts
    over every trial of the cell."""
    d = trials[trials["dataset"] == dataset]
    f = flags(d).fillna(False).astype(bool)
    out: dict[str, dict[str, object]] = {}
    for loss, g in d.groupby("loss", sort=True):
        g = g.assign(_tid=g["trial_id"].astype(str) if "trial_id" in g else "").sort_values(["value", "_tid"], kind="stable")
        drawn = g.iloc[np.unique(np.linspace(0, len(g) - 1, min(len(g), MAX_CURVES)).round().astype(int))]
        curves = {i: read_curves(r, f.loc[i, "collapsed"], f.loc[i, "off_data"]) for i, r in drawn.iterrows()}
        kept = [c for c in curves.values() if c is not None]
        if not kept:
            continue
        out[loss] = {"best": curves[g.index[0]], "worst": curves[g.index[-1]], "all": kept, "trials": len(g),
                     "collapsed": int(f.loc[g.index, "collapsed"].sum()), "off_data": int(f.loc[g.index, "off_data"].sum())}
    return out
