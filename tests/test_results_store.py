"""The results store (``bench.results_store``, ``bench.results``): tiered Parquet parts on real files.

What reads back must be what one table written once would read back (values and dtypes), whatever the
merges did; the parts a writer leaves follow the tier rule exactly (known answer: the base-F digits of
the number of appends); a reader never counts a row twice or misses one, whatever state a killed
writer left; a legacy results.parquet is read as it is and migrated by the first writer.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import UsageError
from bench.results import Ledger, exists, order_columns, read
from bench.results_store import FANOUT, LocalFolder, Part, frame_of, live, read_parts, to_bytes
from bench.study import Cell


def _row(i: int, rng: random.Random) -> dict:
    """A results row with what real ones have: NaN scores, None strings, a bool, hp columns that only
    some cells have (and a bool one that is missing from most rows)."""
    r = {"study": "s", "dataset": rng.choice(["ring8", "grid25"]), "loss": rng.choice(["ns", "wgan"]), "arch": "mlp",
         "trick": rng.choice([None, "none", "unrolled=5"]), "phase": "search", "trial_id": f"t{i:05d}", "config_id": i,
         "status": rng.choice(["ok", "diverged", "failed"]), "fid_best": rng.random() if i % 3 else float("nan"),
         "w1": None if i % 4 == 0 else rng.random(), "early_stopped": bool(i % 2),
         "error": "boom" if i % 5 == 0 else None, "hp_lr": 10 ** rng.uniform(-5, -2)}
    if i % 7 == 0:
        r["hp_conditional"] = bool(i % 2)
    if r["loss"] == "wgan":
        r["hp_loss__clip"] = rng.random()
    return r


def _one_table(rows: list[dict]) -> pd.DataFrame:
    """The reference: all rows written as one Parquet file and read back (what the store replaces)."""
    return frame_of(to_bytes(order_columns(pd.DataFrame(rows))), "reference")


def _names(study: Path) -> list[str]:
    return sorted(p.name for p in (study / "results").iterdir())


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 100, 600])
def test_the_parts_read_back_as_one_table_would_and_follow_the_tier_rule(tmp_path, n):
    rng = random.Random(n)
    rows = [_row(i, rng) for i in range(n)]
    ledger = Ledger(tmp_path)
    for r in rows:
        ledger.add(r)
    pd.testing.assert_frame_equal(read(tmp_path), _one_table(rows))  # dtypes included
    pd.testing.assert_frame_equal(ledger.frame(), _one_table(rows))
    # Tiered merging is counting in base F: one part of F^k appends per unit of digit k of n.
    expected, first, k = [], 0, 0
    digits = []
    while n:
        digits.append(n % FANOUT)
        n //= FANOUT
    for k in reversed(range(len(digits))):
        for _ in range(digits[k]):
            expected.append(Part(first, first + FANOUT ** k - 1).name)
            first += FANOUT ** k
    assert _names(tmp_path) == expected


def test_a_reader_takes_each_row_once_whatever_a_killed_merge_left(tmp_path):
    rng = random.Random(0)
    rows = [_row(i, rng) for i in range(FANOUT + 3)]
    ledger = Ledger(tmp_path)
    for r in rows:
        ledger.add(r)
    folder = tmp_path / "results"
    merged = Part(0, FANOUT - 1).name
    # A merge cut after writing its output: the inputs are still there beside it.
    inputs = [Part(i, i) for i in range(FANOUT)]
    whole = frame_of((folder / merged).read_bytes(), "x")
    for p in inputs:
        (folder / p.name).write_bytes(to_bytes(whole.iloc[[p.first]]))
    assert len(live(_names(tmp_path))) == 4
    pd.testing.assert_frame_equal(read(tmp_path), _one_table(rows))
    # The next writer deletes the inputs (and a temporary file a killed write left).
    (folder / f".{Part(99, 99).name}.abc.tmp").write_bytes(b"half")
    Ledger(tmp_path)
    assert _names(tmp_path) == [merged] + [Part(i, i).name for i in range(FANOUT, FANOUT + 3)]
    # A merge cut before its output was renamed: only the inputs; nothing is missing either.
    (folder / merged).unlink()
    for p in inputs:
        (folder / p.name).write_bytes(to_bytes(whole.iloc[[p.first]]))
    pd.testing.assert_frame_equal(read(tmp_path), _one_table(rows))


def test_a_gap_is_never_read_as_a_smaller_table(tmp_path):
    ledger = Ledger(tmp_path)
    rng = random.Random(1)
    for i in range(3):
        ledger.add(_row(i, rng))
    (tmp_path / "results" / Part(1, 1).name).unlink()  # someone deleted a part
    assert live(_names(tmp_path)) is None
    with pytest.raises(UsageError, match="here: results parts are missing"):  # one line for the CLI, exit 2
        read_parts(LocalFolder(tmp_path / "results"), "here")
    with pytest.raises(UsageError, match="results parts are missing"):
        Ledger(tmp_path)


def test_each_trial_is_recorded_once_and_config_ids_are_counted_per_cell(tmp_path):
    ledger = Ledger(tmp_path)
    base = {"study": "s", "arch": "mlp", "phase": "search", "status": "ok"}
    ledger.add({**base, "dataset": "ring8", "loss": "ns", "trial_id": "a", "config_id": 4})
    ledger.add({**base, "dataset": "ring8", "loss": "ns", "trial_id": "a", "config_id": 9})  # already recorded
    ledger.add_all([{**base, "dataset": "ring8", "loss": "ns", "trick": "unrolled=5", "trial_id": "b", "config_id": 2},
                    {**base, "dataset": "ring8", "loss": "ns", "phase": "seeds", "trial_id": "c", "config_id": 7}])
    with pytest.raises(ValueError, match="twice"):
        ledger.add_all([{**base, "dataset": "ring8", "loss": "ns", "trial_id": "d", "config_id": 0}] * 2)
    assert list(read(tmp_path)["trial_id"]) == ["a", "b", "c"] and len(ledger) == 3
    assert _names(tmp_path) == [Part(0, 0).name, Part(1, 1).name]  # one part per append, a pack's rows in one
    again = Ledger(tmp_path)  # what a resumed driver knows, from the store alone
    assert again.trial_ids() == {"a", "b", "c"}
    assert again.next_config_id(Cell("ring8", "ns", "mlp")) == 5  # the seeds row's config id does not count
    assert again.next_config_id(Cell("ring8", "ns", "mlp", "unrolled=5")) == 3
    assert again.next_config_id(Cell("ring8", "wgan", "mlp")) == 0


def test_a_legacy_results_parquet_is_read_as_it_is_and_migrated_by_the_first_writer(tmp_path):
    rng = random.Random(2)
    rows = [_row(i, rng) for i in range(5)]
    legacy = tmp_path / "results.parquet"
    legacy.write_bytes(to_bytes(order_columns(pd.DataFrame(rows))))
    assert exists(tmp_path) and not (tmp_path / "results").exists()
    pd.testing.assert_frame_equal(read(tmp_path), _one_table(rows))  # readers do not migrate
    pd.testing.assert_frame_equal(read(legacy), _one_table(rows))  # the old spelling of the study
    assert legacy.is_file()
    ledger = Ledger(tmp_path)
    assert not legacy.exists() and _names(tmp_path) == [Part(0, 0).name]
    new = [_row(i, rng) for i in range(5, 5 + 2 * FANOUT)]
    for r in new:
        ledger.add(r)
    pd.testing.assert_frame_equal(read(tmp_path), _one_table(rows + new))
    # Tiers count rows: the migrated 5 rows are tier 0 and merge with the first 7 appends, then
    # the next 8 appends make a second 8-row part; the 16th new row waits in its own part.
    assert _names(tmp_path) == [Part(0, 7).name, Part(8, 15).name, Part(16, 16).name]


def test_a_big_migrated_table_is_not_rewritten_by_small_appends(tmp_path):
    rng = random.Random(3)
    big = [_row(i, rng) for i in range(FANOUT ** 3)]
    (tmp_path / "results.parquet").write_bytes(to_bytes(order_columns(pd.DataFrame(big))))
    ledger = Ledger(tmp_path)
    stamp = (tmp_path / "results" / Part(0, 0).name).stat().st_mtime_ns
    new = [_row(i, rng) for i in range(len(big), len(big) + FANOUT ** 2)]
    for r in new:
        ledger.add(r)
    assert (tmp_path / "results" / Part(0, 0).name).stat().st_mtime_ns == stamp  # a tier-3 part: untouched
    assert _names(tmp_path) == [Part(0, 0).name, Part(1, FANOUT ** 2).name]
    pd.testing.assert_frame_equal(read(tmp_path), _one_table(big + new))


def test_a_damaged_legacy_table_is_one_line_and_nothing_is_written(tmp_path):
    (tmp_path / "results.parquet").write_bytes(b"\x89PNG not a table")
    with pytest.raises(UsageError, match=r"results.parquet: not a Parquet file"):
        read(tmp_path)
    with pytest.raises(UsageError, match=r"results.parquet: not a Parquet file"):
        Ledger(tmp_path)
    assert not (tmp_path / "results").exists() or _names(tmp_path) == []


def test_a_study_without_results_reads_as_the_empty_standard_table(tmp_path):
    from bench.results import COLUMNS

    assert not exists(tmp_path)
    assert list(read(tmp_path).columns) == COLUMNS and read(tmp_path).empty
    Ledger(tmp_path)  # opening writes nothing
    assert not exists(tmp_path)
    shutil.rmtree(tmp_path / "results", ignore_errors=True)


def test_primaries_are_primary_of_and_objective_of_every_row():
    """The vectorised form ``bench status`` uses, against the per-row definitions on awkward rows:
    higher-better metrics, rows from before primary metrics (FID), inf, NaN, missing columns."""
    import math

    from bench.results import objective, primaries, primary_of

    rows = [{"primary_metric": "w1", "primary_best": 0.3, "fid_best": 9.0},
            {"primary_metric": "recall", "primary_best": 0.7, "fid_best": 9.0},
            {"primary_metric": "modes", "primary_best": float("inf"), "fid_best": 1.0},
            {"primary_metric": None, "primary_best": float("nan"), "fid_best": 12.5},
            {"primary_metric": "", "primary_best": 3.0, "fid_best": float("nan")},
            {"primary_metric": "intra_fid", "primary_best": None, "fid_best": 2.0}]
    df = pd.DataFrame(rows)
    for frame in (df, df.drop(columns=["primary_metric", "primary_best"])):
        got = primaries(frame)
        for i, r in frame.iterrows():
            metric, value = primary_of(r.to_dict())
            assert got.loc[i, "metric"] == metric
            assert (math.isnan(value) and math.isnan(got.loc[i, "value"])) or got.loc[i, "value"] == value
            assert got.loc[i, "objective"] == objective(r.to_dict())
