"""Live progress of a study, per cell: done / running / failed of B, best FID, elapsed, time left.

On a terminal this is a rich Live table; otherwise (CI logs, pipes) one plain line per finished trial.
"""
from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from typing import Any

from bench.study import TrialSpec


class Progress:
    def __init__(self, total: dict[str, int], already: dict[str, dict[str, Any]] | None = None,
                 live: bool | None = None):
        self.total = total  # cell key -> trials expected in this study (all phases)
        self.stats: dict[str, dict[str, Any]] = defaultdict(lambda: {"done": 0, "running": 0, "failed": 0, "best": math.inf})
        for k, v in (already or {}).items():
            self.stats[k].update(v)
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
        s["done"] += 1
        s["failed"] += row.get("status") != "ok"
        fid = row.get("fid_best")
        if isinstance(fid, float) and math.isfinite(fid):
            s["best"] = min(s["best"], fid)
        self.finished_now += 1
        if self._live is not None:
            self._live.update(self.table())
        else:
            done = sum(v["done"] for v in self.stats.values())
            fid_txt = f"fid_best {fid:.4g}" if isinstance(fid, float) and math.isfinite(fid) else "no fid"
            print(f"[{done}/{sum(self.total.values())}] {spec.trial_id} {row.get('status')} {fid_txt}"
                  f" (elapsed {self._fmt(time.time() - self.t0)}, left ~{self._fmt(self.eta())})", flush=True)

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
        for col in ("cell", "done", "running", "failed", "best FID"):
            t.add_column(col, justify="left" if col == "cell" else "right")
        for key, total in self.total.items():
            s = self.stats[key]
            best = f"{s['best']:.4g}" if math.isfinite(s["best"]) else "-"
            t.add_row(key, f"{s['done']}/{total}", str(s["running"]), str(s["failed"]), best)
        return t
