"""The training loop: one plain function of a ``TrainConfig``.

``bench train``, every Ray trial and the benchmarks call ``train``; there is no second loop. The
loop has no per-loss branches: a loss (``losses.get``) supplies its D and G objectives, an optional
penalty on D and a hook after each D step (weight clipping, BEGAN's k_t), and ``Regularizers``
supply what any loss can switch on (R1, instance noise).

The run directory's layout is ``bench.run_dir.RunDir``'s. The loop reports what happens to
``Callback`` objects (a log window, a checkpoint with its scores, a divergence, the end): the scorer
(``ScoreCheckpoints``, when the config sets ``metrics``), the Ray trial's Tune reporter and the S3
mirror are callbacks, not code in the loop.
Calling ``train`` again on the same directory resumes from the last checkpoint and continues bit for
bit as if never stopped (same RNG stream, same optimizer state). That holds on the CPU; on a GPU the
resumed run follows the same RNG stream, but cuDNN's algorithm choice and atomics make its numbers
equal only up to floating-point nondeterminism.

The hot path: batches are drawn by indexing a uint8 tensor that sits on the device (no DataLoader);
losses are fetched once per log window (one host sync per window, the NaN check with them); on CUDA
cudnn.benchmark is on, conv models use channels_last and Adam is fused; ``precision="bf16"`` runs the
forward passes under ``torch.autocast(cuda, bfloat16)`` (backward and optimizer steps in fp32, loss
values computed on fp32 copies of D's outputs); ``compile=True`` runs G and D through
``torch.compile`` (gradient penalties use the eager D: compiled graphs have no double backward);
``cuda_graphs=True`` captures ``train_step`` once as a CUDA graph and replays it (bench.cuda_graph).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import losses
import losses.feature_matching as FM
from losses.unrolled import unrolled_d
import models
from bench import checkpoint, datasets, health
from bench.config import TrainConfig
from bench.callbacks import Callback, Callbacks, Event
from bench.cuda_graph import GraphedStep
from bench.errors import UsageError
from bench.run_dir import RunDir, RunResult, json_safe
from losses.regularizers import Regularizers

__all__ = ["train", "Callback", "Event", "ScoreCheckpoints", "RunResult", "pick_device"]

# Hot-path switches on CUDA (module-level so that benchmarks/overhead.py can compare against them).
CUDA_CHANNELS_LAST = True  # conv models in channels_last memory format
CUDA_FUSED_ADAM = True  # one fused kernel per optimizer step instead of foreach kernels
# torch.compile backend for --compile: inductor unless this names another (aot_eager: tests, no C++ toolchain)
COMPILE_BACKEND_ENV = "GAN_BENCH_COMPILE_BACKEND"


# ---- the scorer: a callback ----------------------------------------------------------------

class ScoreCheckpoints(Callback):
    """Score every checkpoint (``bench.metrics.checkpoint_scorer``) into scores.jsonl and ``event.scores``.

    Built before anything is written (bad metric names, weights or sample counts fail early); a run
    stopped between writing a checkpoint and scoring it scores it when it resumes."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        from bench.metrics import checkpoint_scorer

        self.score = checkpoint_scorer(cfg, device)

    def _add(self, event: Event) -> None:
        row = self.score(event.step, event.run.relative(event.checkpoint), event.G)
        event.run.add_scores(row)
        event.scores.append(row)

    def on_start(self, event: Event) -> None:
        if event.checkpoint is not None and all(r.get("step") != event.step for r in event.scores):
            self._add(event)

    def on_checkpoint(self, event: Event) -> None:
        self._add(event)


# ---- the pieces of a run ---------------------------------------------------------------------

def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type != "cuda":
        raise UsageError(f"precision bf16 needs a CUDA GPU (device is {device.type}); use --precision fp32")


def check_cuda_graphs(on: bool, device: torch.device) -> None:
    if on and device.type != "cuda":
        raise UsageError(f"--cuda-graphs needs a CUDA GPU (device is {device.type}); run without it")


def autocast(precision: str, cache: bool = True) -> contextlib.AbstractContextManager:
    """The context the forward passes run in: bf16 autocast on CUDA, or nothing (fp32).
    ``cache=False`` inside a CUDA graph capture (autocast's cast cache must not outlive the capture)."""
    if precision == "bf16":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def has_conv(*modules: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.conv._ConvNd) for mod in modules for m in mod.modules())


def prepare_cuda(G: torch.nn.Module, D: torch.nn.Module, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """cudnn.benchmark on (process-wide), conv models to channels_last; a no-op off CUDA."""
    if device.type != "cuda":
        return G, D
    torch.backends.cudnn.benchmark = True
    if CUDA_CHANNELS_LAST and has_conv(G, D):
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return G, D


def adam(params, cfg: TrainConfig, device: torch.device, lr: float) -> torch.optim.Adam:
    fused = True if device.type == "cuda" and CUDA_FUSED_ADAM else None
    # capturable: the step count stays on the device, as a CUDA graph capture of optimizer.step() needs
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=fused, capturable=cfg.cuda_graphs)


def compiled(G: torch.nn.Module, D: torch.nn.Module, on: bool) -> tuple[Callable, Callable]:
    """The callables the forward passes go through: ``torch.compile`` of G and D, or G and D."""
    if not on:
        return G, D
    backend = os.environ.get(COMPILE_BACKEND_ENV) or "inductor"
    return torch.compile(G, backend=backend), torch.compile(D, backend=backend)


def sample_z(n: int, cfg: TrainConfig, device: torch.device) -> torch.Tensor:
    if cfg.z_dist == "uniform":
        return torch.rand(n, cfg.z_dim, device=device) * 2 - 1  # Lucic: U(-1, 1)
    return torch.randn(n, cfg.z_dim, device=device)


@dataclass
class Trainee:
    """Everything a run trains and the state that resuming restores (see ``state_dict``)."""

    cfg: TrainConfig
    device: torch.device
    data: datasets.Dataset
    loss: losses.Loss
    regs: Regularizers
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_fwd: Callable  # what the forward passes go through (torch.compile'd G and D, or G and D)
    d_fwd: Callable
    fm_layer: torch.nn.Module | None = None  # feature matching's layer of D (losses.feature_matching), or off

    @classmethod
    def build(cls, cfg: TrainConfig, device: torch.device) -> Trainee:
        """Data, loss, regularizers, both nets (initialised from ``cfg.seed``) and their Adams."""
        data = datasets.get(cfg.dataset, root=cfg.data_root, resolution=cfg.resolution).to(device)
        loss = losses.get(cfg.loss, **cfg.loss_params)
        regs = Regularizers(r1_gamma=cfg.r1_gamma, r2_gamma=cfg.r2_gamma, noise_std=cfg.noise_std,
                            noise_anneal_steps=cfg.noise_anneal_steps)
        torch.manual_seed(cfg.seed)
        G, D, fm_layer = build_nets(cfg, data.spec, loss, data.classes)
        if cfg.conditional:  # scoring draws labels as the data has them
            G.class_probs.copy_(torch.bincount(data.labels.cpu(), minlength=data.classes).double() / data.n)
        G, D = prepare_cuda(G.to(device), D.to(device), device)
        if cfg.g_norm != "batch":  # the reference batch, drawn once (stored in G's state: checkpoints keep it)
            with torch.no_grad():
                G.z_ref.copy_(sample_z(G.z_ref.shape[0], cfg, device))
        g_fwd, d_fwd = compiled(G, D, cfg.compile)  # state, checkpoints and callbacks always use G and D themselves
        return cls(cfg, device, data, loss, regs, G, D, adam(G.parameters(), cfg, device, cfg.lr),
                   adam(D.parameters(), cfg, device, cfg.lr_d),  # TTUR: D's own rate
                   g_fwd, d_fwd, fm_layer)

    def state_dict(self, step: int, wall_s: float) -> dict[str, Any]:
        """A checkpoint's payload: enough to continue bit for bit, and to rebuild G alone."""
        cuda = self.device.type == "cuda"
        return {
            "config": self.cfg.to_json(), "step": step, "wall_s": wall_s,
            "data_kind": self.data.kind, "data_shape": list(self.data.shape),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "loss_state": self.loss.state_dict(),
            "rng_cpu": torch.get_rng_state(), "rng_cuda": torch.cuda.get_rng_state(self.device) if cuda else None,
        }

    def load_state_dict(self, ck: dict[str, Any]) -> tuple[int, float]:
        """Restore a checkpoint's payload; returns its (step, wall_s)."""
        self.G.load_state_dict(ck["G"])
        self.D.load_state_dict(ck["D"])
        self.opt_g.load_state_dict(ck["opt_g"])
        self.opt_d.load_state_dict(ck["opt_d"])
        self.loss.load_state_dict(ck["loss_state"])
        torch.set_rng_state(ck["rng_cpu"].cpu())
        if self.device.type == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"].cpu(), self.device)
        return ck["step"], ck["wall_s"]

    def step(self, at: int | torch.Tensor, measure: bool = True) -> torch.Tensor:
        """One generator step at step ``at``: n_disc D steps on fresh real and fake batches, then one
        G step. Returns the step's ``bench.health.FIELDS`` (losses, gradient norms, D's outputs and
        pairwise accuracy) on the device; without ``measure`` only the first two, (d_loss, g_loss):
        the same update, minus the ~30 small ops of the measurement. ``at`` is a device tensor when
        the step is captured in a CUDA graph (it then only feeds the instance-noise schedule)."""
        self.D.requires_grad_(True)
        for i in range(self.cfg.n_disc):
            d = self.d_step(at, measure=measure and i == self.cfg.n_disc - 1)
        # G: D's weights are frozen so no D gradients are computed.
        self.D.requires_grad_(False)
        g_loss = self.g_objective(at)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        if not measure:
            self.opt_g.step()
            return torch.stack((d.detach(), g_loss.detach()))
        g_norm = health.grad_norm(self.G.parameters())
        self.opt_g.step()
        return torch.stack((d[0], g_loss.detach(), g_norm, *d[1:]))

    def d_step(self, at: int | torch.Tensor, measure: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """One D update on a fresh real and fake batch (D's weights must require grad). Returns its
        loss; with ``measure``, (loss, D's gradient norm, mean D(real), mean D(fake), pairwise accuracy)."""
        cfg, loss, regs, D = self.cfg, self.loss, self.regs, self.D
        n = cfg.batch_size
        real_batch = self.real_batch(n)
        with autocast(cfg.precision, cache=not cfg.cuda_graphs):
            real = regs.perturb(real_batch(), at)
            with torch.no_grad():
                fake = regs.perturb(self.g_fwd(sample_z(n, cfg, self.device)), at)
            real_out, fake_out = self.d_fwd(real).float(), self.d_fwd(fake).float()  # .float(): a no-op in fp32
            # A loss with a schedule (R3GAN's gamma) hears how far training is: step / steps.
            pen = loss.penalty(D, real, fake, progress=at / cfg.steps) if loss.uses_progress else loss.penalty(D, real, fake)
            d_loss = _plus(_plus(loss.d_loss(real_out, fake_out), pen), regs.d_penalty(D, real, fake))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        measured = None
        if measure:
            r, f = real_out.detach(), fake_out.detach()
            measured = (d_loss.detach(), health.grad_norm(D.parameters()), r.mean(), f.mean(),
                        health.pairwise_auc(r, f, real_is_high=loss.d_head != "autoencoder"))
        self.opt_d.step()
        loss.after_d_step(D, real_out.detach(), fake_out.detach())
        return measured if measure else d_loss

    def real_batch(self, n: int) -> Callable[[], torch.Tensor]:
        """The step's real batch, as a function called where the step uses it: an unconditional step
        draws it there (its RNG order); a conditional one draws it now with its labels, which then
        condition G and D for the whole step (the fakes are generated for the real batch's labels,
        so every D call of the step, penalties included, sees one consistent labelling)."""
        if not self.cfg.conditional:
            return lambda: self.data.sample(n)
        x, self.G.labels.y = self.data.sample_labelled(n)
        return lambda: x

    def _unrolled_g_objective(self, fake: torch.Tensor, at: int | torch.Tensor) -> torch.Tensor:
        """G's loss against D after cfg.unrolled_steps differentiable steps (losses.unrolled); each
        unrolled step draws its own real batch and z, G's samples not detached."""
        cfg, loss, regs, data = self.cfg, self.loss, self.regs, self.data
        n = cfg.batch_size
        real = regs.perturb(data.sample(n), at) if loss.g_uses_real else None  # drawn where the plain step draws it
        with torch.no_grad():  # D's buffers (BatchNorm statistics, spectral-norm vectors) advance as in a plain G step
            self.D(fake)
            if real is not None:
                self.D(real)

        def d_loss(D: Callable) -> torch.Tensor:
            step_real = regs.perturb(data.sample(n), at)
            step_fake = regs.perturb(self.g_fwd(sample_z(n, cfg, self.device)), at)
            return loss.d_loss(D(step_real).float(), D(step_fake).float())

        D_k = unrolled_d(self.D, self.opt_d, cfg.unrolled_steps, d_loss)
        return loss.g_loss(D_k(fake).float(), None if real is None else D_k(real).float())

    def g_objective(self, at: int | torch.Tensor) -> torch.Tensor:
        """G's loss on a fresh batch (and a real one when the loss compares with it), not yet
        backpropagated: ``step`` minimises it, ``bench.diagnose`` measures its gradient."""
        cfg, loss, regs = self.cfg, self.loss, self.regs
        real_batch = self.real_batch(cfg.batch_size)
        with autocast(cfg.precision, cache=not cfg.cuda_graphs):
            fake = regs.perturb(self.g_fwd(sample_z(cfg.batch_size, cfg, self.device)), at)
            if cfg.unrolled_steps:
                return self._unrolled_g_objective(fake, at)
            if self.fm_layer is None:
                fake_out = self.d_fwd(fake).float()
                real_out = self.d_fwd(regs.perturb(real_batch(), at)).float() if loss.g_uses_real else None
                return loss.g_loss(fake_out, real_out)
            # Feature matching: D's features of a real batch too (D is frozen here; only G moves).
            fake_out, f_fake = FM.features_and_scores(self.d_fwd, self.fm_layer, fake)
            real_out, f_real = FM.features_and_scores(self.d_fwd, self.fm_layer, regs.perturb(real_batch(), at))
            g = loss.g_loss(fake_out.float(), real_out.float() if loss.g_uses_real else None)
            return FM.combine(g, FM.feature_matching_loss(f_real.float(), f_fake.float()), cfg.feature_matching, cfg.fm_alone)


# ---- the loop --------------------------------------------------------------------------------

def train(cfg: TrainConfig, out: str | Path, *, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train one GAN as ``cfg`` says, writing into ``out``; resume if ``out`` holds this run.

    ``callbacks`` hear about the run (``Callback``); with ``cfg.metrics`` a ``ScoreCheckpoints``
    runs before them, so they see each checkpoint's scores."""
    cfg = cfg.resolved()
    run = RunDir(out)
    resuming = run.stored_config(cfg) is not None
    device = pick_device(cfg.device)
    check_precision(cfg.precision, device)
    check_cuda_graphs(cfg.cuda_graphs, device)

    # Everything that can fail on bad input happens before the first write.
    t = Trainee.build(cfg, device)
    record = run.record() if resuming else None
    if record is not None and (record.status == "diverged" or (record.status == "ok" and record.step >= cfg.steps)):
        Callbacks(callbacks).on_end(run, record)  # a diverged run is a result: re-running it would diverge again
        return record
    hear = Callbacks(([ScoreCheckpoints(cfg, device)] if cfg.metrics else []) + list(callbacks))

    step, wall_before = 0, 0.0
    cks = run.checkpoints() if resuming else []
    last_ck = cks[-1] if cks else None
    if last_ck is not None:
        step, wall_before = t.load_state_dict(checkpoint.load(last_ck, map_location=device))
    if resuming:
        run.rewind(step)
    run.begin(cfg, step, wall_before, last_ck)
    scores = run.scores() if resuming else []
    t.G.train(), t.D.train()
    hear.on_start(Event(run, step, last_ck, t.G, scores))

    # The same step replayed from a CUDA graph: one launch instead of hundreds (bench.cuda_graph);
    # health is then measured at every step (inside the graph it costs no launches), else at every
    # health_every-th (eager, each of its small ops costs a host dispatch).
    if cfg.cuda_graphs:
        step_fn = GraphedStep(t.step, device)
    else:
        step_fn = lambda s: t.step(s, measure=s % cfg.health_every == 0)  # noqa: E731
    t0 = time.perf_counter()
    window: list[torch.Tensor] = []  # each step's output on the device (health.window), fetched once per log window
    window_t0, window_start = t0, step
    status, diverged_at, last = "ok", None, {}
    try:
        while step < cfg.steps:
            window.append(step_fn(step))
            step += 1
            at_ckpt = step % cfg.ckpt_every == 0 or step == cfg.steps
            if not (step % cfg.log_every == 0 or at_ckpt):
                continue
            # One host sync per window: the losses, the health fields and the NaN check travel together.
            steps_out = torch.cat(window).double().cpu().split([v.shape[0] for v in window])
            finite = torch.isfinite(torch.stack([v[:2] for v in steps_out])).all(dim=1)  # diverged: a loss is NaN or inf
            now = time.perf_counter()
            last = {**health.window(steps_out), **t.loss.log_values()}
            row = {"step": step, **last, "steps_per_s": len(window) / max(now - window_t0, 1e-9),
                   "wall_s": wall_before + now - t0}
            window, window_t0 = [], now
            if not bool(finite.all()):
                status, diverged_at = "diverged", window_start + int((~finite).nonzero()[0, 0]) + 1
                row["diverged_at"] = diverged_at
                run.log(row)
                hear.on_diverged(run, row)
                break
            window_start = step
            run.log(row)
            hear.on_log(run, row)
            if at_ckpt:
                last_ck = run.checkpoint_path(step)
                checkpoint.save(last_ck, t.state_dict(step, wall_before + now - t0))
                hear.on_checkpoint(Event(run, step, last_ck, t.G, scores))
    except Exception as e:  # torch.compile fails lazily, at the first step: one line, not a traceback
        if cfg.compile and type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise UsageError(f"--compile failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}); "
                             "run again without --compile (the run resumes from its last checkpoint)") from None
        raise

    result = RunResult(status=status, step=step, steps=cfg.steps, wall_s=wall_before + time.perf_counter() - t0,
                       checkpoint=run.relative(last_ck), diverged_at=diverged_at, last=json_safe(last),
                       scores=scores[-1] if scores else {})
    run.finish(result)
    hear.on_end(run, result)
    return result


def build_nets(cfg: TrainConfig, spec: Any, loss: losses.Loss, classes: int = 0,
               ) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module | None]:
    """G, D and feature matching's layer of D (or None) for ``cfg`` on data of this ``spec`` with
    ``classes`` labels (a conditional run needs them), from torch's current RNG state. Every check
    of whether the run's settings fit its loss and arch that needs the nets is here, so a study can
    make it for each cell before anything is written (UsageError, one line)."""
    if cfg.conditional and not classes:
        from bench.data.registry import labelled

        raise UsageError(f"a conditional GAN needs class labels; {cfg.dataset} has none (labelled: {', '.join(labelled())})")
    try:
        G, D = models.build(cfg.arch, spec, cfg.z_dim, cfg.d_norm, loss.d_head, cfg.d_minibatch, cfg.g_norm,
                            classes if cfg.conditional else 0)
        fm_layer = _feature_matching_layer(cfg, loss, D)
        _check_unrollable(cfg, loss)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return G, D, fm_layer


def _unrollable(cls: type[losses.Loss]) -> bool:
    """Whether D's step of this loss is its d_loss alone (no penalty, post-step update or autoencoder)."""
    from losses.base import Loss

    return cls.penalty is Loss.penalty and cls.after_d_step is Loss.after_d_step and cls.d_head == "logit"


def _check_unrollable(cfg: TrainConfig, loss: losses.Loss) -> None:
    """Unrolling replays D's step as d_loss alone: a loss whose D step does more is refused."""
    if cfg.unrolled_steps and not _unrollable(type(loss)):
        fit = [n for n in losses.names() if _unrollable(losses.loss_class(n))]
        raise ValueError(f"unrolled GAN unrolls D's plain loss; {cfg.loss}'s D step also has a penalty, a post-step "
                         f"update or an autoencoder D: use one of {', '.join(fit)}")


def _feature_matching_layer(cfg: TrainConfig, loss: losses.Loss, D: torch.nn.Module) -> torch.nn.Module | None:
    """The layer of D whose input feature matching reads, or None when it is off."""
    if cfg.feature_matching == 0:
        return None
    if loss.d_head != "logit":
        raise ValueError(f"feature matching needs a logit discriminator; {cfg.loss}'s D is an {loss.d_head}")
    return FM.feature_layer(D, cfg.fm_layer)


def _plus(a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """a + b, skipping the kernel for a penalty that is switched off (the float 0.0)."""
    return a if isinstance(b, float) and b == 0.0 else a + b
