"""``results_for_protocol``: the scores of one protocol in the shape of a results table.

One row per trial of the study's results (never dropped: a trial without a score for the protocol
keeps its status and gets NaN) plus one row per external generator, with the columns the report
reads (dataset, loss, arch, phase, config_id, replicate, seed, status) and:

- ``<metric>``: the value at the trial's final checkpoint (the results row's ``checkpoint``),
- ``<metric>_best`` and ``best_step``: the best value over the trial's scored checkpoints (lowest for
  lower-better metrics, highest for the others: ``registry.lower_is_better``), present when some trial was scored at a
  checkpoint other than its final one (``--checkpoints best`` or ``all``),
- ``protocol``, ``source`` (study or external), ``n_scored`` (checkpoints scored for it).

A trial whose every checkpoint failed to score (corrupt, missing, refused) gets status ``failed`` and
the error line. The training-time score columns of the results (fid, kid, ...) are dropped:
they were made under another protocol. External rows are phase ``seeds``, config 0, seed 0, status ok.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.metrics.registry import lower_is_better
from bench.rescore.protocol import is_protocol, parse_protocol
from bench.rescore.store import SCORES, read_scores
from bench.results import score_columns


def _select(scores: pd.DataFrame, protocol_or_metric: str) -> tuple[str, pd.DataFrame]:
    """(metric, the rows of the protocol(s)); a bare metric must name one protocol per dataset."""
    have = sorted(scores["protocol"].dropna().unique()) if len(scores) else []
    if is_protocol(protocol_or_metric):
        metric = parse_protocol(protocol_or_metric).metric
        rows = scores[scores["protocol"] == protocol_or_metric]
    else:
        metric = protocol_or_metric
        rows = scores[scores["metric"] == metric]
        per_ds = rows.groupby("dataset")["protocol"].nunique()
        if (per_ds > 1).any():
            ds = per_ds[per_ds > 1].index[0]
            names = sorted(rows[rows["dataset"] == ds]["protocol"].unique())
            raise UsageError(f"metric {metric} has several protocols for {ds}: {', '.join(names)}; name one")
    if rows.empty:
        shown = ", ".join(have[:12]) + (" ..." if len(have) > 12 else "")
        raise UsageError(f"no scores for {protocol_or_metric!r}; scored protocols: {shown or 'none'}")
    return metric, rows


def _best(values: pd.DataFrame, metric: str) -> tuple[float, int | None]:
    ok = values[(values["status"] == "ok") & values["value"].map(lambda v: isinstance(v, float) and math.isfinite(v))]
    if ok.empty:
        return math.nan, None
    r = ok.sort_values(["value", "step"], ascending=[lower_is_better(metric) is not False, True]).iloc[0]
    return float(r["value"]), int(r["step"])


def results_for_protocol(study_dir: str | Path, protocol_or_metric: str) -> pd.DataFrame:
    """One row per trial (and external generator) with the protocol's metric; see the module docstring."""
    from bench.rescore.driver import read_results, step_of

    study_dir = Path(study_dir)
    if not (study_dir / SCORES).is_file():
        raise UsageError(f"{study_dir} holds no {SCORES}: run `bench rescore {study_dir}` first")
    metric, rows = _select(read_scores(study_dir), protocol_or_metric)
    rows = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce").astype(float),
                       step=pd.to_numeric(rows["step"], errors="coerce"))
    results = read_results(study_dir)
    by_trial = {t: g for t, g in rows.groupby("trial_id")}
    out, any_other, training_scores = [], False, set(score_columns())
    for r in results.to_dict("records"):
        base = {k: v for k, v in r.items() if k not in training_scores}
        final = step_of(r.get("checkpoint") if isinstance(r.get("checkpoint"), str) else None, r.get("steps"))
        g = by_trial.get(r["trial_id"])
        rec = {**base, "source": "study", metric: math.nan, f"{metric}_best": math.nan, "best_step": None,
               "n_scored": 0, "protocol": None}
        if g is not None:
            at = g[(g["step"] == final) & (g["status"] == "ok")]
            rec[metric] = float(at["value"].iloc[0]) if len(at) else math.nan
            rec[f"{metric}_best"], rec["best_step"] = _best(g, metric)
            rec["n_scored"] = int((g["status"] == "ok").sum())
            rec["protocol"] = ", ".join(sorted(g["protocol"].unique()))
            any_other |= bool((g["step"] != final).any())
            if rec["n_scored"] == 0:
                rec["status"] = "failed"
                rec["error"] = str(g["error"].dropna().iloc[0]) if g["error"].notna().any() else "not scored"
        out.append(rec)
    for tid, g in rows[rows["source"] == "external"].groupby("trial_id"):
        first = g.iloc[0]
        value, step = _best(g, metric)
        out.append({"study": first.get("study"), "dataset": first["dataset"], "loss": first["loss"],
                    "arch": first["arch"], "phase": "seeds", "trial_id": tid, "config_id": 0, "replicate": 0,
                    "seed": 0, "status": "ok" if (g["status"] == "ok").any() else "failed", "steps": None,
                    "checkpoint": first["checkpoint"], "checkpoint_best": first["checkpoint"], "error": None,
                    "source": "external", metric: value, f"{metric}_best": value, "best_step": step,
                    "n_scored": int((g["status"] == "ok").sum()), "protocol": ", ".join(sorted(g["protocol"].unique()))})
    df = pd.DataFrame(out)
    if not any_other:
        df = df.drop(columns=[f"{metric}_best", "best_step"])
    return df
