"""A study as pure data: the grid of cells and the deterministic list of trials it implies.

    datasets x losses x archs x tricks -> cells;  each cell -> B search configs (+ S seed replicates of its best)

Config identity is deterministic: (study seed, cell, phase, config_id) fixes the hyperparameters and
the training seed, so a study can be reproduced and resumed exactly. Config 0 of every cell is the
loss's published defaults (Lucic et al. 2018, sample 0) with the space's fixed entries; configs
1..B-1 are drawn from the search space with Optuna's RandomSampler seeded from the study seed and
the cell.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import sweeps
from bench import tricks as T
from bench.config import TrainConfig
from bench.errors import UsageError

PHASES = ("search", "seeds")
SEARCHES = ("random", "tpe")
EARLY_STOPS = ("none", "asha")



def default_space(datasets: list[str]) -> str:
    """The search space a study of ``datasets`` uses when none is given (each dataset's registration
    names one); datasets with different defaults have no common one (UsageError: give ``--space``)."""
    from bench.data.registry import describe

    spaces = {d: describe(d).space for d in datasets}
    if len(set(spaces.values())) > 1:
        listed = ", ".join(f"{d}: {sp}" for d, sp in spaces.items())
        raise UsageError(f"these datasets have different default search spaces ({listed}); give --space")
    return next(iter(spaces.values()))


def default_arch(dataset: str) -> str:
    """The architecture a study or ``bench train`` uses on ``dataset`` when none is given."""
    from bench.data.registry import describe

    return describe(dataset).arch


@dataclass
class Study:
    """Everything that defines a study; stored as ``study.json`` and compared on resume."""

    name: str
    datasets: list[str]
    losses: list[str]
    archs: list[str] | None = None  # None: each dataset's default (mlp for 2-D data, infogan for images)
    # Tricks crossed with the losses (bench.tricks, canonical spellings); ["none"]: the losses alone
    tricks: list[str] = field(default_factory=lambda: [T.NONE])
    budget: int = 100
    space: dict[str, Any] = field(default_factory=dict)  # the loaded space, as data (a snapshot)
    search: str = "random"
    early_stop: str = "none"
    seeds: int = 10
    steps: int | None = None  # None: the dataset's training length (its registration: epochs or steps)
    epochs: float | None = None
    eval_every: int | None = None  # None: 5 evaluation points per trial (Lucic: every 5 epochs)
    metrics: list[str] = field(default_factory=list)  # empty: the dataset's defaults (bench.metrics)
    eval_samples: int | None = None
    seed: int = 0
    base: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields fixed for every trial
    # Plugins the study runs with (bench.plugins.travel(): name, sha256 and a file's source), so that
    # its Ray workers and `bench resume` import the same code
    plugins: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Study":
        return cls(**d)


def trick_of(value: Any) -> str:
    """A results row's trick: rows of studies made before tricks were a factor have none (or NaN)."""
    return value if isinstance(value, str) and value else T.NONE


def cell_key_of(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """(dataset, loss, arch, trick) of a results row (a dict): the cell it belongs to (``Cell.ident``)."""
    return row["dataset"], row["loss"], row["arch"], trick_of(row.get("trick"))


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: the unit that gets a budget of configs and a seeds phase. A cell
    without a trick has the key and trial ids it had before tricks existed (studies resume)."""

    dataset: str
    loss: str
    arch: str
    trick: str = T.NONE

    @property
    def key(self) -> str:
        base = f"{self.dataset}/{self.loss}/{self.arch}"
        return base if self.trick == T.NONE else f"{base}/{self.trick}"

    @property
    def name(self) -> str:
        """The cell in trial ids and run directory names."""
        base = f"{self.dataset}-{self.loss}-{self.arch}"
        return base if self.trick == T.NONE else f"{base}-{T.slug(self.trick)}"

    @property
    def ident(self) -> tuple[str, str, str, str]:
        return self.dataset, self.loss, self.arch, self.trick

    def holds(self, row: dict[str, Any]) -> bool:
        """Whether a results row (a dict) belongs to this cell."""
        return cell_key_of(row) == self.ident

    def mask(self, df: Any) -> Any:
        """The rows of a results DataFrame that belong to this cell (a boolean Series): the one place
        that knows which columns make a cell."""
        trick = df["trick"].map(trick_of) if "trick" in df.columns else T.NONE
        return ((df["dataset"] == self.dataset) & (df["loss"] == self.loss) & (df["arch"] == self.arch)
                & (trick == self.trick))

    def space(self, study: "Study") -> dict[str, sweeps.Dist]:
        """The distributions this cell samples: the loss's part of the study's space, less what its
        trick fixes."""
        fixed = T.settings(self.trick)
        return {k: d for k, d in space_of(study).for_loss(self.loss).items() if k not in fixed}


@dataclass
class TrialSpec:
    """One trial: a cell, a phase, a config id, a replicate, and the full TrainConfig it runs."""

    trial_id: str
    dataset: str
    loss: str
    arch: str
    phase: str
    config_id: int
    replicate: int
    config: dict[str, Any]  # TrainConfig.to_dict() (resolved hyperparameters, seed, length)
    hp: dict[str, Any]  # the searched hyperparameters alone (hp_* columns)
    trick: str = T.NONE

    @property
    def cell(self) -> Cell:
        return Cell(self.dataset, self.loss, self.arch, self.trick)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config)


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any parts (sha256 of their JSON), the same on every machine."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def cells(study: Study) -> list[Cell]:
    """The grid, in a fixed order (``archs`` None: each dataset's default arch)."""
    out = []
    for d in study.datasets:
        for loss in study.losses:
            for arch in study.archs or [default_arch(d)]:
                out += [Cell(d, loss, arch, trick) for trick in study.tricks]
    return out


def space_of(study: Study) -> sweeps.SearchSpace:
    sp = sweeps.SearchSpace(name=study.space["name"])
    conv = lambda d: sweeps.Dist(d["kind"], d.get("low"), d.get("high"), tuple(d.get("values", ())))  # noqa: E731
    sp.params = {k: conv(v) for k, v in study.space.get("params", {}).items()}
    sp.loss_params = {l: {k: conv(v) for k, v in ps.items()} for l, ps in study.space.get("loss", {}).items()}
    return sp


def sample_configs(study: Study, cell: Cell, n: int) -> list[dict[str, Any]]:
    """Hyperparameters of configs 0..n-1 of ``cell``. Config 0 is the loss's published defaults for
    every searched hyperparameter; the space's ``fixed`` entries hold for every config, 0 included
    (a space that fixes the batch size fixes it for the defaults too).

    Optuna's RandomSampler, seeded from (study seed, cell): the same list on every call.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = cell.space(study)
    dists = {k: d.to_optuna() for k, d in space.items()}
    sampler = optuna.samplers.RandomSampler(seed=derive_seed(study.seed, cell.key, "space"))
    ostudy = optuna.create_study(sampler=sampler, direction="minimize")
    configs: list[dict[str, Any]] = [{k: d.values[0] for k, d in space.items() if d.is_fixed}]
    for _ in range(1, n):
        configs.append(dict(ostudy.ask(dists).params))
    return configs


def train_length(study: Study, dataset: str, n_train: int | None, batch_size: int) -> int:
    """Generator steps of a trial: ``--steps``, else ``--epochs`` or the dataset's registered epochs
    (ceil(epochs x training images / batch)), else its registered steps."""
    from bench.data.registry import describe

    if study.steps is not None:
        return study.steps
    epochs = study.epochs if study.epochs is not None else describe(dataset).epochs
    if epochs is not None:
        if n_train is None:
            raise UsageError(f"--epochs needs a dataset of finite size; {dataset} is sampled fresh, use --steps")
        return max(1, math.ceil(epochs * n_train / batch_size))
    return describe(dataset).steps


def make_trial(study: Study, cell: Cell, phase: str, config_id: int, replicate: int, hp: dict[str, Any],
               steps: int) -> TrialSpec:
    """The TrialSpec for one (cell, phase, config_id, replicate); ``hp`` from ``sample_configs``,
    the cell's trick on top (it holds for every config, the defaults of config 0 included)."""
    hp = {**hp, **T.settings(cell.trick)}
    loss_params = {k.removeprefix("loss."): v for k, v in hp.items() if k.startswith("loss.")}
    top = {k: v for k, v in hp.items() if not k.startswith("loss.")}
    eval_every = study.eval_every or max(1, steps // 5)
    seed = derive_seed(study.seed, cell.key, phase, config_id, replicate, "train")
    cfg = TrainConfig(dataset=cell.dataset, loss=cell.loss, arch=cell.arch, steps=steps, seed=seed,
                      ckpt_every=eval_every, log_every=min(100, eval_every), loss_params=loss_params,
                      metrics=list(study.metrics) or ["default"], eval_samples=study.eval_samples,
                      plugins=[{"name": p["name"], "sha256": p["sha256"]} for p in study.plugins], **{**study.base, **top})
    cfg = cfg.resolved()
    tid = f"{cell.name}-{phase}-c{config_id:03d}" + (f"-s{replicate:02d}" if phase == "seeds" else "")
    return TrialSpec(tid, cell.dataset, cell.loss, cell.arch, phase, config_id, replicate, cfg.to_dict(), _hp(cfg),
                     cell.trick)


def _hp(cfg: TrainConfig) -> dict[str, Any]:
    """The hyperparameters a results row shows as hp_* columns (resolved values, searched or not)."""
    d = {k: getattr(cfg, k) for k in sweeps.SEARCHABLE}
    d.update({k: v for k, v in cfg.loss_params.items()})
    return d
