"""Live progress of a study, per cell: done / running / failed of B, best primary metric (W1 for
point data, FID for images), elapsed, time left.

On a terminal this is a rich Live table; otherwise (CI logs, pipes) one plain line per finished trial.
"""
from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from typing import Any

from bench.results import objective, primary_of
from bench.study import TrialSpec


class Progress:
    def __init__(self, total: dict[str, int], live: bool | None = None):
        self.total = total  # cell key -> trials expected in this study (all phases)
        # best: the cell's best objective (lower-better) and that row's (metric, value) for display
        self.stats: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"done": 0, "running": 0, "failed": 0, "best": math.inf, "shown": ("", math.nan)})
        self.t0 = time.time()
        self.finished_now = 0
        self.live = sys.stdout.isatty() if live is None else live
        self._live = None

    def __enter__(self) -> "Progress":
        if self.live:
            from rich.live import Live

            self._live = Live(self.table(), refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self.table())
            self._live.__exit__(*exc)

    def __call__(self, event: str, spec: TrialSpec, row: dict[str, Any]) -> None:
        s = self.stats[spec.cell.key]
        if event == "start":
            s["running"] += 1
            return
        s["running"] = max(0, s["running"] - 1)
        self.count(spec.cell.key, row)
        self.finished_now += 1
        if self._live is not None:
            self._live.update(self.table())
        else:
            done = sum(v["done"] for v in self.stats.values())
            metric, value = primary_of(row)
            score = f"{metric}_best {value:.4g}" if math.isfinite(value) else "not scored"
            print(f"[{done}/{sum(self.total.values())}] {spec.trial_id} {row.get('status')} {score}"
                  f" (elapsed {self._fmt(time.time() - self.t0)}, left ~{self._fmt(self.eta())})", flush=True)

    def count(self, cell: str, row: dict[str, Any]) -> None:
        """A finished trial (this run's, or one the ledger held already)."""
        s = self.stats[cell]
        s["done"] += 1
        s["failed"] += row.get("status") != "ok"
        if objective(row) < s["best"]:
            s["best"], s["shown"] = objective(row), primary_of(row)

    def eta(self) -> float:
        left = sum(self.total.values()) - sum(v["done"] for v in self.stats.values())
        if self.finished_now == 0:
            return math.nan
        return left * (time.time() - self.t0) / self.finished_now

    @staticmethod
    def _fmt(s: float) -> str:
        if not math.isfinite(s):
            return "?"
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m" if s >= 3600 else f"{int(s // 60)}m{int(s % 60):02d}s"

    def table(self):
        from rich.table import Table

        t = Table(title=f"study progress (elapsed {self._fmt(time.time() - self.t0)}, left ~{self._fmt(self.eta())})")
        for col in ("cell", "done", "running", "failed", "best"):
            t.add_column(col, justify="left" if col == "cell" else "right")
        for key, total in self.total.items():
            s = self.stats[key]
            metric, value = s["shown"]
            best = f"{metric} {value:.4g}" if math.isfinite(s["best"]) else "-"
            t.add_row(key, f"{s['done']}/{total}", str(s["running"]), str(s["failed"]), best)
        return t
