"""Atomic writes: every file the harness produces goes through here.

A reader (or a crash) sees either the old file or the new one, never half of one: we write to a
temporary file in the same directory, fsync it, then ``os.replace`` it over the target.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    """torch.save into memory, then one atomic write. Load with ``torch.load(..., weights_only=True)``."""
    import torch  # here: the results store and the CLI's plain-data paths need no torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def append_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    """Append rows as JSON lines with one write call (a crash can cut at most the last line, which
    readers skip: see ``read_jsonl``)."""
    if not rows:
        return
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=True) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines, skipping a torn last line left by a crash mid-append."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # torn tail
                rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


def read_parquet_once(path: str | os.PathLike):
    """A Parquet file read through one open: a consistent table even while a writer replaces it.
    (``pd.read_parquet(path)`` opens the file twice, footer first; a replace in between gives the old
    footer with the new pages: "Page was smaller than expected".)"""
    import pandas as pd

    with open(path, "rb") as f:
        return pd.read_parquet(io.BytesIO(f.read()))


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The file, if any, that keeps directory ``path`` from being made: its nearest existing ancestor."""
    for p in Path(path).absolute().parents:
        if p.exists():
            return None if p.is_dir() else p
    return None


def remove_stale_tmp(directory: str | os.PathLike, name: str = "*") -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory`` (``.NAME.*.tmp`` from
    ``atomic_write_bytes``; ``name`` narrows it to one target). Call it only as that writer's sole
    owner (holding its lock, or being the run's one process)."""
    gone = []
    for p in Path(directory).glob(f".{name}.*.tmp"):
        try:
            p.unlink()
            gone.append(p)
        except FileNotFoundError:
            pass
    return gone


@contextmanager
def exclusive(lock_file: str | os.PathLike, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` or raise ``UsageError(busy)`` at once. The kernel
    releases it when the process dies, so a killed writer leaves no stale lock."""
    import fcntl

    from bench.errors import UsageError

    fd = os.open(lock_file, os.O_RDONLY | os.O_CREAT, 0o644)  # read-only: never blocks a remount
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(busy) from None
        yield
    finally:
        os.close(fd)
