"""Shared fixtures: an isolated cache, and a helper to run the real ``bench`` CLI as a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = [sys.executable, "-m", "bench.cli"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # One cache per test session (datasets and extractors are expensive to rebuild), never ~/.cache.
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("GAN_BENCH_CACHE", str(cache))


def run_bench(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    if env:
        e.update(env)
    return subprocess.run([*BENCH, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=e, timeout=timeout)


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its content (to prove that nothing was written)."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
