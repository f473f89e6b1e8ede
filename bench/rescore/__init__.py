"""Re-scoring stored checkpoints at scale (``bench rescore``), and scoring generators trained elsewhere.

    from bench.rescore import rescore_study, Options, add_external, results_for_protocol
    rescore_study("studies/s", Options(metrics=["fid"], samples=10_000, checkpoints="all"))
    add_external("studies/s", "theirs.pt2", z_dim=128, dataset="cifar10", label="their-gan")
    results_for_protocol("studies/s", "fid/inception-v3-compat@f58cb969/10k-vs-test")

Modules: ``protocol`` (the protocol string and its parser), ``store`` (``scores.parquet``),
``tasks`` (what a Ray task runs), ``driver`` (plan, share the real side, run, write), ``table``
(``results_for_protocol``: the report's shape). Imported on first use, so that the CLI validates
names without importing torch or Ray.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Options": "driver", "Summary": "driver", "rescore_study": "driver", "add_external": "driver",
    "CHECKPOINTS": "driver",
    "Protocol": "protocol", "format_protocol": "protocol", "parse_protocol": "protocol",
    "SCORES": "store", "COLUMNS": "store", "read_scores": "store", "ScoreStore": "store",
    "results_for_protocol": "table",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"bench.rescore.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bench.rescore' has no attribute {name!r}")
