"""A run directory: the one module that knows its layout (imports no torch).

    config.json     the resolved config (the run's identity; length and cadence may change on resume)
    metrics.jsonl   losses and throughput every ``log_every`` steps (JSON lines)
    scores.jsonl    scores of every checkpoint when the config sets ``metrics`` (bench.metrics)
    record.json     status (running | ok | diverged), step, wall time, last checkpoint: a ``RunResult``
    checkpoints/    step_XXXXXXXX.pt every ``ckpt_every`` steps and at the end (bench.checkpoint)

Every file is written atomically (``bench.io``): a process killed at any moment leaves the previous
version of a file, or a temporary file that ``rewind`` removes, never half a file. ``bench.train``
writes a run through this class, ``bench.runner`` and ``bench.storage`` (the S3 mirror) read and
copy it, ``bench.checkpoint`` finds its checkpoints here.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import TrainConfig
from bench.errors import UsageError
from bench.io import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl, remove_stale_tmp

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SCORES = "scores.jsonl"
RECORD = "record.json"
CKPT_DIR = "checkpoints"
SMALL_FILES = (CONFIG, METRICS, SCORES, RECORD)  # everything but the checkpoints (the S3 mirror rewrites these whole)


@dataclass
class RunResult:
    """What a finished (or stopped) run reports: also the content of record.json."""

    status: str  # running | ok | diverged
    step: int
    steps: int
    wall_s: float
    checkpoint: str | None  # relative to the run directory
    diverged_at: int | None = None
    last: dict[str, float] = field(default_factory=dict)  # last logged losses
    scores: dict[str, Any] = field(default_factory=dict)  # the last checkpoint's scores row (cfg.metrics)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RunDir:
    """One run's directory. Paths are absolute (Ray workers do not run in the driver's directory)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).absolute()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ---- checkpoints ----
    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CKPT_DIR

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / f"step_{step:08d}.pt"

    def checkpoints(self) -> list[Path]:
        """The run's checkpoints, oldest first."""
        return sorted(self.checkpoint_dir.glob("step_*.pt"))

    def relative(self, path: Path | None) -> str | None:
        """A path inside the run as the records store it (relative to the run directory)."""
        return None if path is None else str(Path(path).relative_to(self.path))

    # ---- reading ----
    def stored_config(self, cfg: TrainConfig) -> TrainConfig | None:
        """Validate the directory for ``cfg`` before anything is written; the stored config when resuming.

        A missing or empty directory starts a new run; one holding this run's config resumes;
        anything else (another run's config, unrelated files) is refused with one line.
        """
        out = self.path
        if not out.exists():
            return None
        if not out.is_dir():
            raise UsageError(f"--out {out} exists and is not a directory")
        cfg_file = out / CONFIG
        if not cfg_file.exists():
            if any(out.iterdir()):
                raise UsageError(f"--out {out} is not empty and holds no gan-bench run ({CONFIG} missing); choose a new directory")
            return None
        try:
            stored = TrainConfig.from_dict(json.loads(cfg_file.read_text()))
        except (ValueError, TypeError) as e:
            raise UsageError(f"--out {out} holds an unreadable {CONFIG} ({str(e).splitlines()[0]})") from None
        a, b = stored.identity(), cfg.identity()
        if a != b:
            diff = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
            raise UsageError(f"--out {out} holds another run (differs in {diff}); choose a new directory")
        return stored

    def record(self) -> RunResult | None:
        try:
            return RunResult(**json.loads((self.path / RECORD).read_text()))
        except FileNotFoundError:
            return None

    def scores(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / SCORES)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / METRICS)

    # ---- writing (bench.train) ----
    def rewind(self, step: int) -> None:
        """Back to the state of the checkpoint at ``step`` before resuming: temporary files of a killed
        write go, and log rows after ``step`` (they will be logged again, identically) are dropped."""
        remove_stale_tmp(self.path), remove_stale_tmp(self.path / CKPT_DIR)
        rows = [r for r in self.metrics() if r["step"] <= step]
        atomic_write_text(self.path / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    def begin(self, cfg: TrainConfig, step: int, wall_s: float, checkpoint: Path | None) -> None:
        """Write the config and a ``running`` record (the stored config keeps a new length and cadence)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / CONFIG, cfg.to_dict())
        self.finish(RunResult("running", step, cfg.steps, wall_s, self.relative(checkpoint)))

    def log(self, row: dict[str, Any]) -> None:
        append_jsonl(self.path / METRICS, [json_safe(row)])

    def add_scores(self, row: dict[str, Any]) -> None:
        append_jsonl(self.path / SCORES, [row])

    def finish(self, result: RunResult) -> None:
        atomic_write_json(self.path / RECORD, result.to_dict())


def json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf as strings, so records stay strict JSON (a diverged loss is data, not an error)."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
