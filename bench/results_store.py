"""Append-only Parquet parts, merged in tiers: recording a trial costs the same at row 100 and at row 100,000.

    <study>/results/part-<first>-<last>.parquet   the rows of appends first..last (0-based, 9 digits)

Append ``k`` (one finished trial, or the members of one pack) writes ``part-k-k`` whole and
atomically (a temporary file, fsync, rename; on S3 one PUT). A part's *tier* is
``floor(log_F(rows it holds))``; whenever the last ``F`` parts share a tier they are merged into
one part covering their range, written before they are deleted. So there are at most ``F - 1`` parts
per tier and ``log_F(n)`` tiers, and a merge lifts its rows at least one tier, so each row is
rewritten at most ``log_F(n)`` times: the cost of an append is one small file plus O(log n) rows
amortised, where rewriting one table after every trial (what the ledger did before) cost O(n) per
trial, O(n^2) per study. (The idea is an LSM tree's tiered compaction, as in Cassandra's or RocksDB's
universal compaction; tiers count rows, not appends, so a pack's many rows or a migrated table
of 50,000 are placed by their size and not rewritten with every few small parts.)

A reader lists the parts, drops any whose range another covers (a merge whose inputs are not
deleted yet), and checks that the rest covers ``0..last`` with no gap. A part deleted between the
listing and the read, or a gap (a listing that raced a merge), means: list again. What it returns
is always the table after some append ``k``: a whole table, never a mix or a duplicate.

A study written before this store holds one ``results.parquet``; readers read it as it is, and the
driver (the one writer) turns it into ``part-0-0`` the first time it opens the study.

Files live in a ``Folder``: a local directory (NFS included), or a prefix on S3 (``bench.storage``).
"""
from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

FANOUT = 8  # F: parts per tier before they merge (at 100,000 appends: <= 7 parts x 6 tiers)
PART = re.compile(r"^part-(\d{9})-(\d{9})\.parquet$")
READ_TRIES = 20


class Folder(Protocol):
    """Where the parts are: whole-object reads and atomic writes, as a local directory or S3 give."""

    def names(self) -> list[str]: ...
    def get(self, name: str) -> bytes | None: ...
    def put(self, name: str, data: bytes) -> None: ...
    def delete(self, name: str) -> None: ...


@dataclass(frozen=True)
class LocalFolder:
    path: Path

    def names(self) -> list[str]:
        try:
            return [p.name for p in self.path.iterdir()]
        except FileNotFoundError:
            return []

    def get(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, name: str, data: bytes) -> None:
        from bench.io import atomic_write_bytes

        atomic_write_bytes(self.path / name, data)

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class Part:
    """Appends ``first..last``; ``rows`` is known to the writer only (it is not in the name)."""

    first: int
    last: int
    rows: int = field(default=0, compare=False)

    @classmethod
    def parse(cls, name: str) -> "Part | None":
        m = PART.match(name)
        return cls(int(m[1]), int(m[2])) if m else None

    @property
    def name(self) -> str:
        return f"part-{self.first:09d}-{self.last:09d}.parquet"

    @property
    def tier(self) -> int:
        t, n = 0, self.rows
        while n >= FANOUT:
            n //= FANOUT
            t += 1
        return t

    def covers(self, other: "Part") -> bool:
        return self != other and self.first <= other.first and other.last <= self.last


def live(names: Sequence[str]) -> list[Part] | None:
    """The parts that make the table, in order (those no other part covers); None if they leave a gap
    (a listing that raced a merge: list again)."""
    parts = sorted({p for p in map(Part.parse, names) if p is not None}, key=lambda p: (p.first, -p.last))
    kept = [p for p in parts if not any(q.covers(p) for q in parts)]
    expected = 0
    for p in kept:
        if p.first != expected:
            return None
        expected = p.last + 1
    return kept


def to_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _parquet(table: "pa.Table") -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def table_of_rows(rows: list[dict[str, Any]], order: Callable[[list[str]], list[str]]) -> "pa.Table":
    """Rows (dicts, keys may differ) as an Arrow table with the union of their keys (None: null).
    Built in Arrow: going through pandas costs ~20x more per small part (a per-column conversion)."""
    import pyarrow as pa

    names = order(list(dict.fromkeys(k for r in rows for k in r)))
    return pa.table({k: pa.array([r.get(k) for r in rows]) for k in names})


def table_of(data: bytes, where: str) -> "pa.Table":
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data))
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise _damaged(where, e) from None


def frame_of(data: bytes, where: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except (OSError, ValueError) as e:
        raise _damaged(where, e) from None


def _damaged(where: str, e: BaseException) -> Exception:
    from bench.errors import UsageError

    return UsageError(f"cannot read {where}: not a Parquet file, or a truncated one ({str(e).splitlines()[0][:120]})")


def concat(tables: list["pa.Table"], order: Callable[[list[str]], list[str]]) -> "pa.Table":
    """Parts as one table, typed as the same rows written as one file would be: Arrow's permissive
    promotion makes a column that is null in one part and double (or string) in another double (or
    string), int64 with double double, and a column a part lacks null there."""
    import pyarrow as pa

    if len(tables) == 1:
        table = tables[0]
    else:
        try:
            table = pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # e.g. bool in one part, double in another: as pandas would
            frames = [t.to_pandas() for t in tables]
            table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True).infer_objects(), preserve_index=False)
    return table.select(order(table.column_names))


def read_parts(folder: Folder, where: str, order: Callable[[list[str]], list[str]] = list) -> pd.DataFrame | None:
    """The table the parts in ``folder`` make (None: there are none)."""
    for attempt in range(READ_TRIES):
        if attempt:
            time.sleep(0.05)  # a merge in progress ends within milliseconds; a gap that stays is damage
        parts = live(folder.names())
        if parts is None:
            continue
        if not parts:
            return None
        tables = []
        for p in parts:
            data = folder.get(p.name)
            if data is None:  # merged and deleted since the listing
                break
            tables.append(table_of(data, f"{where}/{p.name}"))
        else:
            return concat(tables, order).to_pandas()
    from bench.errors import UsageError

    raise UsageError(f"{where}: results parts are missing (a gap in part-*.parquet that stayed over "
                     f"{READ_TRIES} reads); restore the study's results/ folder from a copy")


class PartStore:
    """The writer's side: appends and tiered merges, mirrored in order to every folder (a study on S3:
    the working copy, then S3, which is the durable one). One writer at a time (the driver's lock)."""

    def __init__(self, folders: Sequence[Folder], where: str, order: Callable[[list[str]], list[str]] = list):
        self.folders, self.where, self.order = list(folders), where, order
        self.parts = self._recover()
        self._merge()

    @property
    def appends(self) -> int:
        return self.parts[-1].last + 1 if self.parts else 0

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Record ``rows`` as one part (they are durable once this returns), then merge tiers."""
        part = Part(self.appends, self.appends, len(rows))
        data = _parquet(table_of_rows(rows, self.order))
        for f in self.folders:
            f.put(part.name, data)
        self.parts.append(part)
        self._merge()

    def replace_all(self, data: bytes) -> None:
        """Start the store from one whole table (a legacy results.parquet): ``part-0-0``."""
        assert not self.parts
        for f in self.folders:
            f.put(Part(0, 0).name, data)
        self.parts = [Part(0, 0, _rows(data))]

    def _merge(self) -> None:
        while len(self.parts) >= FANOUT and len({p.tier for p in self.parts[-FANOUT:]}) == 1:
            inputs = self.parts[-FANOUT:]
            merged = Part(inputs[0].first, inputs[-1].last, sum(p.rows for p in inputs))
            home = self.folders[0]
            tables = [table_of(home.get(p.name) or b"", f"{self.where}/{p.name}") for p in inputs]
            data = _parquet(concat(tables, self.order))
            for f in self.folders:  # the merged part first: a reader always finds every row
                f.put(merged.name, data)
            for f in self.folders:
                for p in inputs:
                    f.delete(p.name)
            self.parts[-FANOUT:] = [merged]

    def _recover(self) -> list[Part]:
        """The parts as a writer killed at any moment left them: inputs of a finished merge are
        deleted, temporary files removed; a gap means a damaged store (someone deleted parts)."""
        home = self.folders[0]
        names = home.names()
        parts = live(names)
        if parts is None:
            from bench.errors import UsageError

            raise UsageError(f"{self.where}: results parts are missing (a gap in part-*.parquet); "
                             "restore the study's results/ folder from a copy")
        keep = {p.name for p in parts}
        for name in names:
            if (Part.parse(name) is not None and name not in keep) or name.endswith(".tmp"):
                for f in self.folders:
                    f.delete(name)
        return [replace(p, rows=_rows(home.get(p.name) or b"", f"{self.where}/{p.name}")) for p in parts]


def _rows(data: bytes, where: str = "results.parquet") -> int:
    """Rows in a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    except (OSError, ValueError):
        return len(frame_of(data, where))  # raises the one-line error
