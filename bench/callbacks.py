"""What the training loop tells the rest of the harness (imports no torch, so the Ray driver and the S3
mirror can subclass ``Callback`` without loading a model).

``bench.train.train(cfg, out, callbacks=[...])`` calls each callback's hooks in order; the package's own
are the scorer (``bench.train.ScoreCheckpoints``), the Ray trial's Tune reporter
(``bench.runner.TuneReporter``) and the S3 mirror (``bench.storage.TrialMirror``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import torch

    from bench.run_dir import RunDir, RunResult


@dataclass
class Event:
    """A point in a run: its start (``checkpoint`` is the one resumed from, None for a fresh run) or a
    checkpoint just written. ``scores`` is every scores row of the run so far, oldest first; the scorer
    appends the new checkpoint's row before the callbacks after it run, so they read ``scores[-1]``
    without re-reading scores.jsonl."""

    run: RunDir
    step: int
    checkpoint: Path | None
    G: torch.nn.Module
    scores: list[dict[str, Any]]


class Callback:
    """Hooks into a run; override what you need. An exception in a hook stops the run (calling
    ``train`` again resumes it from its last checkpoint). G is back in train mode after each event."""

    def on_start(self, event: Event) -> None:
        """Before the first step (fresh or resumed), once the run directory is written."""

    def on_log(self, run: RunDir, row: dict[str, Any]) -> None:
        """Every log window, with the row just appended to metrics.jsonl."""

    def on_checkpoint(self, event: Event) -> None:
        """After every checkpoint is written."""

    def on_diverged(self, run: RunDir, row: dict[str, Any]) -> None:
        """Losses turned NaN/inf; ``row["diverged_at"]`` is the first bad step. The run ends after it."""

    def on_end(self, run: RunDir, result: RunResult) -> None:
        """After record.json holds the final result (also when a finished run is called again)."""


class Callbacks(Callback):
    """Several callbacks as one, each event in order; G back in train mode after the events that carry it."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.all = list(callbacks)

    def on_start(self, event: Event) -> None:
        for c in self.all:
            c.on_start(event)
        event.G.train()

    def on_log(self, run: RunDir, row: dict[str, Any]) -> None:
        for c in self.all:
            c.on_log(run, row)

    def on_checkpoint(self, event: Event) -> None:
        for c in self.all:
            c.on_checkpoint(event)
        event.G.train()

    def on_diverged(self, run: RunDir, row: dict[str, Any]) -> None:
        for c in self.all:
            c.on_diverged(run, row)

    def on_end(self, run: RunDir, result: RunResult) -> None:
        for c in self.all:
            c.on_end(run, result)
