"""A study's results: one row per finished trial, in ``<study>/results/`` (``bench.results_store``).

The driver is the only writer. It keeps the ledger itself (Ray Tune snapshots its own state only
every ~10 s, so that cannot be the record) and appends every finished trial as it finishes, so a
reader gets the whole table at any moment and a crash loses at most the trial in flight. Diverged
and failed trials are rows too: dropping them would bias the comparison.

``read(study)`` is the one way to read a study's results, for the CLI and for pandas users alike::

    from bench.results import read; df = read("runs/studies/ring8-demo")
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench.results_store import LocalFolder, PartStore, frame_of, read_parts
from bench.study_dir import LEGACY_RESULTS, RESULTS, StudyDir

if TYPE_CHECKING:
    from bench.storage import Remote

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


def column_order(names: list[str]) -> list[str]:
    """COLUMNS first (those present), then hp_* sorted, then anything else as given."""
    hp = sorted(c for c in names if c.startswith("hp_"))
    rest = [c for c in names if c not in COLUMNS and c not in hp]
    return [c for c in COLUMNS if c in names] + hp + rest


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df[column_order(list(df.columns))]


def empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)


def _folders(place: StudyDir) -> tuple[Any, str, Any]:
    """(the results folder, its name for messages, a reader of the legacy single file) of the study's
    durable home: the local directory, or S3."""
    if place.remote is not None:
        from bench.storage import RemoteFolder

        return RemoteFolder(place.remote.child(RESULTS)), f"{place}/{RESULTS}", lambda: place.remote.read(LEGACY_RESULTS)
    legacy = place.local / LEGACY_RESULTS
    return LocalFolder(place.local / RESULTS), str(place.local / RESULTS), \
        lambda: legacy.read_bytes() if legacy.is_file() else None


def study_of(path: str | Path | StudyDir) -> StudyDir:
    """A study given as its directory, its S3 URI, a StudyDir, or (the spelling of studies made before
    the parts store) its ``results.parquet``."""
    if isinstance(path, StudyDir):
        return path
    if "://" in str(path):  # s3://BUCKET/PREFIX/NAME: read from S3 itself
        from bench.storage import study_dir_at

        return study_dir_at(str(path))
    path = Path(path)
    return StudyDir.of(path.parent if path.name == LEGACY_RESULTS and not path.is_dir() else path)


def read(study: str | Path | StudyDir) -> pd.DataFrame:
    """A study's results (empty with the standard columns when it has none yet): always a whole
    table, even while its driver appends and merges (``bench.results_store``)."""
    place = study_of(study)
    folder, where, legacy = _folders(place)
    for _ in range(2):  # the driver may turn a legacy results.parquet into parts between the two reads
        df = read_parts(folder, where, column_order)
        if df is not None:
            return df
        data = legacy()
        if data is not None:
            return frame_of(data, f"{place}/{LEGACY_RESULTS}")
    return empty()


def exists(study: str | Path | StudyDir) -> bool:
    """Whether a directory holds a study's results (parts, or a legacy results.parquet)."""
    place = study_of(study)
    folder, _, legacy = _folders(place)
    if any(n.startswith("part-") for n in folder.names()):
        return True
    return (place.local / LEGACY_RESULTS).is_file() if place.remote is None else legacy() is not None


class Ledger:
    """The driver's side of the results: appends finished trials (exactly once per trial id) and keeps
    only what the driver asks per trial in memory (the ids recorded, each cell's last config id), so
    its memory and the cost of a row do not grow with the study.

    ``remote``: a study on S3; every part is written to the local working copy, then to S3."""

    def __init__(self, study_dir: str | Path, remote: "Remote | None" = None):
        self.place = StudyDir(Path(study_dir), remote)
        folders = [LocalFolder(self.place.local / RESULTS)]
        if remote is not None:
            from bench.storage import RemoteFolder

            folders.append(RemoteFolder(remote.child(RESULTS)))
        self.store = PartStore(folders, str(self.place / RESULTS), column_order)
        self._migrate()
        df = self.frame()
        self._ids: set[str] = set(df["trial_id"])
        self._last_config: dict[tuple, int] = {}
        self._note(df.to_dict("records"))

    def _migrate(self) -> None:
        """A study made before the parts store: its results.parquet becomes part 0 (then goes)."""
        legacy = self.place.local / LEGACY_RESULTS
        if self.store.parts or not legacy.is_file():
            return
        data = legacy.read_bytes()
        frame_of(data, str(legacy))  # refuse a damaged file before anything is written
        self.store.replace_all(data)
        legacy.unlink()
        if self.place.remote is not None:
            self.place.remote.delete(LEGACY_RESULTS)

    def __len__(self) -> int:
        return len(self._ids)

    def trial_ids(self) -> set[str]:
        return set(self._ids)

    def next_config_id(self, cell: Any) -> int:
        """The next search config id of ``cell`` (a ``bench.study.Cell``)."""
        return self._last_config.get(cell.ident, -1) + 1

    def add(self, row: dict[str, Any]) -> None:
        """Record one finished trial; a trial id already recorded is kept (never run twice)."""
        self.add_all([row])

    def add_all(self, rows: list[dict[str, Any]]) -> None:
        """Record finished trials in one append (the members of a pack); ids already recorded are kept."""
        new = [r for r in rows if r["trial_id"] not in self._ids]
        if len({r["trial_id"] for r in new}) != len(new):
            raise ValueError("one trial id twice in one append")
        if not new:
            return
        self.store.append(new)
        self._ids.update(r["trial_id"] for r in new)
        self._note(new)

    def _note(self, rows: list[dict[str, Any]]) -> None:
        from bench.study import cell_key_of

        for r in rows:
            if r.get("phase") == "search":
                key = cell_key_of(r)
                self._last_config[key] = max(self._last_config.get(key, -1), int(r["config_id"]))

    def frame(self) -> pd.DataFrame:
        """The whole table, read from the store (the seeds phase and TPE's warm start use it once)."""
        return read(self.place.local)


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


def primaries(df: pd.DataFrame) -> pd.DataFrame:
    """``primary_of`` and ``objective`` of every row at once (columns metric, value, objective; same
    index): what ``bench status`` needs at 100,000 rows, where a loop over rows takes seconds."""
    from bench.metrics.registry import lower_is_better

    n = len(df)
    named = df["primary_metric"] if "primary_metric" in df.columns else pd.Series([None] * n, index=df.index)
    has = named.map(lambda m: isinstance(m, str) and bool(m))
    metric = named.where(has, "fid").astype(object)
    best = pd.to_numeric(df["primary_best"], errors="coerce") if "primary_best" in df.columns else pd.Series(math.nan, index=df.index)
    fid = pd.to_numeric(df["fid_best"], errors="coerce") if "fid_best" in df.columns else pd.Series(math.nan, index=df.index)
    value = best.where(has, fid).astype(float)
    value = value.where(value.map(math.isfinite), math.nan)
    sign = metric.map(lambda m: -1.0 if lower_is_better(m) is False else 1.0).astype(float)
    objective = (value * sign).fillna(math.inf)
    return pd.DataFrame({"metric": metric, "value": value, "objective": objective}, index=df.index)


def finite_or_nan(x: Any) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan
