"""Running trials on Ray Tune; the driver alone writes the ledger.

Each trial runs ``bench.train.train`` on a worker, in ``<study>/trials/<trial_id>/`` (an absolute
path: Tune does not run trials in the driver's directory). At every checkpoint the trial reports its
scores so far to Tune together with a ``ray.tune.Checkpoint`` of the checkpoint file, so a trial
whose worker dies restarts from its last checkpoint (``FailureConfig(max_failures)``), on any node.
A Tune ``Callback`` in the driver turns every finished (or failed) trial into one ledger row.

A study on S3 (``bench.storage``) has no shared path: its trials train in local scratch and mirror
their run directory to ``<study uri>/trials/<trial_id>/`` at every checkpoint. The mirror is then what
a restarted trial resumes from, so those reports carry no Tune checkpoint (that would upload every
checkpoint a second time), and Tune's own files stay in the driver's working copy.
"""
from __future__ import annotations

import os

# Before Ray is imported: keep the driver small and quiet (Tune's default loggers import torch).
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import logging  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, Callable  # noqa: E402

from bench import health  # noqa: E402
from bench.callbacks import Callback, Event  # noqa: E402
from bench.errors import STORAGE_ERRNOS, UsageError, storage_errno  # noqa: E402
from bench.results import Ledger, last_scores, finite_or_nan, objective  # noqa: E402
from bench.run_dir import CONFIG, RunDir  # noqa: E402
from bench.study import TrialSpec  # noqa: E402
from bench.study_dir import StudyDir, trial_rel  # noqa: E402

if TYPE_CHECKING:
    from bench.storage import TrialMirror

MAX_FAILURES = 2  # a trial whose worker dies is restarted this often (from its last checkpoint)
# Trials per Tuner: a study of more runs as a sequence of Tuners (Tune's controller keeps every trial
# of a Tuner in memory and walks them; benchmarks/tune_scale.py measures it). ASHA compares trials
# within a Tuner, so its rungs are per chunk of this many.
TUNER_TRIALS = 1000


@dataclass
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None


# ---- the trial (runs on a worker) ------------------------------------------------------------


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores of a run so far, from its scores rows (oldest first): the last checkpoint's values, the
    best FID over checkpoints, the modes exchanged between checkpoints (``health.mode_hops``), and the
    dataset's primary metric at the last checkpoint and at its best
    one (``best_step``, ``checkpoint_best``: the checkpoint the report shows and ``rescore
    --checkpoints best`` takes)."""
    columns = last_scores()
    out: dict[str, Any] = {**dict.fromkeys(columns, math.nan), "fid_best": math.nan, "mode_hops": math.nan, "primary_metric": None,
                           "primary": math.nan, "primary_best": math.nan, "best_step": None, "checkpoint_best": None,
                           "extractor": None, "n_samples": None}
    if not rows:
        return out
    last = rows[-1]
    out.update({k: finite_or_nan(last.get(k)) for k in columns})
    fids = [finite_or_nan(r.get("fid")) for r in rows]
    out["fid_best"] = min((f for f in fids if math.isfinite(f)), default=math.nan)
    out["mode_hops"] = health.mode_hops(r.get("modes_mask") for r in rows)

    def value(r: dict[str, Any]) -> float:  # a scores row's primary value (FID in runs from before primaries)
        return finite_or_nan(r["primary"]["value"] if r.get("primary") else r.get("fid"))

    primary = last.get("primary") or {"metric": "fid", "lower_is_better": True}
    sign = 1 if primary["lower_is_better"] else -1
    scored = [(sign * value(r), r) for r in rows if math.isfinite(value(r))]
    out.update(primary_metric=primary["metric"], primary=value(last))
    if scored:
        oriented, best = min(scored, key=lambda t: t[0])  # ties: the earliest checkpoint
        out.update(primary_best=sign * oriented, best_step=int(best["step"]), checkpoint_best=best.get("checkpoint"))
    prov = last.get("provenance") or {}
    out.update(extractor=prov.get("extractor"), n_samples=prov.get("n_generated"))
    return out


def _restore_from_ray(run: RunDir, spec: TrialSpec) -> None:
    """After a restart on a node that lacks the run directory, seed it from Tune's checkpoint."""
    from ray import tune

    from bench.io import atomic_write_json

    ck = tune.get_checkpoint()
    if ck is None:
        return
    with ck.as_directory() as d:
        files = sorted(Path(d).glob("step_*.pt"))
        if not files or (run.checkpoint_dir / files[-1].name).exists():
            return
        if not (run / CONFIG).exists():
            atomic_write_json(run / CONFIG, spec.train_config().resolved().to_dict())
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(files[-1], run.checkpoint_dir / files[-1].name)


def trial_fn(config: dict[str, Any]) -> None:
    """A Tune function trainable: train one TrialSpec, reporting at every checkpoint.

    ``config["study_dir"]`` is the study's absolute local path, or its S3 URI (then the run directory
    is local scratch mirrored to S3: ``bench.storage.TrialMirror``)."""
    from bench import plugins
    from bench.storage import TrialMirror, is_uri

    plugins.ensure(config.get("plugins", []))  # the study's own code, from its source (no shared filesystem needed)
    spec = spec_of(config)
    where = config["study_dir"]
    try:
        mirror = TrialMirror(where, spec.trial_id) if is_uri(where) else None
        _train_trial(spec, RunDir(mirror.local) if mirror else StudyDir.of(where).trial(spec.trial_id), mirror)
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        # Not the trial's failure: tell the driver (which stops the study) instead of letting Tune
        # retry on storage that is still full. The run directory resumes from its last checkpoint.
        from ray import tune

        tune.report({"storage_error": [e.errno, str(e.filename or where), e.strerror or os.strerror(e.errno)]})


def _train_trial(spec: TrialSpec, run: RunDir, mirror: TrialMirror | None) -> None:
    """Train in ``run`` (resumed from its last checkpoint), reporting to Tune at every checkpoint;
    with a ``mirror`` (a study on S3), pull the run first; the mirror pushes at every checkpoint and
    at the end, before the report (ASHA may stop the trial at a report)."""
    from bench.train import train

    if mirror is not None:
        mirror.pull()
    else:
        _restore_from_ray(run, spec)
    # the mirror first: a checkpoint is uploaded before Tune hears of it, the scratch freed before the final
    # report (after a trial's last report Tune may end its process)
    train(spec.train_config(), run.path, callbacks=[c for c in (mirror, TuneReporter(spec, run, mirror is None)) if c])


class TuneReporter(Callback):
    """A callback: report the run's scores so far to Tune at every checkpoint (with
    the checkpoint file as a Tune checkpoint when ``with_checkpoints``: a restarted trial gets it back)
    and once more at the end (``done``). The scores come with the events: nothing is re-read."""

    def __init__(self, spec: TrialSpec, run: RunDir, with_checkpoints: bool):
        import ray

        self.spec, self.with_checkpoints = spec, with_checkpoints
        self.node, self.started = ray.get_runtime_context().get_node_id(), time.time()
        self.scores = run.scores()  # read once, as the trial starts (a finished run called again ends at once)
        self.health = health.Summary(run.metrics())

    def metrics(self, step: int, status: str) -> dict[str, Any]:
        s = summarize(self.scores)
        # Tune's schedulers and searchers minimise a number: the primary metric's best so far,
        # oriented lower-better; a diverged or unscored trial is +inf.
        return {**s, **self.health.columns(), "step": step, "status": status, "node": self.node, "started_at": self.started, "objective": objective(s)}

    def where(self, run: RunDir, rel: str | None) -> str | None:
        return trial_rel(self.spec.trial_id, rel) if rel else None

    def on_start(self, event: Event) -> None:
        self.scores = event.scores
        self.health = health.Summary(event.run.metrics())  # as rewound to the checkpoint resumed from

    def on_log(self, run: RunDir, row: dict[str, Any]) -> None:
        self.health.add(row)

    def on_checkpoint(self, event: Event) -> None:
        from ray import tune

        self.scores = event.scores
        report = {**self.metrics(event.step, "running"), "checkpoint": self.where(event.run, event.run.relative(event.checkpoint))}
        if not self.with_checkpoints:
            tune.report(report)
            return
        path = event.checkpoint
        with tempfile.TemporaryDirectory() as tmp:
            os.link(path, Path(tmp) / path.name) if _same_fs(path, tmp) else shutil.copy2(path, tmp)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))

    def on_end(self, run: RunDir, result: Any) -> None:
        from ray import tune

        tune.report({**self.metrics(result.step, result.status), "done": True, "wall_s": result.wall_s,
                     "ended_at": time.time(), "checkpoint": self.where(run, result.checkpoint)})


# ---- adaptive search (TPE): hyperparameters come from the searcher, identity from their values ----

TPE_SEP = "__"
PROPOSED = -1  # the config id of a searcher's proposal until the driver records it (the cell's next id)  # "loss.clip" -> "loss__clip": Ray reads dots and slashes in config keys as nesting


def spec_of(config: dict[str, Any]) -> TrialSpec:
    """The TrialSpec a Tune config stands for: given outright (grid), or built from a searcher's
    suggestion (TPE). A suggestion's trial id hashes its values, so worker and driver agree on it; the
    driver gives it the cell's next config id when it finishes."""
    if "spec" in config:
        return TrialSpec(**config["spec"])
    from bench.study import Cell, Study, derive_seed, make_trial

    t = config["tpe"]
    study, cell = Study.from_dict(t["study"]), Cell(*t["cell"])
    hp = {k.replace(TPE_SEP, "."): v for k, v in config.items() if k not in ("tpe", "study_dir", "plugins")}
    key = derive_seed(sorted(hp.items()))
    spec = make_trial(study, cell, "search", PROPOSED, 0, hp, t["steps"])
    spec.trial_id = f"{cell.name}-search-t{key:010d}"
    spec.config["seed"] = derive_seed(study.seed, cell.key, "tpe", key, "train")
    return spec


def tpe_searcher(study: Any, cell: Any, done: list[dict[str, Any]]):
    """Ray Tune's OptunaSearch with Optuna's TPE, seeded from the study, warm-started with the
    configs the ledger already holds (their hyperparameters and objective: the primary metric's best)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from bench.study import derive_seed

    dists = cell.space(study)
    space = {k.replace(".", TPE_SEP): d.to_optuna() for k, d in dists.items()}
    sampler = optuna.samplers.TPESampler(seed=derive_seed(study.seed, cell.key, "tpe", len(done)))
    warm = [{k.replace(".", TPE_SEP): v for k, v in r["hp"].items() if k in dists} for r in done]
    rewards = [r["objective"] for r in done]
    return OptunaSearch(space=space, metric="objective", mode="min", sampler=sampler,
                        points_to_evaluate=warm or None, evaluated_rewards=rewards or None)


def _same_fs(path: Path, tmp: str) -> bool:
    try:
        return os.stat(path).st_dev == os.stat(tmp).st_dev
    except OSError:
        return False


# ---- the driver ----------------------------------------------------------------------------


def make_row(study: str, spec: TrialSpec, result: dict[str, Any], status: str, error: str | None = None) -> dict[str, Any]:
    """One ledger row from a TrialSpec and the trial's last report (pure)."""
    ck_best = result.get("checkpoint_best")
    row = {
        "study": study, "dataset": spec.dataset, "loss": spec.loss, "arch": spec.arch, "trick": spec.trick,
        "phase": spec.phase,
        "trial_id": spec.trial_id, "config_id": spec.config_id, "replicate": spec.replicate,
        "seed": spec.config["seed"], "status": status, "steps": result.get("step"),
        "primary_metric": result.get("primary_metric"),
        **{k: finite_or_nan(result.get(k)) for k in ("primary", "primary_best", "fid_best", "mode_hops", *last_scores())},
        **{k: finite_or_nan(result.get(k)) for k in health.COLUMNS},
        "best_step": result.get("best_step"),
        "checkpoint": result.get("checkpoint"),
        "checkpoint_best": trial_rel(spec.trial_id, ck_best) if ck_best else None,
        "node": result.get("node"), "started_at": result.get("started_at"),
        "ended_at": result.get("ended_at", time.time()), "wall_s": result.get("wall_s"),
        "extractor": result.get("extractor"), "n_samples": result.get("n_samples"),
        # Derived from the steps trained, not from a flag: Tune marks the last result of a trial its
        # scheduler stopped done=True too, and ASHA may stop a trial at its final checkpoint, when it
        # has trained every step and only missed its closing report.
        "early_stopped": status == "ok" and (result.get("step") or 0) < spec.config["steps"], "error": error,
    }
    row.update({f"hp_{k}": v for k, v in spec.hp.items()})
    return row


def check_address(address: str) -> None:
    """Fail fast (one line) when --address cannot be reached, instead of Ray's long retry loop."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
    except (ValueError, OSError):
        raise UsageError(f"cannot reach a Ray cluster at --address {address} (expected HOST:PORT of a head started with `ray start --head`)") from None


def init_ray(address: str | None, verbose: bool) -> None:
    import ray

    level = logging.INFO if verbose else logging.ERROR
    if address:
        check_address(address)
        try:
            ray.init(address=address, logging_level=level, log_to_driver=verbose)
        except (ConnectionError, RuntimeError) as e:
            # Most often token authentication (Ray >= 2.59): driver and cluster must agree on RAY_AUTH_MODE.
            raise UsageError(f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0]} "
                             "(with token auth set RAY_AUTH_MODE=token and the cluster's token in ~/.ray/auth_token "
                             "or RAY_AUTH_TOKEN)") from None
    else:
        # "local": a private Ray for this process; a bare init() would attach to any running cluster.
        ray.init(address="local", include_dashboard=False, logging_level=level, log_to_driver=verbose)


@dataclass
class Driver:
    """A study's run-time context in the driver, for every batch of trials it runs.

    ``study_dir`` is the driver's study directory (Tune's files go under ``ray/``); ``trials_root``
    is where trials find the study (default: ``study_dir``; the S3 URI of a study on S3)."""

    study_name: str
    study_dir: Path
    ledger: Ledger
    resources: Resources
    verbose: bool = False
    progress: Callable[[str, TrialSpec, dict], None] | None = None  # (event, spec, row) -> None
    trials_root: str | None = None


@dataclass
class Trials:
    """One batch of trials for one Tuner: a fixed list (random search, the seeds phase), or a Tune
    ``searcher`` proposing ``num_samples`` configs of one cell (TPE), with the ``proposal`` a worker
    needs to turn a proposed config into a TrialSpec (``spec_of``)."""

    specs: list[TrialSpec] = field(default_factory=list)
    early_stop: str = "none"
    searcher: Any = None
    proposal: dict[str, Any] | None = None
    num_samples: int = 0

    def __bool__(self) -> bool:
        return bool(self.specs) or self.num_samples > 0

    def param_space(self, tune: Any) -> dict[str, Any]:
        if self.searcher is None:
            return {"spec": tune.grid_search([s.__dict__ for s in self.specs])}
        return {"tpe": self.proposal}


def run_trials(driver: Driver, trials: Trials) -> None:
    """Run a batch of trials on the Ray cluster already initialised; every finished trial becomes a row.
    A fixed list longer than TUNER_TRIALS runs as consecutive Tuners of that many (a searcher's batch
    is bounded by its caller: ``bench.run_study.tpe_search``)."""
    if trials.searcher is None and len(trials.specs) > TUNER_TRIALS:
        for first in range(0, len(trials.specs), TUNER_TRIALS):
            _fit(driver, Trials(trials.specs[first:first + TUNER_TRIALS], trials.early_stop))
        return
    _fit(driver, trials)


def _fit(driver: Driver, trials: Trials) -> None:
    """One Tuner for one batch of trials."""
    from ray import tune

    from bench import plugins

    if not trials:
        return
    ledger, study_dir, resources = driver.ledger, driver.study_dir, driver.resources
    emit = driver.progress or (lambda event, spec, result: None)

    storage_failure: list[OSError] = []

    def finish(trial: Any, status: str | None, error: str | None = None) -> None:
        spec = spec_of(trial.config)
        res = dict(trial.last_result or {})
        code, where, *why = res.get("storage_error") or (storage_errno(error or ""), str(study_dir))
        if code:
            # The storage failed, not the trial: stop the study without a row, so that resuming
            # (once there is space) runs this trial again from its last checkpoint.
            storage_failure.append(OSError(code, why[0] if why else os.strerror(code), where))
            raise storage_failure[-1]
        if spec.config_id == PROPOSED:
            spec.config_id = ledger.next_config_id(spec.cell)
        status = status or ("ok" if res.get("status", "ok") == "running" else res["status"])
        row = make_row(driver.study_name, spec, res, status, error)
        try:
            ledger.add(row)
        except OSError as e:  # the part could not be written: the parts already written are intact
            if e.errno in STORAGE_ERRNOS:
                storage_failure.append(e)
            raise
        emit("done", spec, row)

    class LedgerCallback(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            emit("start", spec_of(trial.config), {})

        def on_trial_complete(self, iteration, trials, trial, **info):
            finish(trial, None)

        def on_trial_error(self, iteration, trials, trial, **info):
            finish(trial, "failed", _error_line(trial))

    if not driver.verbose:
        # Tune logs every failed trial with its traceback; the ledger records the error line and
        # the trial's error.txt keeps the rest, so the terminal shows only the progress display.
        logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    scheduler = asha() if trials.early_stop == "asha" else None
    trainable = tune.with_resources(trial_fn, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial})
    # the driver has loaded exactly the study's plugins (run_study.execute): they travel with every trial
    shared = {"study_dir": driver.trials_root or str(study_dir), "plugins": plugins.travel()}
    metric = "objective" if scheduler is not None or trials.searcher is not None else None
    tuner = tune.Tuner(
        trainable,
        param_space={**trials.param_space(tune), **shared},
        tune_config=tune.TuneConfig(max_concurrent_trials=resources.max_concurrent, reuse_actors=True,
                                    scheduler=scheduler, search_alg=trials.searcher, num_samples=trials.num_samples or 1,
                                    metric=metric, mode="min" if metric else None),
        run_config=tune.RunConfig(
            name=f"tune-{int(time.time() * 1000)}", storage_path=str(study_dir / "ray"), verbose=2 if driver.verbose else 0,
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1), callbacks=[LedgerCallback()],
        ),
    )
    try:
        tuner.fit()
    except Exception:
        if storage_failure:  # Tune wraps what a callback raises in a TuneError: give the cause
            raise storage_failure[0] from None
        raise


def asha():
    """ASHA (Li et al. 2020) with rungs at the trial's evaluation points (one report = one iteration)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", grace_period=1, reduction_factor=2)


def _error_line(trial: Any) -> str:
    try:
        text = Path(trial.error_file).read_text().strip().splitlines() if trial.error_file else []
    except OSError:
        text = []
    return text[-1][:500] if text else "trial failed"
