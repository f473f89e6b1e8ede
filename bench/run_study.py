"""Studies end to end: validate, write study.json, run what the ledger lacks, then the seeds phase.

Phase ``search``: B configurations per cell (config 0 = the loss's published defaults).
Phase ``seeds`` (Lucic's phase 3): the cell's best configuration, by the dataset's primary metric at
its best checkpoint (``bench.results.objective``: W1 for point data, FID for images), retrained with S
new seeds. Resume is the same call: whatever the ledger already holds is skipped,
every missing trial is run exactly once.

A study lives in a local directory or on S3 (``bench.study_dir.StudyDir``, which owns the layout); the
functions below take either a directory (``Path``) or a ``StudyDir``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from bench import datasets, plugins, tricks
from bench.errors import UsageError
from bench.io import atomic_write_bytes, atomic_write_json, file_in_the_way
from bench.results import Ledger, objective, primaries, read
from bench.study_dir import DRIVER_LOCK, LEGACY_RESULTS, RESULTS, STUDY, StudyDir
from bench.study import Cell, Study, TrialSpec, cell_key_of, cells, make_trial, sample_configs, train_length

@dataclass
class DataInfo:
    n_train: int | None
    spec: Any
    classes: int = 0


def data_info(study: Study) -> dict[str, DataInfo]:
    """Load every dataset once (their own errors name missing files): sizes and model specs."""
    root = study.base.get("data_root")
    res = study.base.get("resolution")
    out = {}
    for name in study.datasets:
        ds = datasets.get(name, root=root, resolution=res)
        out[name] = DataInfo(ds.n, ds.spec, ds.classes)
    return out


def validate(study: Study) -> dict[str, DataInfo]:
    """Everything that can be wrong with a study, checked before anything is written."""
    import losses
    import models

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UsageError(msg)

    need(study.budget >= 1, f"--budget must be a positive integer, got {study.budget}")
    need(study.seeds >= 0, f"--seeds must be >= 0, got {study.seeds}")
    need(study.steps is None or study.steps >= 1, f"--steps must be a positive integer, got {study.steps}")
    need(study.epochs is None or (math.isfinite(study.epochs) and study.epochs > 0), f"--epochs must be > 0, got {study.epochs}")
    need(study.eval_every is None or study.eval_every >= 1, f"--eval-every must be a positive integer, got {study.eval_every}")
    need(bool(study.datasets), "--dataset names no dataset")
    need(bool(study.losses), f"--losses names no loss; known: {', '.join(losses.names())} (or all)")
    need(study.seed >= 0, f"--seed must be >= 0, got {study.seed}")
    for loss in study.losses:
        need(loss in losses.names(), f"unknown loss '{loss}'; known: {', '.join(losses.names())} (or all)")
    for arch in study.archs or []:
        need(arch in models.names(), f"unknown arch '{arch}'; known: {', '.join(models.names())}")
    from bench.metrics import extractor_names, registry

    fe = study.base.get("feature_extractor")
    need(fe is None or fe in extractor_names(), f"unknown feature extractor '{fe}'; known: {', '.join(extractor_names())}")
    fw = study.base.get("fe_weights")
    need(fw is None or Path(fw).is_file(), f"--fe-weights {fw}: no such file")

    registry.check_metrics(study.metrics)  # names, or "default": the dataset's
    need(study.eval_samples is None or study.eval_samples >= 1, f"--samples must be a positive integer, got {study.eval_samples}")
    for trick in study.tricks:
        need(trick == tricks.parse(trick), f"trick '{trick}' is not in canonical form (bench.tricks.parse)")
    info = data_info(study)
    for cell in cells(study):
        try:
            check_cell(study, cell, info[cell.dataset])
        except UsageError as e:
            raise UsageError(f"{cell.key}: {e}") from None
    for d in study.datasets:
        _length(study, info, d)  # e.g. --epochs for data that has no epochs
    return info


def check_cell(study: Study, cell: Cell, data: DataInfo) -> None:
    """Every config the cell samples resolves (space values a loss rejects, a trick a loss has no
    parameter for), and its nets build with each structural setting the configs take (a trick that
    does not fit the loss or arch): UsageError with the check's one line."""
    import losses
    from bench.train import build_nets

    configs = [make_trial(study, cell, "search", cid, 0, hp, 1).train_config()
               for cid, hp in enumerate(sample_configs(study, cell, study.budget))]
    structural = ("z_dim", "d_norm", "d_minibatch", "g_norm", "fm_layer", "fm_alone", "conditional")
    seen = set()
    for cfg in configs:
        shape = (*(getattr(cfg, k) for k in structural), cfg.feature_matching > 0, cfg.unrolled_steps > 0)
        if shape not in seen:
            seen.add(shape)
            build_nets(cfg, data.spec, losses.get(cfg.loss, **cfg.loss_params), data.classes)


def create(study: Study, where: Path | StudyDir) -> None:
    """Write study.json, or accept an identical one (then this is a resume); refuse another study."""
    place = StudyDir.of(where)
    if place.remote is not None:
        return _create_remote(study, place)
    study_dir = place.local
    blocker = study_dir if study_dir.is_file() else file_in_the_way(study_dir)
    if blocker is not None:
        raise UsageError(f"{blocker} is a file, not a directory; choose another --storage or --name")
    existing = study_dir / STUDY
    if existing.exists():
        try:
            old = json.loads(existing.read_text())
        except ValueError:
            raise UsageError(f"{existing} is unreadable; choose another --name") from None
        if not _same_study(old, study):
            raise UsageError(f"--name {study.name}: {study_dir} holds another study; choose a new --name or `bench resume {study_dir}`")
        return
    if study_dir.exists() and any(study_dir.iterdir()):
        raise UsageError(f"{study_dir} exists and holds no gan-bench study; choose a new --name or --storage")
    atomic_write_json(existing, study.to_dict())


def _same_study(stored: Any, study: Study) -> bool:
    """Whether a stored study.json is ``study``; settings added since it was written compare by their
    defaults (a study.json from before tricks existed is the study of the losses alone)."""
    try:
        old = Study.from_dict(stored).to_dict()
    except TypeError:  # fields this version does not know
        return False
    return json.loads(json.dumps(old)) == json.loads(json.dumps(study.to_dict()))


def _create_remote(study: Study, place: StudyDir) -> None:
    """``create`` for a study on S3: the same checks against the durable copy; study.json is
    uploaded first, then copied into the driver's working copy."""
    remote = place.remote
    data = (json.dumps(study.to_dict(), indent=2, sort_keys=True, allow_nan=True) + "\n").encode()
    old = remote.read(STUDY)
    if old is not None:
        try:
            same = _same_study(json.loads(old), study)
        except ValueError:
            raise UsageError(f"{remote.name}/{STUDY} is unreadable; choose another --name") from None
        if not same:
            raise UsageError(f"--name {study.name}: {remote.name} holds another study; choose a new --name or "
                             f"`bench resume {remote.uri}`")
    elif remote.files():
        raise UsageError(f"{remote.name} exists and holds no gan-bench study; choose a new --name or --storage")
    else:
        remote.write(STUDY, data)
    atomic_write_bytes(place.local / STUDY, data)


def load(where: Path | StudyDir) -> Study:
    place = StudyDir.of(where)
    data = place.read(STUDY)
    if data is None:
        raise UsageError(f"{place} is not a study directory ({STUDY} missing)")
    try:
        study = Study.from_dict(json.loads(data))
    except (ValueError, TypeError) as e:
        raise UsageError(f"{place}/{STUDY} is unreadable ({str(e).splitlines()[0]})") from None
    plugins.ensure(study.plugins)  # its losses, datasets, metrics... from the code it was started with
    return study


def _length(study: Study, info: dict[str, DataInfo], dataset: str) -> int:
    return train_length(study, dataset, info[dataset].n_train, study.base.get("batch_size", 64))


def search_trials(study: Study, info: dict[str, DataInfo]) -> list[TrialSpec]:
    out = []
    for cell in cells(study):
        steps = _length(study, info, cell.dataset)
        for cid, hp in enumerate(sample_configs(study, cell, study.budget)):
            out.append(make_trial(study, cell, "search", cid, 0, hp, steps))
    return out


def best_config(rows: pd.DataFrame) -> int | None:
    """The config whose primary metric is best at its best checkpoint (ties: lowest id); None if
    none scored."""
    scored = [(objective(r), int(r["config_id"])) for _, r in rows.iterrows()]
    scored = [t for t in scored if math.isfinite(t[0])]
    return min(scored)[1] if scored else None


def hp_of_row(row: dict[str, Any] | pd.Series, loss: str) -> dict[str, Any]:
    """A ledger row's hyperparameters in ``sample_configs`` form (for configs a searcher proposed)."""
    import losses
    import sweeps

    # a setting the row has no value for (rows from before it existed; NaN in a mixed table) keeps its default
    hp = {k: kind(row[f"hp_{k}"]) for k, kind in sweeps.SEARCHABLE.items() if f"hp_{k}" in row and not _unset(row[f"hp_{k}"])}
    hp.update({f"loss.{k}": float(row[f"hp_{k}"]) for k in losses.loss_class(loss).params
               if f"hp_{k}" in row and not _unset(row[f"hp_{k}"])})
    return hp


def _unset(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def seed_trials(study: Study, info: dict[str, DataInfo], results: pd.DataFrame) -> list[TrialSpec]:
    """Phase 3 for every cell whose search phase is complete."""
    if study.seeds == 0:
        return []
    out = []
    for cell in cells(study):
        rows = results[cell.mask(results) & (results["phase"] == "search")]
        if len(rows) < study.budget:
            continue
        best = best_config(rows)
        if best is None:
            continue
        if study.search == "random":  # regenerate: exactly the sampled values
            hp = sample_configs(study, cell, best + 1)[best]
        else:
            hp = hp_of_row(rows[rows["config_id"] == best].iloc[0], cell.loss)
        steps = _length(study, info, cell.dataset)
        out += [make_trial(study, cell, "seeds", best, r, hp, steps) for r in range(study.seeds)]
    return out


def execute(where: Path | StudyDir, resources, address: str | None = None, verbose: bool = False,
            live: bool | None = None) -> pd.DataFrame:
    """Run every trial the ledger lacks (search, then seeds) on Ray; return the results table.
    One driver per study at a time (a second would run trials twice). For a study on S3 the lock
    guards the driver's working copy: a second driver on another machine is not detected."""
    from bench.io import exclusive

    place = StudyDir.of(where)
    study = load(place)
    extra = sorted({p.name for p in plugins.loaded()} - {p["name"] for p in study.plugins})
    if extra:  # every trial must run with the code its provenance names
        raise UsageError(f"plugin {extra[0]} is not one this study was started with; the study loads its own "
                         f"({', '.join(p['name'] for p in study.plugins) or 'none'}): drop --plugin")
    info = data_info(study)
    place.local.mkdir(parents=True, exist_ok=True)
    with exclusive(place / DRIVER_LOCK, f"another bench process is running the study in {place}; wait for it to end"):
        if place.remote is not None:
            _pull_working_copy(place)
        return _execute(place, study, info, resources, address, verbose, live)


def _pull_working_copy(place: StudyDir) -> None:
    """The working copy takes the durable study.json and ledger (S3 is the truth: a working copy
    left by an earlier driver may be behind, or belong to a study since deleted)."""
    for name in (STUDY, LEGACY_RESULTS):
        data = place.remote.read(name)
        if data is not None:
            atomic_write_bytes(place.local / name, data)
        else:
            (place.local / name).unlink(missing_ok=True)
    remote, local = place.remote.child(RESULTS), place.local / RESULTS  # the parts: the same files as S3's
    durable = set(remote.files())
    for stale in (p for p in local.glob("*") if p.name not in durable):
        stale.unlink()
    for name in sorted(durable):
        remote.download(name, local / name)


def _execute(place: StudyDir, study: Study, info: dict[str, DataInfo], resources, address: str | None,
             verbose: bool, live: bool | None) -> pd.DataFrame:
    import ray

    from bench.io import remove_stale_tmp
    from bench.progress import Progress
    from bench.runner import Driver, Trials, init_ray, run_trials

    remove_stale_tmp(place.local, LEGACY_RESULTS)  # a driver killed mid-rewrite leaves its temporary file
    ledger = Ledger(place.local, place.remote)
    init_ray(address, verbose)
    try:
        with Progress({c.key: study.budget + study.seeds for c in cells(study)}, live=live) as progress:
            for r in ledger.frame().to_dict("records"):
                progress.count(Cell(*cell_key_of(r)).key, r)  # a trick's cell too
            driver = Driver(study.name, place.local, ledger, resources, verbose, progress, place.trials_root)
            for batch in SEARCH[study.search](study, info, ledger):  # phase 1, one batch after another
                run_trials(driver, batch)
            done = ledger.trial_ids()  # phase 3: the seeds of every cell whose search is complete
            run_trials(driver, Trials([s for s in seed_trials(study, info, ledger.frame()) if s.trial_id not in done]))
    finally:
        ray.shutdown()
    return ledger.frame()


# ---- the search phase, as strategies: each yields the batches of trials the ledger still lacks -----
# (generators: a batch is computed when the previous one has finished, from the ledger as it is then)

def random_search(study: Study, info: dict[str, DataInfo], ledger: Ledger) -> Iterator:
    """Lucic et al.'s protocol: B configs per cell drawn up front from the study seed, one batch."""
    from bench.runner import Trials

    done = ledger.trial_ids()
    yield Trials([s for s in search_trials(study, info) if s.trial_id not in done], study.early_stop)


def tpe_search(study: Study, info: dict[str, DataInfo], ledger: Ledger) -> Iterator:
    """Config 0 of every cell (published defaults), then per cell TPE proposes the other B-1,
    warm-started on resume with what the ledger holds."""
    from bench.runner import TUNER_TRIALS, Trials, tpe_searcher

    done = ledger.trial_ids()
    yield Trials([s for s in search_trials(study, info) if s.config_id == 0 and s.trial_id not in done], study.early_stop)
    for cell in cells(study):
        recorded = None
        while True:  # batches of at most TUNER_TRIALS, each searcher warm-started from the ledger as it is then
            df = ledger.frame()
            rows = df[cell.mask(df) & (df["phase"] == "search")]
            left = study.budget - len(rows)
            if left <= 0 or len(rows) == recorded:  # done, or the last batch recorded nothing: never loop
                break
            recorded = len(rows)
            warm = [{"hp": hp_of_row(r, cell.loss), "objective": objective(r)}
                    for _, r in rows.iterrows() if r["config_id"] > 0]
            proposal = {"study": study.to_dict(), "cell": [cell.dataset, cell.loss, cell.arch, cell.trick],
                        "steps": _length(study, info, cell.dataset)}
            yield Trials(early_stop=study.early_stop, searcher=tpe_searcher(study, cell, warm), proposal=proposal,
                         num_samples=min(left, TUNER_TRIALS))


SEARCH = {"random": random_search, "tpe": tpe_search}  # keys: bench.study.SEARCHES (tested)


def status_table(where: Path | StudyDir) -> pd.DataFrame:
    """Per cell: trials expected, done, failed/diverged, best primary metric (from the ledger; pure read). The
    ledger is a whole table even while the driver appends (``bench.results.read``), on S3 too."""
    place = StudyDir.of(where)
    return cell_status(load(place), read(place))


def cell_status(study: Study, df: pd.DataFrame) -> pd.DataFrame:
    """``status_table`` of a loaded study and its results (pure; vectorised: cheap at 100,000 rows)."""
    scored = primaries(df)
    tricks = df["trick"] if "trick" in df.columns else [None] * len(df)
    keys = [(cell_key_of({"dataset": d, "loss": x, "arch": a, "trick": t}), phase)
            for d, x, a, t, phase in zip(df["dataset"], df["loss"], df["arch"], tricks, df["phase"])]
    groups: dict[tuple, list] = {}
    for i, key in zip(df.index, keys):
        groups.setdefault(key, []).append(i)
    rows = []
    for cell in cells(study):
        for phase, expected in (("search", study.budget), ("seeds", study.seeds)):
            idx = groups.get((cell.ident, phase), [])
            status = df.loc[idx, "status"]
            s = scored.loc[idx]
            s = s[s["objective"] < math.inf].sort_values(["objective", "metric", "value"], kind="stable")
            metric, best = (s["metric"].iloc[0], s["value"].iloc[0]) if len(s) else ("", math.nan)
            rows.append({"cell": cell.key, "phase": phase, "done": len(idx), "expected": expected,
                         "ok": int((status == "ok").sum()), "diverged": int((status == "diverged").sum()),
                         "failed": int((status == "failed").sum()), "metric": metric, "best": best})
    return pd.DataFrame(rows)
