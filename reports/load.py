"""Reading the inputs of ``bench report``: study directories and results files, merged into one table.

An input is a study directory (read with ``bench.results.read``: its ``results/`` parts, or the
``results.parquet`` of a study made before them) or a results file (``.parquet`` or ``.csv``). Each row keeps where it came from in two private columns: ``_root`` (the directory that
checkpoint paths are relative to: the study directory, or the folder holding the results file) and
``_input`` (the input's name). Private columns never reach an output file.

Which factor is compared, and how the other cell columns join the dataset label, is
``reports.factor``'s. A ``folder:PATH`` dataset is labelled ``folder:<last part of PATH>`` so reports never show local paths.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench import results
from bench.io import read_parquet_once
from bench.study_dir import LEGACY_RESULTS

SUFFIXES = (".parquet", ".csv")
KEY = ("dataset", "arch", "loss", "phase", "config_id", "replicate", "seed")


def input_name(path: str | Path) -> str:
    """A name for an input that holds no local path: the study directory's or the file's name."""
    p = Path(path)
    if p.is_dir():
        return p.resolve().name
    if p.name == LEGACY_RESULTS:
        return f"{p.resolve().parent.name}/{p.name}"
    return p.name


def read_one(path: str | Path, protocol: str | None = None) -> pd.DataFrame:
    """One input as a results table; with ``protocol`` (a ``bench rescore`` protocol string) a study
    directory's scores.parquet under that protocol instead of the training-time scores."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such study directory or results file: {path}")
    if protocol is not None:
        if not p.is_dir():
            raise UsageError(f"--metric {protocol} is a rescore protocol: give study directories, not {p.name}")
        from bench.rescore import results_for_protocol

        df = results_for_protocol(p, protocol)
        df["_root"] = str(p.resolve())
        df["_input"] = input_name(p)
        return df
    if p.is_dir():
        if not results.exists(p):
            raise UsageError(f"{path} is not a study directory (it holds no results: results/part-*.parquet "
                             f"or {LEGACY_RESULTS})")
        df, root = results.read(p), p
    else:
        root = p.parent
        if p.suffix.lower() not in SUFFIXES:
            raise UsageError(f"{path} is not a results table (expected a study directory, a .parquet or a .csv file)")
        try:
            df = pd.read_csv(p) if p.suffix.lower() == ".csv" else read_parquet_once(p)
        except Exception as e:  # corrupt or foreign file: one line, no traceback
            kind = "CSV" if p.suffix.lower() == ".csv" else "Parquet"
            raise UsageError(f"cannot read {path} as {kind}: {read_error(e)}") from None
    df["_root"] = str(root.resolve())
    df["_input"] = input_name(p)
    return df


def read_error(e: BaseException) -> str:
    """Why a table could not be read, in a few words (pyarrow's and pandas' messages run long)."""
    text = str(e).strip()
    if "magic bytes not found" in text:
        return "not a Parquet file (or a truncated one)"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{e.object[e.start]:02x}); save it as UTF-8"
    first = (text.splitlines() or [type(e).__name__])[0]
    return first if len(first) <= 160 else first[:157] + "..."


def refuse_repeated_trials(df: pd.DataFrame, path) -> None:
    """One input is one row per trial (bench.results never records a trial id twice): a trial id on
    several rows would be counted as several trials, silently changing every count and test."""
    if "trial_id" not in df.columns:
        return
    ids = df["trial_id"].dropna()
    dup = ids[ids.duplicated()]
    if len(dup):
        tid = dup.iloc[0]
        raise UsageError(f"{path} holds trial {str(tid)!r} more than once ({int((ids == tid).sum())} rows): a results "
                         "table has one row per trial id; remove the repeated rows")


def _label(dataset):
    if not isinstance(dataset, str):  # pandas 3's astype(str) keeps NaN: check() refuses it with one line
        return dataset
    if dataset.startswith("folder:"):
        return "folder:" + (Path(dataset[len("folder:"):]).name or "images")
    return dataset


def read_inputs(paths: list[str], protocol: str | None = None) -> pd.DataFrame:
    """Read and merge the inputs. Raises UsageError for a missing path, a file that is not a results
    table, or a trial that two inputs both hold."""
    if not paths:
        raise UsageError("give at least one study directory or results file")
    frames = [read_one(p, protocol) for p in paths]
    for p, f in zip(paths, frames):
        refuse_repeated_trials(f, p)
    df = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if "dataset" in df.columns:
        df["dataset_name"] = df["dataset"]
        df["dataset"] = df["dataset"].astype(str).map(_label)
    key = [c for c in KEY if c in df.columns]
    if {"dataset", "loss", "phase", "seed"} <= set(key) and len(frames) > 1:
        dup = df.duplicated(subset=key, keep=False)
        if dup.any():
            row = df.loc[dup].iloc[0]
            what = ", ".join(f"{c}={row[c]}" for c in key)
            raise UsageError(f"the inputs hold the same trial more than once ({what}): give each study once")
    return df
