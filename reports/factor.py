"""What a report compares: the loss (Lucic et al. 2018), or any other factor of the cells.

The analysis compares the values of one column, ``loss``, within each dataset label. Comparing
along another factor is a relabelling of the table, so every statistic (budget curves, seeds
tests, Holm family, ranks, headline) is the same code:

- the factor's column becomes ``loss`` (``--factor trick``: none, feature-matching, unrolled=5...);
- every other cell column (arch, loss, trick) that takes more than one value on a dataset joins that
  dataset's label, ``ring8 [mlp] [ns]``, so levels are only ever compared with everything else equal.

``--factor trick`` asks Kurach et al. 2019's question (does any trick consistently help the
baseline?). A searched hyperparameter (an ``hp_*`` column with a few values, e.g. ``hp_d_norm``)
can be a factor too: its levels split each cell's search configurations, so its budget curves are
over those configs; the seeds phase only retrained the level of each cell's best configuration.
"""
from __future__ import annotations

import pandas as pd

from bench.errors import UsageError

CELL = ("arch", "loss", "trick")  # besides the dataset: the columns that make a cell (bench.study.Cell)
BASELINES = {"loss": "ns", "trick": "none"}  # each factor's default baseline
MAX_LEVELS = 20  # a searched hyperparameter with more values is continuous, not a factor
UNSET = {"trick": "none"}  # the value of a cell column that rows from before it existed lack


def noun(factor: str) -> str:
    """What the report calls a level of the factor: loss, trick, arch, d_norm..."""
    return factor.removeprefix("hp_")


def default_baseline(factor: str) -> str | None:
    return BASELINES.get(noun(factor))


def compare_along(table: pd.DataFrame, factor: str) -> pd.DataFrame:
    """The table relabelled so that the analysis compares the levels of ``factor`` (module docstring).
    UsageError when the factor is not a column, or has too many levels to be one."""
    if factor == "loss" and not {"dataset", "loss"} <= set(table.columns):
        return table  # metrics.check names the missing columns
    df = table.copy()
    for col, unset in UNSET.items():
        if col in df.columns:
            df[col] = df[col].where(df[col].notna() & (df[col].astype(object) != ""), unset)
        elif col == factor:
            df[col] = unset
    if factor not in df.columns or not (factor in CELL or factor.startswith("hp_")) or "dataset" not in df.columns:
        cols = [*CELL, *sorted(c for c in df.columns if c.startswith("hp_"))]
        raise UsageError(f"--factor {factor!r} is not a column of the results; accepted: {', '.join(cols)}")
    levels = df[factor].dropna().astype(str).unique()
    if factor.startswith("hp_") and len(levels) > MAX_LEVELS:
        raise UsageError(f"--factor {factor} has {len(levels)} distinct values; a factor compares at most "
                         f"{MAX_LEVELS} named levels (a continuous hyperparameter is not one)")
    if factor != "loss" and df[factor].isna().any():  # the loss column's own checks are metrics.check's
        raise UsageError(f"--factor {factor}: {int(df[factor].isna().sum())} rows have no value in {factor}")
    labels = df["dataset"]
    for col in CELL:
        if col == factor or col not in df.columns:
            continue
        values = df[col].astype(object).map(str)
        varies = df.assign(_l=labels, _v=values).groupby("_l")["_v"].nunique()
        multi = labels.isin(varies[varies > 1].index) & labels.map(lambda x: isinstance(x, str))
        labels = labels.where(~multi, labels.astype(object).map(str) + " [" + values + "]")
    df["dataset"] = labels
    if factor != "loss":
        df["loss_name"] = df["loss"]
        df["loss"] = df[factor].astype(object).map(str)
    return df
