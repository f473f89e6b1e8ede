"""Which number per trial, which way is better, and what a diverged trial is worth.

``prepare(table, metric)`` turns a results table (the schema of ``bench.results``; only dataset,
loss, phase, config_id, seed, status and the metric are required) into one row per trial with

- ``raw``: the metric as measured (NaN when the trial has no score),
- ``value``: the same number oriented so that **lower is better** (``sign * raw``), and ``+inf``
  for every trial that is not ``ok`` or has no finite score: diverged and failed trials are the
  worst value, so they never win a budget draw and rank last in every rank-based test, and they are
  counted (``outcome``), never dropped,
- ``outcome``: ``ok``, ``diverged``, ``failed`` or ``unscored`` (status ok without a finite score).

For any metric the value of a trial is its best over its checkpoints (column ``<metric>_best``, e.g.
``fid_best``) where the table has it, else its value at the last checkpoint: Lucic et al. 2018 report
the best FID over checkpoints ("Are GANs Created Equal?", section 5).

``primary`` (the default of ``bench report`` for studies that have it) is each dataset's own ranking
metric (``bench.metrics.defaults.primary_metric``: W1 for point data, FID for images), read from the
``primary_best`` / ``primary`` columns; ``primary_metric`` names it per row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.errors import UsageError

REQUIRED = ("dataset", "loss", "phase", "config_id", "seed", "status")
PHASES = ("search", "seeds")
STATUSES = ("ok", "diverged", "failed")
OUTCOMES = ("ok", "diverged", "failed", "unscored")

PRIMARY = "primary"


def orientation(metric: str, table: pd.DataFrame | None = None) -> tuple[int, bool]:
    """(sign, known): sign +1 when lower is better, from the metric's registration
    (``bench.metrics.registry``; ``check`` refuses a metric no registration knows: the Python API takes it
    as lower-better and says so in the notes). ``primary`` takes the
    orientation of the primary metrics the table names (``check`` refuses a mix)."""
    from bench.metrics.registry import lower_is_better

    names = primary_metrics(table) if metric == PRIMARY and table is not None else [metric.removesuffix("_best")]
    lower = {lower_is_better(m) for m in names}
    if lower == {False}:
        return -1, True
    return 1, None not in lower


def primary_metrics(table: pd.DataFrame) -> list[str]:
    """The primary metrics a results table names (``primary_metric``), sorted."""
    if "primary_metric" not in table.columns:
        return []
    return sorted({str(m) for m in table["primary_metric"].dropna().unique()})


def primary_label(table: pd.DataFrame) -> str:
    """``w1 on ring8, fid on digits``: what ``--metric primary`` ranks by on each dataset."""
    rows = table.dropna(subset=["primary_metric"]).groupby("dataset")["primary_metric"].first()
    by_metric: dict[str, list[str]] = {}
    for ds, m in rows.items():
        by_metric.setdefault(str(m), []).append(str(ds))
    return "; ".join(f"{m} on {', '.join(ds)}" for m, ds in sorted(by_metric.items()))


def default_metric(table: pd.DataFrame) -> str:
    """``primary`` for results tables that record primary metrics, else ``fid`` (older studies)."""
    return PRIMARY if primary_metrics(table) else "fid"


def value_columns(metric: str, columns) -> list[str]:
    """The columns a trial's value comes from, first choice first: its best over checkpoints, then
    its value at the last checkpoint."""
    return [c for c in (f"{metric}_best", metric) if c in columns]


def check(table: pd.DataFrame, metric: str, where: str = "the results") -> None:
    """Raise UsageError (one line) when the table cannot be reported on."""
    missing = [c for c in REQUIRED if c not in table.columns]
    if not value_columns(metric, table.columns):
        missing.append(metric)
    if missing:
        raise UsageError(f"{where} lack required column(s): {', '.join(missing)} "
                         f"(need {', '.join(REQUIRED)} and the metric column '{metric}')")
    if table.empty:
        raise UsageError(f"{where} hold no rows")
    from bench.metrics.registry import lower_is_better

    names = primary_metrics(table) if metric == PRIMARY else [metric.removesuffix("_best")]
    if metric == PRIMARY and not names:
        raise UsageError(f"{where} record no primary metric (studies made before primary metrics); use --metric fid")
    from bench.metrics.registry import family_of, metric_entry

    for m in names:
        family = family_of(m)
        if family is not None and metric_entry(family).orientation(m) == "none":
            ranked = [k for k in metric_entry(family).keys if metric_entry(family).orientation(k) != "none"]
            raise UsageError(f"--metric {m} describes the measurement, not the generator (nothing to rank by); "
                             f"rank by {', '.join(ranked)} or another metric (`bench list metrics`)")
    unknown = [m for m in names if lower_is_better(m) is None]
    if unknown:  # a verdict in the wrong direction is worse than none
        raise UsageError(f"{where}: no registered metric produces {unknown[0]!r}, so which way is better is unknown; "
                         "load the plugin that registers it (--plugin FILE; `bench list metrics`)")
    if metric == PRIMARY:
        if len({lower_is_better(m) is not False for m in names}) > 1:
            raise UsageError(f"{where}: the datasets' primary metrics ({', '.join(names)}) disagree on which way is "
                             "better; report one metric with --metric")
    for col, allowed in (("phase", PHASES), ("status", STATUSES)):
        bad = sorted({str(v) for v in table[col].unique()} - set(allowed))
        if bad:
            raise UsageError(f"{where}: column {col} has unknown value(s) {', '.join(map(repr, bad[:5]))}; "
                             f"expected {', '.join(allowed)}")
    for col in ("dataset", "loss"):
        if table[col].isna().any():
            raise UsageError(f"{where}: column {col} has empty values")
    for col in value_columns(metric, table.columns):
        if not (pd.api.types.is_numeric_dtype(table[col]) or table[col].isna().all()):
            converted = pd.to_numeric(table[col], errors="coerce")
            if (converted.isna() & table[col].notna()).any():
                raise UsageError(f"{where}: column {col} is not numeric")


def prepare(table: pd.DataFrame, metric: str = "fid") -> pd.DataFrame:
    """One row per trial with ``raw``, ``value`` (lower-better, +inf = worst) and ``outcome``.

    Other columns are kept. Call ``check`` first.
    """
    sign, _ = orientation(metric, table)
    df = table.copy()
    raw = pd.Series(np.nan, index=df.index, dtype=float)
    source = pd.Series("", index=df.index, dtype=object)
    for col in reversed(value_columns(metric, df.columns)):  # first choice last, so it wins
        x = pd.to_numeric(df[col], errors="coerce").astype(float)
        ok = np.isfinite(x)
        raw = raw.where(~ok, x)
        source = source.where(~ok, col)
    df["dataset"] = df["dataset"].astype(str)
    df["loss"] = df["loss"].astype(str)
    df["phase"] = df["phase"].astype(str)
    status = df["status"].astype(str)
    finite = np.isfinite(raw.to_numpy())
    outcome = np.where(status != "ok", status, np.where(finite, "ok", "unscored"))
    df["outcome"] = outcome
    df["raw"] = raw.where(df["outcome"] == "ok")
    df["value_source"] = source.where(df["outcome"] == "ok", "")
    df["value"] = np.where(df["outcome"] == "ok", sign * df["raw"].to_numpy(), np.inf)
    return df


def display(v, sign: int):
    """Back from the internal lower-better value to the metric's own units (arrays or scalars)."""
    return sign * np.asarray(v, dtype=float) if np.ndim(v) else sign * float(v)


def display_interval(lo, hi, sign: int):
    """An interval in the metric's own units, low end first."""
    a, b = display(lo, sign), display(hi, sign)
    return (np.minimum(a, b), np.maximum(a, b)) if np.ndim(a) else (min(a, b), max(a, b))


def outcome_counts(trials: pd.DataFrame, by=("dataset", "loss", "phase")) -> pd.DataFrame:
    """Trials per cell and per outcome (columns trials, ok, diverged, failed, unscored)."""
    by = list(by)
    counts = (trials.groupby(by + ["outcome"]).size().unstack("outcome", fill_value=0)
              .reindex(columns=list(OUTCOMES), fill_value=0))
    counts.insert(0, "trials", counts.sum(axis=1))
    counts.columns.name = None
    return counts.reset_index()


def cell_values(trials: pd.DataFrame, phase: str) -> dict[tuple[str, str], np.ndarray]:
    """The values of each (dataset, loss) cell in one phase, cells sorted by name, values sorted: every
    statistic is a function of a cell's values, so a report must not depend on the order the trials
    finished in (with seeded bootstraps and permutations it would, through which value each draw hits)."""
    mask = (trials["phase"] == phase).to_numpy()
    cells: dict[tuple[str, str], list[float]] = {}
    for ds, loss, v in zip(trials["dataset"].to_numpy()[mask], trials["loss"].to_numpy()[mask],
                           trials["value"].to_numpy(dtype=float)[mask]):
        cells.setdefault((ds, loss), []).append(v)
    return {k: np.sort(np.array(cells[k], dtype=float)) for k in sorted(cells)}
