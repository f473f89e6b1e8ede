"""The one config a training run is a function of.

``TrainConfig`` is plain data: it serializes to the JSON stored as ``config.json`` in a run directory,
is what Ray Tune sees for a trial, and what the results table shows as ``hp_*`` columns. ``None`` in a
training hyperparameter means "the loss's published default" (Lucic et al. 2018, sample 0 of every
search); ``resolved()`` fills those in so that a stored config is always concrete.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from bench.errors import UsageError

Z_DISTS = ("uniform", "normal")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")  # bf16: torch.autocast(cuda, bfloat16) around the forward passes (GPU only)

# Fields that do not change what is trained: a run may be resumed with other values of these
# (more steps, another device, another logging cadence, data read from another mount).
NOT_IDENTITY = ("steps", "device", "log_every", "ckpt_every", "health_every", "data_root",
                # scoring at checkpoints: it never touches the training RNG (bench.metrics)
                "metrics", "eval_samples", "feature_extractor", "fe_weights",
                # torch.compile fuses kernels: the same model and algorithm, rounding may differ (like
                # another GPU); precision, by contrast, is part of the run (bf16 changes the numerics)
                "compile",
                # a CUDA graph replays the same kernels as the eager step (bench.cuda_graph)
                "cuda_graphs")


@dataclass
class TrainConfig:
    dataset: str = "ring8"
    loss: str = "ns"
    arch: str = "mlp"
    steps: int = 2000
    batch_size: int = 64  # Lucic: 64 for every model
    z_dim: int = 64  # Lucic: 64
    z_dist: str = "uniform"  # Lucic: z ~ U(-1, 1); "normal" for N(0, I)
    lr: float | None = None
    # D's own learning rate: the two time-scale update rule (TTUR, Heusel et al. 2017); None = lr
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float = 0.999  # Lucic leaves Adam's beta2 at its default
    n_disc: int | None = None
    d_norm: str | None = None  # none | batch | layer | spectral
    # a layer letting D compare a sample with its batch (models.minibatch): none | stddev | discrimination
    d_minibatch: str = "none"
    # G's normalization: its batch norm, or reference / virtual batch norm (Salimans 2016, models.reference_norm)
    g_norm: str = "batch"
    # class-conditional G and D on labelled data (models.conditional): conditional batch norm in G, a
    # projection discriminator (Miyato & Koyama 2018)
    conditional: bool = False
    loss_params: dict[str, float] = field(default_factory=dict)
    r1_gamma: float = 0.0  # R1 penalty weight (Mescheder 2018); 0 = off
    r2_gamma: float = 0.0  # R2 penalty weight (Mescheder 2018: R1 on generated samples); 0 = off
    # feature matching (Salimans 2016, losses.feature_matching): weight w of ||E f(x) - E f(G(z))||^2
    # in G's objective (0 = off), f the input of D's fm_layer-th weight layer from the end; fm_alone:
    # w L_FM is G's whole objective instead of being added to the loss's
    feature_matching: float = 0.0
    fm_layer: int = 1
    fm_alone: bool = False
    # unrolled GAN (Metz et al. 2017, losses.unrolled): G's objective sees D after this many
    # differentiable Adam steps; 0 = off
    unrolled_steps: int = 0
    noise_std: float = 0.0  # instance noise std at step 0 (Arjovsky & Bottou 2017); 0 = off
    noise_anneal_steps: int | None = None  # noise reaches 0 here; None = at the last step
    seed: int = 0
    resolution: int | None = None  # None = the dataset's native resolution
    data_root: str | None = None
    log_every: int = 100
    ckpt_every: int = 500
    # Training health (bench.health) is measured at every health_every-th step (every step with
    # cuda_graphs, where it is part of the graph and costs no launches); it never changes the training.
    health_every: int = 10
    device: str = "auto"
    # Hot path (bench.train): fp32 everywhere, or bf16 autocast on a CUDA GPU; torch.compile of G and D.
    precision: str = "fp32"
    compile: bool = False
    cuda_graphs: bool = False  # capture the whole step once as a CUDA graph and replay it (bench.cuda_graph)
    # Scoring at every checkpoint into scores.jsonl (bench.metrics); does not change what is trained.
    metrics: list[str] = field(default_factory=list)  # empty: no scoring; ["default"]: the dataset's metrics
    eval_samples: int | None = None  # None: the metrics' default sample count
    feature_extractor: str | None = None  # None: the dataset's default extractor
    fe_weights: str | None = None  # extractor weights file (a local path, like data_root)
    # Provenance of user code: name and sha256 of every plugin loaded (bench.plugins). Part of the run's
    # identity: a run is resumed only under the same plugin code.
    plugins: list[dict[str, str]] = field(default_factory=list)

    # -- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def identity(self) -> dict[str, Any]:
        """What makes two configs the same training run (everything but cadence, length, device).

        Settings added later compare by their meaning, so a run stored before they existed resumes:
        lr_d None is lr (one learning rate), and a loss parameter the stored config lacks has the
        loss's default (e.g. fake_label_smoothing 0)."""
        d = {k: v for k, v in self.to_dict().items() if k not in NOT_IDENTITY}
        if d.get("lr_d") is None:
            d["lr_d"] = d.get("lr")
        try:
            import losses

            d["loss_params"] = {**losses.loss_class(self.loss).params, **d["loss_params"]}
        except (KeyError, ValueError, UsageError):  # an unknown loss: compared as stored
            pass
        return d

    # -- validation ----------------------------------------------------------------------------
    def resolved(self) -> "TrainConfig":
        """A validated copy with every ``None`` replaced by the loss's published default.

        Raises UsageError with one line naming the bad field and what is accepted.
        """
        import losses
        import models

        try:
            loss = losses.get(self.loss, **self.loss_params)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if self.arch not in models.names():
            raise UsageError(f"unknown arch '{self.arch}'; known: {', '.join(models.names())}")
        pub = loss.published
        c = dataclasses.replace(
            self,
            lr=pub["lr"] if self.lr is None else self.lr,
            lr_d=(pub["lr"] if self.lr is None else self.lr) if self.lr_d is None else self.lr_d,
            beta1=pub["beta1"] if self.beta1 is None else self.beta1,
            n_disc=pub["n_disc"] if self.n_disc is None else self.n_disc,
            d_norm=pub["d_norm"] if self.d_norm is None else self.d_norm,
            loss_params=dict(loss.hp),
            # With no noise the horizon means nothing: 0 keeps it out of the run's identity, so a run can be
            # extended with more --steps. With noise, None = anneal to 0 at the last step.
            noise_anneal_steps=0 if self.noise_std == 0 else (self.steps if self.noise_anneal_steps is None
                                                              else self.noise_anneal_steps),
        )
        c._validate(models)
        return c

    def _validate(self, models) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise UsageError(msg)

        for name in ("steps", "batch_size", "z_dim", "n_disc", "log_every", "ckpt_every", "health_every"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v > 0, f"{name} must be a positive integer, got {v!r}")
        need(_finite(self.lr) and self.lr > 0, f"lr must be a positive number, got {self.lr!r}")
        need(_finite(self.lr_d) and self.lr_d > 0, f"lr_d (D's learning rate) must be a positive number, got {self.lr_d!r}")
        need(_finite(self.beta1) and 0 <= self.beta1 < 1, f"beta1 must be in [0, 1), got {self.beta1!r}")
        need(_finite(self.beta2) and 0 <= self.beta2 < 1, f"beta2 must be in [0, 1), got {self.beta2!r}")
        need(self.z_dist in Z_DISTS, f"unknown z_dist '{self.z_dist}'; known: {', '.join(Z_DISTS)}")
        need(self.d_norm in models.NORMS, f"unknown norm '{self.d_norm}'; known: {', '.join(models.NORMS)}")
        need(self.device in DEVICES, f"unknown device '{self.device}'; known: {', '.join(DEVICES)}")
        need(self.precision in PRECISIONS, f"unknown precision '{self.precision}'; known: {', '.join(PRECISIONS)}")
        need(isinstance(self.compile, bool), f"compile must be true or false, got {self.compile!r}")
        need(isinstance(self.cuda_graphs, bool), f"cuda_graphs must be true or false, got {self.cuda_graphs!r}")
        need(_finite(self.r1_gamma) and self.r1_gamma >= 0, f"r1 gamma must be >= 0, got {self.r1_gamma!r}")
        need(_finite(self.r2_gamma) and self.r2_gamma >= 0, f"r2 gamma must be >= 0, got {self.r2_gamma!r}")
        need(self.d_minibatch in models.MINIBATCH,
             f"unknown d_minibatch '{self.d_minibatch}'; known: {', '.join(models.MINIBATCH)}")
        need(self.g_norm in models.G_NORMS, f"unknown g_norm '{self.g_norm}'; known: {', '.join(models.G_NORMS)}")
        need(not (self.g_norm != "batch" and self.compile),
             f"g_norm {self.g_norm} switches its layers between the reference and the real batch, which --compile "
             "does not follow; run without --compile")
        need(isinstance(self.conditional, bool), f"conditional must be true or false, got {self.conditional!r}")
        if self.conditional:
            clash = [name for name, on in (("--compile", self.compile), ("--cuda-graphs", self.cuda_graphs),
                                           ("unrolled GAN", self.unrolled_steps > 0)) if on]
            need(not clash, f"a conditional GAN sets its batch's labels on G and D at every step, which does not "
                            f"combine with {', '.join(clash)}; run without it")
        need(_finite(self.feature_matching) and self.feature_matching >= 0,
             f"feature matching weight must be >= 0, got {self.feature_matching!r}")
        need(isinstance(self.fm_layer, int) and not isinstance(self.fm_layer, bool) and self.fm_layer >= 1,
             f"fm_layer must be a positive integer (D's weight layers counted from the end), got {self.fm_layer!r}")
        need(isinstance(self.fm_alone, bool), f"fm_alone must be true or false, got {self.fm_alone!r}")
        need(not (self.fm_alone and self.feature_matching == 0),
             "fm_alone makes feature matching G's whole objective: give it a weight (feature_matching > 0)")
        need(isinstance(self.unrolled_steps, int) and not isinstance(self.unrolled_steps, bool) and self.unrolled_steps >= 0,
             f"unrolled_steps must be an integer >= 0, got {self.unrolled_steps!r}")
        if self.unrolled_steps:
            clash = [name for name, on in (("--compile", self.compile), ("--cuda-graphs", self.cuda_graphs),
                                           ("feature matching", self.feature_matching > 0),
                                           ("R1", self.r1_gamma > 0), ("R2", self.r2_gamma > 0)) if on]
            need(not clash, f"unrolled GAN unrolls D's plain loss: it does not combine with {', '.join(clash)}")
        need(not (self.feature_matching > 0 and self.compile),
             "feature matching reads D's features through a forward hook, which --compile does not support; "
             "run without --compile")
        need(_finite(self.noise_std) and self.noise_std >= 0, f"instance noise std must be >= 0, got {self.noise_std!r}")
        need(isinstance(self.noise_anneal_steps, int) and self.noise_anneal_steps >= 0,
             f"noise_anneal_steps must be an integer >= 0, got {self.noise_anneal_steps!r}")
        need(isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed!r}")
        need(self.resolution is None or (isinstance(self.resolution, int) and self.resolution > 0),
             f"resolution must be a positive integer, got {self.resolution!r}")
        need(isinstance(self.metrics, list) and all(isinstance(m, str) for m in self.metrics),
             f"metrics must be a list of metric names, got {self.metrics!r}")
        need(self.eval_samples is None or (isinstance(self.eval_samples, int) and not isinstance(self.eval_samples, bool)
                                           and self.eval_samples > 0),
             f"eval_samples must be a positive integer, got {self.eval_samples!r}")
        need(isinstance(self.plugins, list) and all(isinstance(p, dict) and set(p) == {"name", "sha256"}
                                                    for p in self.plugins),
             f"plugins must be a list of {{name, sha256}} records, got {self.plugins!r}")
        for name in ("feature_extractor", "fe_weights"):
            need(getattr(self, name) is None or isinstance(getattr(self, name), str),
                 f"{name} must be a string, got {getattr(self, name)!r}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
