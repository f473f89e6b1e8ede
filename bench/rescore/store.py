"""``<study>/scores.parquet``: one row per (trial_id, step, protocol), written by the driver alone.

Rows are only ever added: an ``ok`` row is never replaced or re-scored. An ``error`` row (a missing or
corrupt checkpoint) is not a score: the next rescore tries that checkpoint again and its outcome
replaces the error row, so the key stays unique. The whole table is rewritten atomically
(``bench.io.atomic_write_bytes``) after every batch of finished tasks: a reader sees the old table
or the new one, and a killed driver loses nothing already written.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench.errors import UsageError
from bench.io import atomic_write_bytes, read_parquet_once
from bench.study_dir import SCORES

KEY = ("trial_id", "step", "protocol")

# Every scores table has these columns, in this order (anything else follows).
COLUMNS = [
    "trial_id", "step", "checkpoint", "protocol", "metric", "value", "extractor", "weights_sha256",
    "n_generated", "n_real", "split", "status", "error", "scored_at",
    "study", "dataset", "loss", "arch", "phase", "config_id", "replicate", "seed", "source", "label",
    "generator_sha256", "node", "wall_s", "provenance",
]
INT_COLUMNS = ("step", "config_id", "replicate", "seed", "n_generated", "n_real")
FLOAT_COLUMNS = ("value", "scored_at", "wall_s")
STATUSES = ("ok", "error")
SOURCES = ("study", "external")


def read_scores(study_dir: str | Path) -> pd.DataFrame:
    """The study's scores (empty, with the standard columns, when it has none yet)."""
    path = Path(study_dir) / SCORES
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    try:
        return read_parquet_once(path)
    except Exception as e:  # never overwrite a table we cannot read: it holds earlier scores
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UsageError(f"cannot read {path} ({first}); move it away to start a new table") from None


def _key(row: dict[str, Any]) -> tuple[str, int, str]:
    return (str(row["trial_id"]), int(row["step"]), str(row["protocol"]))


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


class ScoreStore:
    """The rows of ``scores.parquet`` in memory, keyed by (trial_id, step, protocol)."""

    def __init__(self, study_dir: str | Path):
        self.path = Path(study_dir) / SCORES
        self.rows: dict[tuple[str, int, str], dict[str, Any]] = {}
        for r in read_scores(study_dir).to_dict("records"):
            self.rows[_key(r)] = {k: (None if _missing(v) else v) for k, v in r.items()}

    def status(self, trial_id: str, step: int, protocol: str) -> str | None:
        r = self.rows.get((trial_id, int(step), protocol))
        return None if r is None else r.get("status")

    def has_ok(self, trial_id: str, step: int, protocol: str) -> bool:
        return self.status(trial_id, step, protocol) == "ok"

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Add rows; an ``ok`` row already held is kept (never overwritten). Returns rows taken."""
        n = 0
        for r in rows:
            k = _key(r)
            if k in self.rows and self.rows[k].get("status") == "ok":
                continue
            self.rows[k] = r
            n += 1
        return n

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(list(self.rows.values()))
        for c in COLUMNS:
            if c not in df.columns:
                df[c] = None
        for c in INT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
        for c in FLOAT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        for c in df.columns:
            if c not in INT_COLUMNS and c not in FLOAT_COLUMNS:
                df[c] = df[c].astype(object).where(df[c].notna(), None)
        return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]

    def write(self) -> None:
        buf = io.BytesIO()
        self.frame().to_parquet(buf, index=False)
        atomic_write_bytes(self.path, buf.getvalue())
