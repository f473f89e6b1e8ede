"""What a Ray task does: score one checkpoint against real-side statistics computed by the driver.

The driver computes the real side once per dataset (through the reference cache of
``bench.metrics.reference``) and ``ray.put``s it; every task receives that object reference. A worker
process builds its ``Scorer`` once per (scoring spec, shared reference) and keeps it for the next
tasks: while it is built, ``reference.load_or_compute`` is replaced by a function that hands out the
shared reference after checking that its key (dataset, split, sha256 of the real samples, extractor,
weights, sample count) is exactly what this worker would have computed. So a worker never computes
real-side features, never needs the driver's cache directory (multi-node without shared cache), and
never uses statistics of other data or weights: a mismatch is an error row.

The result of a task is plain data (values, provenance, error line); the driver turns it into rows.
"""
from __future__ import annotations

import copy
import json
import math
import time
from contextlib import contextmanager
from typing import Any

_SCORERS: dict[tuple[str, str], Any] = {}  # per worker process: (spec, shared reference id) -> Scorer
_KEEP = 4


def one_line(e: BaseException) -> str:
    """An error as one line: a UsageError's own message, else the type and the first line."""
    from bench.errors import UsageError

    text = (str(e).strip().splitlines() or [""])[0]
    line = text if isinstance(e, UsageError) and text else f"{type(e).__name__}: {text}".rstrip(": ")
    return line[:300]


@contextmanager
def shared_reference(ref):
    """While active, ``reference.load_or_compute`` returns ``ref`` (after checking its key)."""
    from bench.metrics import reference as R

    original = R.load_or_compute
    used = []

    def use_shared(ds, real, extractor, *, dc_k, batch_size=64, cache=True):
        key = R.reference_key(ds, real, extractor, dc_k)
        if key != ref.key:
            diff = sorted(k for k in key if key.get(k) != ref.key.get(k))
            raise RuntimeError(f"this worker's real side differs from the driver's ({', '.join(diff)})")
        used.append(True)
        return ref

    R.load_or_compute = use_shared
    try:
        yield used
    finally:
        R.load_or_compute = original


def build_scorer(spec: dict[str, Any], ref=None, cache: bool = True):
    from bench.metrics.score import Scorer

    kw = dict(metrics=spec["metrics"], extractor=spec["extractor"], n=spec["n"], fe_weights=spec["fe_weights"],
              split=spec["split"], resolution=spec["resolution"], data_root=spec["data_root"], device=spec["device"],
              primary=False)  # exactly the protocols' metrics
    if ref is None:
        return Scorer(spec["dataset"], cache=cache, **kw), False
    with shared_reference(ref) as used:
        scorer = Scorer(spec["dataset"], **kw)
    return scorer, bool(used)


def _worker_scorer(spec: dict[str, Any], ref_box: list | None):
    """The Scorer for ``spec``: shared reference -> built once per worker; none -> rebuilt, recomputing
    the real side (what rescoring costs without sharing: benchmarks only)."""
    if not ref_box:
        return build_scorer(spec, cache=False)
    import ray

    key = (json.dumps(spec, sort_keys=True), ref_box[0].hex())
    if key not in _SCORERS:
        scorer, shared = build_scorer(spec, ray.get(ref_box[0]))
        while len(_SCORERS) >= _KEEP:
            _SCORERS.pop(next(iter(_SCORERS)))
        _SCORERS[key] = (scorer, shared)
    return _SCORERS[key]


def score_checkpoint_task(job: dict[str, Any], spec: dict[str, Any], ref_box: list | None) -> dict[str, Any]:
    """Score one checkpoint with the metric families ``job['families']``; never raises.

    ``ref_box`` is ``[ObjectRef]`` of the shared reference (a list, so Ray hands the reference itself
    to the task and the worker fetches and deserializes it once), or None to recompute.
    """
    import torch

    from bench.metrics import reference as R
    from bench.metrics.defaults import DEFAULTS

    t0 = time.time()
    before = R.computations
    out: dict[str, Any] = {"values": {}, "provenance": None, "error": None, "shared": False, "node": None}
    try:
        import ray

        out["node"] = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        pass
    try:
        from bench.checkpoint import load_generator
        from bench.metrics.samples import sampler

        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])  # the CPUs the task reserved, no more
        scorer, out["shared"] = _worker_scorer(spec, ref_box)
        device = spec["device"]
        G, cfg = load_generator(job["path"], device)  # torch.load(weights_only=True): no code runs
        if cfg.dataset != spec["dataset"]:
            raise RuntimeError(f"checkpoint was trained on {cfg.dataset}, not {spec['dataset']}")
        s = copy.copy(scorer)
        s.metrics = [m for m in scorer.metrics if m in job["families"]]
        with torch.random.fork_rng(devices=[]):
            res = s.score(sampler(G, cfg.z_dim, cfg.z_dist, seed=DEFAULTS["seed"], device=device))
        prov = res.pop("provenance")
        prov.update(checkpoint=job["checkpoint"], z_dist=cfg.z_dist, seed=DEFAULTS["seed"])
        out["values"] = {k: _number(v) for k, v in res.items()}
        out["provenance"] = prov
    except Exception as e:  # one checkpoint's failure is an error row; the others go on
        out["error"] = one_line(e)
    out["computations"] = R.computations - before
    out["wall_s"] = time.time() - t0
    return out


def _number(v: Any) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v
