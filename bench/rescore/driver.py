"""The driver of ``bench rescore``: plan, share the real side, run Ray tasks, write every row.

1. Validate everything cheap, then build one ``Scorer`` per dataset of the study in the driver. That
   resolves the protocol strings (extractor weights' sha256, sample counts) and computes the real
   side once, through the reference cache (a second rescore reads it from disk).
2. Plan: the study's checkpoints (``final``: each results row's ``checkpoint``; ``best``:
   ``checkpoint_best``; ``all``: every ``trials/<id>/checkpoints/step_*.pt`` of every row, plus those
   two), and per checkpoint the metric families whose protocols ``scores.parquet`` lacks an ok row.
3. Run: one Ray task per checkpoint (``ray.remote``, not Tune), with the reference ``ray.put`` once per
   dataset and handed to every task. After every batch of finished tasks the driver adds the rows
   and rewrites ``scores.parquet`` atomically.

Bad input raises UsageError before anything is written. A task's failure (missing, corrupt or
refused checkpoint, a worker that died) is an error row for that checkpoint; the others go on.
"""
from __future__ import annotations

import math
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.errors import UsageError
from bench.io import exclusive, remove_stale_tmp
from bench.rescore.protocol import NO_EXTRACTOR, format_protocol
from bench.rescore.store import ScoreStore
from bench.study_dir import RESCORE_LOCK, SCORES, StudyDir

CHECKPOINTS = ("final", "best", "all")
RESULTS_REQUIRED = ("trial_id", "dataset")  # columns of a study's results a rescore cannot do without
EXTERNAL_ARCH = "external"
_STEP = re.compile(r"step_(\d+)\.pt$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


@dataclass
class Options:
    metrics: list[str] | None = None        # metric families; None: each dataset's defaults
    extractor: str | None = None            # None: each dataset's default extractor
    fe_weights: str | None = None
    samples: int | None = None              # None: each dataset's default sample count
    split: str = "test"
    checkpoints: str = "final"
    address: str | None = None              # None: a private local Ray
    gpus_per_task: float = 0.0
    cpus_per_task: float = 1.0
    share_reference: bool = True            # False: every task recomputes the real side (benchmarks only)
    verbose: bool = False
    max_in_flight: int = 512


@dataclass
class Summary:
    study_dir: str
    protocols: list[str] = field(default_factory=list)
    checkpoints: int = 0                    # checkpoints considered
    already: int = 0                        # ... of which every protocol was already scored
    scored: int = 0                         # ... scored now
    errors: list[dict[str, Any]] = field(default_factory=list)  # {trial_id, step, checkpoint, error}
    no_checkpoint: list[str] = field(default_factory=list)      # trials that record no checkpoint
    rows_added: int = 0
    rows_total: int = 0
    shared_reference: bool = True           # every task used the driver's real side
    worker_reference_computations: int = 0  # real-side computations inside tasks (0 when shared)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"scores": str(Path(self.study_dir) / SCORES)}


# ---- validation ------------------------------------------------------------------------------


def check_options(opts: Options) -> None:
    """The cheap checks (names, numbers), before any data, network or Ray is touched."""
    from bench.metrics import registry

    if opts.metrics is not None:
        if not opts.metrics:
            raise UsageError("--metrics is empty")
        registry.check_metrics(opts.metrics)
    if opts.extractor is not None:
        registry.check_extractor(opts.extractor)
    if opts.samples is not None and (isinstance(opts.samples, bool) or opts.samples <= 0):
        raise UsageError(f"--samples must be a positive integer, got {opts.samples}")
    if opts.checkpoints not in CHECKPOINTS:
        raise UsageError(f"--checkpoints must be one of {', '.join(CHECKPOINTS)}, got {opts.checkpoints!r}")
    if opts.split not in ("test", "train"):
        raise UsageError(f"--split must be test or train, got {opts.split!r}")
    if not (isinstance(opts.cpus_per_task, (int, float)) and opts.cpus_per_task > 0):
        raise UsageError(f"--cpus-per-task must be > 0, got {opts.cpus_per_task}")
    if not (isinstance(opts.gpus_per_task, (int, float)) and opts.gpus_per_task >= 0):
        raise UsageError(f"--gpus-per-task must be >= 0, got {opts.gpus_per_task}")
    if opts.address:
        from bench.runner import check_address

        check_address(opts.address)


def load_study(study_dir: str | Path):
    """The study of ``study_dir`` (UsageError when it is not one)."""
    from bench import run_study

    p = Path(study_dir)
    if not p.is_dir():
        raise UsageError(f"{study_dir} is not a study directory (no such directory)")
    return run_study.load(p.absolute())


def read_results(study_dir: Path):
    from bench import results

    if not results.exists(study_dir):
        raise UsageError(f"{study_dir} holds no results: nothing to rescore (run or resume the study first)")
    df = results.read(study_dir)  # a damaged part or file: one line naming it
    missing = [c for c in RESULTS_REQUIRED if c not in df.columns]
    if missing:
        raise UsageError(f"the results of {study_dir} lack column(s) {', '.join(missing)}: not a results table of bench run "
                         f"(rescore needs {', '.join(RESULTS_REQUIRED)} and checkpoint or checkpoint_best)")
    return df


# ---- scorers and protocols -------------------------------------------------------------------


def scorer_spec(study, dataset: str, opts: Options, device: str) -> dict[str, Any]:
    return {"dataset": dataset, "metrics": list(opts.metrics) if opts.metrics else None, "extractor": opts.extractor,
            "n": opts.samples, "fe_weights": str(Path(opts.fe_weights).absolute()) if opts.fe_weights else None,
            "split": opts.split, "resolution": study.base.get("resolution"), "data_root": study.base.get("data_root"),
            "device": device}


def resolve_spec(spec: dict[str, Any], scorer) -> dict[str, Any]:
    """The spec with every default made explicit (what the driver's scorer chose), for the workers."""
    return {**spec, "metrics": list(scorer.metrics), "extractor": scorer.extractor.name, "n": scorer.n}


def family_protocols(scorer) -> dict[str, dict[str, str]]:
    """{family: {output key: protocol string}} for the scorer's metric families."""
    from bench.metrics import registry

    out: dict[str, dict[str, str]] = {}
    for fam in scorer.metrics:
        entry = registry.metric_entry(fam)
        ex = scorer.extractor
        if entry.needs == "samples":  # modes: 2-D mixtures read no network; digits use the classifier
            ex = scorer.classifier
        name, sha = (ex.name, ex.weights_sha256) if ex is not None else (NO_EXTRACTOR, None)
        out[fam] = {k: format_protocol(k, name, sha, scorer.n, scorer.dataset.split) for k in entry.keys}
    return out


def protocol_info(scorer, fam: str) -> dict[str, Any]:
    from bench.metrics import registry

    ex = scorer.classifier if registry.metric_entry(fam).needs == "samples" else scorer.extractor
    return {"extractor": ex.name if ex is not None else NO_EXTRACTOR,
            "weights_sha256": ex.weights_sha256 if ex is not None else None,
            "n_generated": scorer.n, "n_real": scorer.n_real, "split": scorer.dataset.split}


def driver_device(opts: Options) -> str:
    if opts.gpus_per_task > 0:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


# ---- planning --------------------------------------------------------------------------------


def step_of(path: str | None, fallback: Any = None) -> int:
    m = _STEP.search(path or "")
    if m:
        return int(m.group(1))
    try:
        return int(fallback)
    except (TypeError, ValueError):
        return -1


def _na(v: Any) -> bool:
    import pandas as pd

    return v is None or (not isinstance(v, (list, dict)) and bool(pd.isna(v)))


def _text(v: Any) -> str | None:
    return None if _na(v) else str(v)


def _int(v: Any) -> int | None:
    try:
        return None if _na(v) else int(v)
    except (TypeError, ValueError):
        return None


def study_checkpoints(study_dir: Path, results, which: str) -> tuple[list[dict[str, Any]], list[str]]:
    """[(trial meta, step, checkpoint relative to the study, absolute path)] and the trials without one."""
    out, none = [], []
    for r in results.to_dict("records"):
        tid = str(r["trial_id"])
        meta = {"trial_id": tid, "study": _text(r.get("study")), "dataset": _text(r.get("dataset")),
                "loss": _text(r.get("loss")), "arch": _text(r.get("arch")), "phase": _text(r.get("phase")),
                "config_id": _int(r.get("config_id")), "replicate": _int(r.get("replicate")),
                "seed": _int(r.get("seed")), "source": "study", "label": _text(r.get("loss"))}
        final, best = _text(r.get("checkpoint")), _text(r.get("checkpoint_best"))
        rels: list[str] = []
        if which in ("final", "all") and final:
            rels.append(final)
        if which in ("best", "all") and best:
            rels.append(best)
        if which == "all":
            rels += [str(p.relative_to(Path(study_dir).absolute())) for p in StudyDir.of(study_dir).trial(tid).checkpoints()]
        seen: dict[int, str] = {}
        for rel in rels:
            step = step_of(rel, r.get("steps"))
            seen.setdefault(step, rel)
        if not seen:
            none.append(tid)
        for step, rel in sorted(seen.items()):
            out.append({**meta, "step": step, "checkpoint": rel, "path": str(study_dir / rel)})
    return out, none


# ---- rows ------------------------------------------------------------------------------------


def make_rows(job: dict[str, Any], result: dict[str, Any], scorers: dict[str, Any],
              protocols: dict[str, dict[str, dict[str, str]]]) -> list[dict[str, Any]]:
    """The rows of one finished task: one per missing protocol of that checkpoint."""
    import json

    ds = job["dataset"]
    err = result.get("error")
    prov = json.dumps(result["provenance"], sort_keys=True, default=str) if result.get("provenance") else None
    rows = []
    meta = {k: job.get(k) for k in ("trial_id", "step", "checkpoint", "study", "dataset", "loss", "arch", "phase",
                                    "config_id", "replicate", "seed", "source", "label", "generator_sha256")}
    for fam in job["families"]:
        info = protocol_info(scorers[ds], fam)
        for key, proto in protocols[ds][fam].items():
            if proto not in job["protocols"]:
                continue
            v = math.nan if err else result["values"].get(key, math.nan)
            rows.append({**meta, "protocol": proto, "metric": key, "value": v, **info,
                         "status": "error" if err else "ok", "error": err, "scored_at": time.time(),
                         "node": result.get("node"), "wall_s": result.get("wall_s"), "provenance": prov})
    return rows


# ---- the run ---------------------------------------------------------------------------------


@contextmanager
def study_lock(study_dir: Path):
    """One rescore at a time per study (a second one would race for scores.parquet); released by the
    kernel when the process dies, so a killed driver leaves no stale lock (its temporary files are
    removed here)."""
    with exclusive(study_dir / RESCORE_LOCK, f"another bench rescore is writing {study_dir / SCORES}; wait for it to end"):
        remove_stale_tmp(study_dir, SCORES)
        yield


def prepare(study_dir: str | Path, opts: Options):
    """Validate and plan (nothing written): (study, results, scorers, specs, protocols, store, jobs, summary)."""
    check_options(opts)
    study_dir = Path(study_dir).absolute()
    study = load_study(study_dir)
    results = read_results(study_dir)
    store = ScoreStore(study_dir)
    items, none = study_checkpoints(study_dir, results, opts.checkpoints)
    device = driver_device(opts)
    scorers, specs, protocols = {}, {}, {}
    from bench.metrics.score import Scorer

    for ds in sorted({i["dataset"] for i in items} | set(_datasets(results)) | set(study.datasets)):
        spec = scorer_spec(study, ds, opts, device)
        scorers[ds] = Scorer(ds, metrics=spec["metrics"], extractor=spec["extractor"], n=spec["n"],
                             fe_weights=spec["fe_weights"], split=spec["split"], resolution=spec["resolution"],
                             data_root=spec["data_root"], device=device, primary=False)  # the real side, once (cached)
        specs[ds] = resolve_spec(spec, scorers[ds])
        protocols[ds] = family_protocols(scorers[ds])
    summary = Summary(str(study_dir), sorted({p for d in protocols.values() for f in d.values() for p in f.values()}),
                      no_checkpoint=none)
    jobs = []
    for it in items:
        missing = {fam: [p for p in ps.values() if not store.has_ok(it["trial_id"], it["step"], p)]
                   for fam, ps in protocols[it["dataset"]].items()}
        fams = [f for f, ps in missing.items() if ps]
        summary.checkpoints += 1
        if not fams:
            summary.already += 1
            continue
        jobs.append({**it, "families": fams, "protocols": sorted(p for f in fams for p in missing[f])})
    for j in jobs:
        j["of"] = len(jobs)
    return study, scorers, specs, protocols, store, jobs, summary


def _datasets(results) -> list[str]:
    return [str(d) for d in results["dataset"].dropna().unique()] if "dataset" in results.columns else []


def rescore_study(study_dir: str | Path, opts: Options | None = None,
                  progress: Callable[[dict[str, Any], dict[str, Any]], None] | None = None) -> Summary:
    """Score what ``scores.parquet`` lacks; returns the summary (``errors`` lists failed checkpoints).

    Uses the Ray of this process when one is initialised, else starts one (``bench.runner.init_ray``:
    a private local Ray, or ``opts.address``) and shuts it down at the end.
    """
    opts = opts or Options()
    t0 = time.time()
    study, scorers, specs, protocols, store, jobs, summary = prepare(study_dir, opts)
    study_dir = Path(summary.study_dir)
    if jobs:
        with study_lock(study_dir):
            store = ScoreStore(study_dir)  # re-read under the lock
            _run(jobs, scorers, specs, protocols, store, summary, opts, progress)
    summary.rows_total = len(store.rows)
    summary.wall_s = time.time() - t0
    return summary


def _run(jobs, scorers, specs, protocols, store: ScoreStore, summary: Summary, opts: Options, progress) -> None:
    import ray

    from bench.rescore.tasks import one_line, score_checkpoint_task

    own = not ray.is_initialized()
    if own:
        from bench.runner import init_ray

        init_ray(opts.address, opts.verbose)
    try:
        boxes = {ds: ([ray.put(s.reference)] if opts.share_reference else None) for ds, s in scorers.items()}
        task = ray.remote(score_checkpoint_task).options(num_cpus=opts.cpus_per_task, num_gpus=opts.gpus_per_task,
                                                         max_retries=1)
        worker_specs = {ds: {**s, "device": "cuda" if opts.gpus_per_task > 0 else "cpu",
                             "threads": max(1, int(opts.cpus_per_task))} for ds, s in specs.items()}
        todo = list(jobs)
        pending: dict[Any, dict[str, Any]] = {}
        while todo or pending:
            while todo and len(pending) < opts.max_in_flight:
                job = todo.pop(0)
                pending[task.remote(_task_job(job), worker_specs[job["dataset"]], boxes[job["dataset"]])] = job
            ready, _ = ray.wait(list(pending), num_returns=1)
            rest = [r for r in pending if r not in ready]
            if rest:
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            for ref in ready:
                job = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as e:  # the worker died, twice: that checkpoint is an error row
                    res = {"values": {}, "provenance": None, "error": one_line(e), "node": None, "wall_s": None}
                summary.rows_added += store.add(make_rows(job, res, scorers, protocols))
                if res.get("error"):
                    summary.errors.append({"trial_id": job["trial_id"], "step": job["step"],
                                           "checkpoint": job["checkpoint"], "error": res["error"]})
                else:
                    summary.scored += 1
                summary.worker_reference_computations += int(res.get("computations") or 0)
                if res.get("error") is None and not res.get("shared"):
                    summary.shared_reference = False
                if progress:
                    progress(job, res)
            store.write()  # after every batch: a killed driver loses nothing already scored
    finally:
        if own:
            ray.shutdown()


def _task_job(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job[k] for k in ("trial_id", "step", "checkpoint", "path", "families")}


# ---- generators trained elsewhere ------------------------------------------------------------


def add_external(into: str | Path, generator: str | Path, z_dim: int, dataset: str, label: str,
                 opts: Options | None = None) -> Summary:
    """Score a torch.export program (z ~ N(0, I) [N, z_dim] -> samples) with the study's protocols and
    add its rows to ``<into>/scores.parquet``: ``source=external``, ``loss=label``, trial id
    ``external-<label>``, step 0. Scored in this process (one generator needs no cluster)."""
    import hashlib

    from bench.metrics.defaults import DEFAULTS
    from bench.metrics.score import Scorer, score_generator_file

    opts = opts or Options()
    t0 = time.time()
    check_options(opts)
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise UsageError(f"--z-dim must be a positive integer, got {z_dim}")
    if not isinstance(label, str) or not _LABEL.match(label):
        raise UsageError(f"--label must be 1-64 letters, digits or . _ + - (starting with a letter or digit), got {label!r}")
    study_dir = Path(into).absolute()
    study = load_study(study_dir)
    if dataset not in study.datasets:
        raise UsageError(f"--dataset {dataset} is not a dataset of the study {study.name} ({', '.join(study.datasets)})")
    if label in study.losses:
        raise UsageError(f"--label {label} is a loss of the study {study.name}; choose another label")
    gen = Path(generator)
    if not gen.is_file():
        raise UsageError(f"generator not found: {gen}")
    sha = hashlib.sha256(gen.read_bytes()).hexdigest()
    store = ScoreStore(study_dir)
    tid = f"external-{label}"
    other = {r.get("generator_sha256") for k, r in store.rows.items() if k[0] == tid} - {sha, None}
    if other:
        raise UsageError(f"--label {label} already names another generator in {study_dir / SCORES}; choose another label")
    spec = scorer_spec(study, dataset, opts, driver_device(opts))
    scorer = Scorer(dataset, metrics=spec["metrics"], extractor=spec["extractor"], n=spec["n"], fe_weights=spec["fe_weights"],
                    split=spec["split"], resolution=spec["resolution"], data_root=spec["data_root"], device=spec["device"],
                    primary=False)
    protocols = {dataset: family_protocols(scorer)}
    summary = Summary(str(study_dir), sorted(p for f in protocols[dataset].values() for p in f.values()), checkpoints=1)
    missing = {fam: [p for p in ps.values() if not store.has_ok(tid, 0, p)] for fam, ps in protocols[dataset].items()}
    fams = [f for f, ps in missing.items() if ps]
    if not fams:
        summary.already = 1
    else:
        kw = {k: spec[k] for k in ("fe_weights", "split", "resolution", "data_root", "device")}
        res = score_generator_file(gen, z_dim, dataset, metrics=[f for f in scorer.metrics if f in fams],
                                   extractor=scorer.extractor.name, n=scorer.n, seed=DEFAULTS["seed"], **kw)
        prov = res.pop("provenance")
        if prov.get("weights_sha256") != scorer.extractor.weights_sha256:
            raise UsageError("the extractor's weights changed while scoring; run again")
        job = {"trial_id": tid, "step": 0, "checkpoint": str(gen.absolute()), "study": study.name, "dataset": dataset,
               "loss": label, "arch": EXTERNAL_ARCH, "phase": "seeds", "config_id": 0, "replicate": 0, "seed": None,
               "source": "external", "label": label, "generator_sha256": sha, "families": fams,
               "protocols": sorted(p for f in fams for p in missing[f])}
        result = {"values": {k: _float(v) for k, v in res.items()}, "provenance": {**prov, "z_dim": z_dim},
                  "error": None, "node": None, "wall_s": time.time() - t0}
        with study_lock(study_dir):
            store = ScoreStore(study_dir)
            summary.rows_added = store.add(make_rows(job, result, {dataset: scorer}, protocols))
            store.write()
        summary.scored = 1
    summary.rows_total = len(store.rows)
    summary.wall_s = time.time() - t0
    return summary


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan

