"""The training loop: one plain function of a ``TrainConfig``.

``bench train``, every Ray trial and the benchmarks call ``train``; there is no second loop. The
loop has no per-loss branches: a loss (``losses.get``) supplies its D and G objectives, an optional
penalty on D and a hook after each D step (weight clipping, BEGAN's k_t), and ``Regularizers``
supply what any loss can switch on (R1, instance noise).

A run directory holds:
  config.json     the resolved config (the run's identity)
  metrics.jsonl   losses and throughput every ``log_every`` steps (JSON lines)
  checkpoints/    step_XXXXXXXX.pt every ``ckpt_every`` steps and at the end
  scores.jsonl    scores of every checkpoint when ``metrics`` is set (bench.metrics)
  record.json     status (running | ok | diverged), step, wall time, last checkpoint
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
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import losses
import models
from bench import checkpoint, datasets
from bench.config import TrainConfig
from bench.cuda_graph import GraphedStep
from bench.errors import UsageError
from bench.io import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl, remove_stale_tmp
from losses.regularizers import Regularizers

CONFIG = "config.json"
METRICS = "metrics.jsonl"
RECORD = "record.json"
SCORES = "scores.jsonl"  # one row per checkpoint when cfg.metrics is set (bench.metrics)


@dataclass
class RunResult:
    """What a finished (or stopped) run reports: also the content of record.json."""

    status: str  # running | ok | diverged
    step: int
    steps: int
    wall_s: float
    checkpoint: str | None  # relative to the run directory
    diverged_at: int | None = None
    last: dict[str, float] = field(default_factory=dict)  # last logged losses
    scores: dict[str, Any] = field(default_factory=dict)  # the last row of scores.jsonl (cfg.metrics)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Hot-path switches on CUDA (module-level so that benchmarks/overhead.py can compare against them).
CUDA_CHANNELS_LAST = True  # conv models in channels_last memory format
CUDA_FUSED_ADAM = True  # one fused kernel per optimizer step instead of foreach kernels
# torch.compile backend for --compile: inductor unless this names another (aot_eager: tests, no C++ toolchain)
COMPILE_BACKEND_ENV = "GAN_BENCH_COMPILE_BACKEND"


# A hook called after every checkpoint is written: (run dir, step, checkpoint path, G) -> None.
# The metrics layer uses it to score checkpoints, the Ray runner to report to Tune.
CheckpointHook = Callable[[Path, int, Path, torch.nn.Module], None]


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


def adam(params, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    fused = True if device.type == "cuda" and CUDA_FUSED_ADAM else None
    # capturable: the step count stays on the device, as a CUDA graph capture of optimizer.step() needs
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused, capturable=cfg.cuda_graphs)


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


def check_run_dir(out: Path, cfg: TrainConfig) -> TrainConfig | None:
    """Validate ``out`` before anything is written. Returns the stored config when resuming.

    An empty or missing directory starts a new run; a directory holding this run's config resumes;
    anything else (another run's config, unrelated files) is refused.
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    cfg_file = out / CONFIG
    if not cfg_file.exists():
        if any(out.iterdir()):
            raise UsageError(f"--out {out} is not empty and holds no gan-bench run ({CONFIG} missing); choose a new directory")
        return None
    try:
        stored = TrainConfig.from_dict(json.loads(cfg_file.read_text()))
    except (ValueError, TypeError) as e:
        raise UsageError(f"--out {out} holds an unreadable {CONFIG} ({str(e).splitlines()[0]})") from None
    a, b = stored.identity(), cfg.identity()
    if a != b:
        diff = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        raise UsageError(f"--out {out} holds another run (differs in {diff}); choose a new directory")
    return stored


def train(cfg: TrainConfig, out: str | Path, *, on_checkpoint: CheckpointHook | None = None) -> RunResult:
    """Train one GAN as ``cfg`` says, writing into ``out``; resume if ``out`` holds this run."""
    cfg = cfg.resolved()
    out = Path(out).absolute()
    resuming = check_run_dir(out, cfg) is not None
    device = pick_device(cfg.device)
    check_precision(cfg.precision, device)
    check_cuda_graphs(cfg.cuda_graphs, device)

    # Everything that can fail on bad input happens before the first write.
    data = datasets.get(cfg.dataset, root=cfg.data_root, resolution=cfg.resolution).to(device)
    loss = losses.get(cfg.loss, **cfg.loss_params)
    regs = Regularizers(r1_gamma=cfg.r1_gamma, noise_std=cfg.noise_std, noise_anneal_steps=cfg.noise_anneal_steps)
    torch.manual_seed(cfg.seed)
    try:
        G, D = models.build(cfg.arch, data.spec, cfg.z_dim, cfg.d_norm, loss.d_head)
    except ValueError as e:
        raise UsageError(str(e)) from None
    G, D = prepare_cuda(G.to(device), D.to(device), device)
    opt_g, opt_d = adam(G.parameters(), cfg, device), adam(D.parameters(), cfg, device)
    g_fwd, d_fwd = compiled(G, D, cfg.compile)  # state, checkpoints and hooks always use G and D themselves
    amp = cfg.precision

    record = _read_record(out) if resuming else None
    if record is not None and record.status == "diverged":
        return record  # a diverged run is a result; re-running it would diverge again
    if record is not None and record.status == "ok" and record.step >= cfg.steps:
        return record
    score = None  # (step, checkpoint, G) -> scores row; set up now, leaves the global RNG untouched
    if cfg.metrics:
        from bench.metrics import checkpoint_scorer

        score = checkpoint_scorer(cfg, device)

    step, wall_before = 0, 0.0
    cks = checkpoint.list_checkpoints(out) if resuming else []
    if cks:
        ck = checkpoint.load(cks[-1], map_location=device)
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        loss.load_state_dict(ck["loss_state"])
        torch.set_rng_state(ck["rng_cpu"].cpu())
        if device.type == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"].cpu(), device)
        step, wall_before = ck["step"], ck["wall_s"]
    if resuming:
        # A process killed mid-write leaves temporary files (a checkpoint's can be large).
        remove_stale_tmp(out), remove_stale_tmp(out / checkpoint.CKPT_DIR)
        # Rows logged after the last checkpoint will be logged again, identically: drop them.
        rows = [r for r in read_jsonl(out / METRICS) if r["step"] <= step]
        atomic_write_text(out / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        if score is not None and cks and all(r.get("step") != step for r in read_jsonl(out / SCORES)):
            append_jsonl(out / SCORES, [score(step, str(cks[-1].relative_to(out)), G)])  # stopped before scoring it
    out.mkdir(parents=True, exist_ok=True)
    # The stored config keeps the new length and cadence: those may change on resume.
    atomic_write_json(out / CONFIG, cfg.to_dict())
    atomic_write_json(out / RECORD, RunResult("running", step, cfg.steps, wall_before,
                                              str(cks[-1].relative_to(out)) if cks else None).to_dict())

    def save_checkpoint(at: int, wall: float) -> Path:
        path = checkpoint.checkpoint_path(out, at)
        checkpoint.save(path, {
            "config": cfg.to_json(), "step": at, "wall_s": wall,
            "data_kind": data.kind, "data_shape": list(data.shape),
            "G": G.state_dict(), "D": D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "loss_state": loss.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        })
        return path

    def train_step(at: int | torch.Tensor) -> torch.Tensor:
        """One generator step at step ``at``: n_disc D steps on fresh real and fake batches, then one
        G step. Returns (d_loss, g_loss) on the device. ``at`` is a device tensor when the step is
        captured in a CUDA graph (it then only feeds the instance-noise schedule)."""
        D.requires_grad_(True)
        for _ in range(cfg.n_disc):
            with autocast(amp, cache=not cfg.cuda_graphs):
                real = regs.perturb(data.sample(cfg.batch_size), at)
                with torch.no_grad():
                    fake = regs.perturb(g_fwd(sample_z(cfg.batch_size, cfg, device)), at)
                real_out, fake_out = d_fwd(real).float(), d_fwd(fake).float()  # .float(): a no-op in fp32
                d_loss = _plus(_plus(loss.d_loss(real_out, fake_out), loss.penalty(D, real, fake)), regs.d_penalty(D, real))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            loss.after_d_step(D, real_out.detach(), fake_out.detach())
        # G: D's weights are frozen so no D gradients are computed.
        D.requires_grad_(False)
        with autocast(amp, cache=not cfg.cuda_graphs):
            fake_out = d_fwd(regs.perturb(g_fwd(sample_z(cfg.batch_size, cfg, device)), at)).float()
            real_out = d_fwd(regs.perturb(data.sample(cfg.batch_size), at)).float() if loss.g_uses_real else None
            g_loss = loss.g_loss(fake_out, real_out)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return torch.stack((d_loss.detach(), g_loss.detach()))

    # The same step replayed from a CUDA graph: one launch instead of hundreds (bench.cuda_graph).
    step_fn = GraphedStep(train_step, device) if cfg.cuda_graphs else train_step

    t0 = time.perf_counter()
    window: list[torch.Tensor] = []  # per-step (d_loss, g_loss) on the device, fetched once per log window
    window_t0, window_start = t0, step
    status, diverged_at, last = "ok", None, {}
    last_ck = cks[-1] if cks else None
    G.train(), D.train()
    try:
        while step < cfg.steps:
            window.append(step_fn(step))
            step += 1

            at_ckpt = step % cfg.ckpt_every == 0 or step == cfg.steps
            if step % cfg.log_every == 0 or at_ckpt:
                # One host sync per window: the losses and the NaN check travel together.
                values = torch.stack(window).double().cpu()
                finite = torch.isfinite(values).all(dim=1)
                now = time.perf_counter()
                mean = values.mean(0).tolist()
                last = {"d_loss": mean[0], "g_loss": mean[1], **loss.log_values()}
                row = {"step": step, **last, "steps_per_s": len(window) / max(now - window_t0, 1e-9),
                       "wall_s": wall_before + now - t0}
                window, window_t0 = [], now
                if not bool(finite.all()):
                    status = "diverged"
                    diverged_at = window_start + int((~finite).nonzero()[0, 0]) + 1
                    row["diverged_at"] = diverged_at
                    append_jsonl(out / METRICS, [_json_safe(row)])
                    break
                window_start = step
                append_jsonl(out / METRICS, [row])
                if at_ckpt:
                    last_ck = save_checkpoint(step, wall_before + now - t0)
                    if score is not None:
                        append_jsonl(out / SCORES, [score(step, str(last_ck.relative_to(out)), G)])
                        G.train()
                    if on_checkpoint is not None:
                        on_checkpoint(out, step, last_ck, G)
                        G.train()
    except Exception as e:  # torch.compile fails lazily, at the first step: one line, not a traceback
        if cfg.compile and type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise UsageError(f"--compile failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}); "
                             "run again without --compile (the run resumes from its last checkpoint)") from None
        raise

    result = RunResult(
        status=status, step=step, steps=cfg.steps, wall_s=wall_before + time.perf_counter() - t0,
        checkpoint=str(last_ck.relative_to(out)) if last_ck else None, diverged_at=diverged_at,
        last=_json_safe(last), scores=(read_jsonl(out / SCORES) or [{}])[-1] if score is not None else {},
    )
    atomic_write_json(out / RECORD, result.to_dict())
    return result


def _plus(a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """a + b, skipping the kernel for a penalty that is switched off (the float 0.0)."""
    return a if isinstance(b, float) and b == 0.0 else a + b


def _read_record(out: Path) -> RunResult | None:
    try:
        return RunResult(**json.loads((out / RECORD).read_text()))
    except FileNotFoundError:
        return None


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf as strings, so records stay strict JSON (a diverged loss is data, not an error)."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
