"""The results store: ``<study>/results.parquet``, one row per finished trial.

The driver is the only writer. It keeps the ledger itself (Ray Tune snapshots its own state only
every ~10 s, so that cannot be the record) and rewrites the file atomically after every finished
trial, so pandas can read it at any moment and a crash loses at most the trial in flight. Diverged
and failed trials are rows too: dropping them would bias the comparison.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from bench.io import atomic_write_bytes
from bench.study_dir import RESULTS

STATUSES = ("ok", "diverged", "failed")

# Columns every results table has, in this order; hp_<name> columns follow, then anything else.
COLUMNS = [
    "study", "dataset", "loss", "arch", "trick", "phase", "trial_id", "config_id", "replicate", "seed", "status",
    "steps", "primary_metric", "primary", "primary_best", "best_step", "fid", "fid_best", "w1", "kid",
    "precision", "recall", "modes", "modes_total", "hq_fraction", "mode_kl", "mode_hops",
    "g_grad_norm", "g_grad_norm_min", "d_auc", "d_saturated",
    "checkpoint", "checkpoint_best", "node", "started_at", "ended_at", "wall_s", "extractor", "n_samples",
    "early_stopped", "error",
]


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    hp = sorted(c for c in df.columns if c.startswith("hp_"))
    rest = [c for c in df.columns if c not in COLUMNS and c not in hp]
    return df[[c for c in COLUMNS if c in df.columns] + hp + rest]


def read(path: str | Path) -> pd.DataFrame:
    """A study's results (empty with the standard columns when the study has none yet)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    # One open: a consistent table even while the driver replaces the file (bench.io.read_parquet_once).
    return from_bytes(path.read_bytes() if path.exists() else None, path)


def from_bytes(data: bytes | None, where: str | Path) -> pd.DataFrame:
    """Results from the bytes of a results.parquet read in one go (a local file, an S3 object);
    None: the study has none yet. ``where`` names the file in the error a damaged one gets."""
    if data is None:
        return pd.DataFrame(columns=COLUMNS)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        from bench.errors import UsageError

        raise UsageError(f"cannot read {where}: not a Parquet file, or a truncated one ({str(e).splitlines()[0][:120]})") from None


class Ledger:
    """Rows of finished trials, kept in memory and rewritten atomically on every change.

    ``upload``: for a study on S3, called with the table's bytes after every local rewrite (one
    whole-object PUT, which S3 makes atomic, so the durable copy is a whole table too)."""

    def __init__(self, study_dir: str | Path, upload: Callable[[bytes], None] | None = None):
        self.path = Path(study_dir) / RESULTS
        self.upload = upload
        self.rows: list[dict[str, Any]] = read(self.path).to_dict("records") if self.path.exists() else []

    def trial_ids(self) -> set[str]:
        return {r["trial_id"] for r in self.rows}

    def next_config_id(self, cell: Any) -> int:
        """The next search config id of ``cell`` (a ``bench.study.Cell``)."""
        ids = [r["config_id"] for r in self.rows if cell.holds(r) and r["phase"] == "search"]
        return max(ids, default=-1) + 1

    def add(self, row: dict[str, Any]) -> None:
        """Record one finished trial; a trial id already recorded is kept (never run twice)."""
        if row["trial_id"] in self.trial_ids():
            return
        self.rows.append(row)
        self.write()

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=COLUMNS)
        return order_columns(df)

    def write(self) -> None:
        buf = io.BytesIO()
        self.frame().to_parquet(buf, index=False)
        atomic_write_bytes(self.path, buf.getvalue())
        if self.upload is not None:
            self.upload(buf.getvalue())


def last_scores() -> tuple[str, ...]:
    """Scores a row keeps from a trial's last checkpoint (besides primary/primary_best and fid_best): the
    columns each registered metric declares (``register_metric(columns=)``), a plugin's included."""
    from bench.metrics.registry import result_columns

    return result_columns()


def score_columns() -> tuple[str, ...]:
    """Every column a row takes from its trial's scores.jsonl (``bench rescore`` replaces these with its own)."""
    return ("primary_metric", "primary", "primary_best", "fid_best", "best_step", *last_scores(), "extractor", "n_samples")


def primary_of(row: Any) -> tuple[str, float]:
    """(metric, its best value over checkpoints) of a results row or trial summary: the dataset's
    primary metric (``primary_metric``, ``primary_best``). Rows of studies made before primary
    metrics existed have no ``primary_metric``: their primary is FID (``fid_best``)."""
    metric = row.get("primary_metric")
    if isinstance(metric, str) and metric:
        return metric, finite_or_nan(row.get("primary_best"))
    return "fid", finite_or_nan(row.get("fid_best"))


def objective(row: Any) -> float:
    """A row's primary value oriented lower-better (negated for a higher-better metric), +inf when
    it has none: what Tune's schedulers and searchers minimise and what the seeds phase selects by."""
    from bench.metrics.registry import lower_is_better

    metric, value = primary_of(row)
    if not math.isfinite(value):
        return math.inf
    return -value if lower_is_better(metric) is False else value


def finite_or_nan(x: Any) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan
