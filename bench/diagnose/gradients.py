"""Arjovsky & Bottou's gradient experiment on a stored checkpoint.

Arjovsky & Bottou (2017, Sec. 2.2 and Fig. 2) froze a DCGAN's generator, trained a discriminator
from scratch toward optimality and measured the norm of the generator's gradient as D improved:
with the minimax cost, E_z[log(1 - D(G(z)))], it falls by orders of magnitude (Theorem 2.4: it
vanishes as D approaches D*), while the non-saturating cost, -E_z[log D(G(z))], keeps a large
gradient whose variance grows (Theorem 2.6: centred Cauchy-distributed updates).

Here, for each loss L on the same frozen G: a fresh D (the checkpoint's arch with L's D head,
initialised from ``seed``) is trained on L's D objective (its penalty and post-step hook
included: WGAN's clipping, WGAN-GP's penalty, BEGAN's k_t) with a fresh Adam; at D steps
0, 1, 2, 5, 10, 20, 50, ... it draws ``batches`` fresh batches and records ||grad_theta L_G|| over
all of G's parameters, mean and standard deviation over the batches. No regularizer or
instance noise (a measurement of the loss alone). One D step and one measurement are exactly
``bench.train.Trainee.d_step`` and ``g_objective``: the training loop's own code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.errors import UsageError


@dataclass(frozen=True)
class Settings:
    """How D is pushed toward optimality and how the gradient is measured (all in provenance)."""

    d_steps: int = 2000  # D steps in all; measured at 0 and on the 1-2-5 series up to here
    lr: float = 1e-3  # D's Adam: a high rate so that D gets close to optimal within d_steps
    beta1: float = 0.5
    beta2: float = 0.999
    d_norm: str = "none"  # BatchNorm would normalise real and fake batches apart and keep D from being sure
    batch_size: int | None = None  # None: the checkpoint's
    batches: int = 10  # fresh batches per measurement (the mean and spread of the norm)
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        import models

        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise UsageError(msg)

        need(self.d_steps >= 1, f"--d-steps must be a positive integer, got {self.d_steps}")
        need(math.isfinite(self.lr) and self.lr > 0, f"--lr must be a positive number, got {self.lr}")
        need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, f"--beta1 and --beta2 must be in [0, 1), got {self.beta1}, {self.beta2}")
        need(self.d_norm in models.NORMS, f"unknown --norm '{self.d_norm}'; known: {', '.join(models.NORMS)}")
        need(self.batch_size is None or self.batch_size >= 2, f"--batch-size must be >= 2, got {self.batch_size}")
        need(self.batches >= 2, f"--batches must be >= 2 (a spread needs two), got {self.batches}")
        need(self.seed >= 0, f"--seed must be >= 0, got {self.seed}")


def measurement_steps(d_steps: int) -> list[int]:
    """0, then 1, 2, 5, 10, 20, 50, ... below ``d_steps``, then ``d_steps``."""
    out, scale = [0], 1
    while True:
        for m in (1, 2, 5):
            if m * scale >= d_steps:
                return out + [d_steps]
            out.append(m * scale)
        scale *= 10


def grad_norm(params: list[torch.nn.Parameter]) -> float:
    """||grad|| over all parameters (those without a gradient count as 0), in float64."""
    sq = sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None)
    return math.sqrt(float(sq)) if not isinstance(sq, int) else 0.0


def curves(checkpoint_path: str | Path, loss_names: list[str], s: Settings) -> dict[str, Any]:
    """``{"losses": {NAME: {"d_steps", "g_grad_norm_mean", "g_grad_norm_std", "d_loss"}}, "skipped":
    {NAME: why}, "provenance": {...}}``; the lists are aligned, the first entry at 0 D steps
    (``d_loss`` there is NaN: no step taken yet). A loss whose D cannot be built on the
    checkpoint's arch is skipped with the reason; one whose D diverges stops there (NaN after)."""
    from bench import checkpoint
    from bench.train import pick_device

    s.check()
    path = checkpoint.resolve_checkpoint(checkpoint_path)
    ck = checkpoint.load(path, map_location="cpu")
    try:
        trained = checkpoint.config_of(ck)
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"checkpoint {path} holds no readable run config ({type(e).__name__})") from None
    device = pick_device(s.device)
    steps = measurement_steps(s.d_steps)
    out: dict[str, Any] = {"losses": {}, "skipped": {}}
    for name in loss_names:
        try:
            out["losses"][name] = _one_loss(ck, trained, name, s, steps, device)
        except UsageError as e:  # e.g. BEGAN's autoencoder D on an arch without one
            out["skipped"][name] = str(e)
    out["provenance"] = {
        "experiment": "Arjovsky & Bottou 2017, Fig. 2: G frozen, a fresh D trained toward optimality, "
                      "||grad_theta L_G|| measured along the way",
        "checkpoint": str(path), "checkpoint_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "checkpoint_step": int(ck["step"]), "trained_with": {"dataset": trained.dataset, "loss": trained.loss,
                                                             "arch": trained.arch, "seed": trained.seed},
        "settings": {**dataclasses.asdict(s), "batch_size": s.batch_size or trained.batch_size},
        "d_optimizer": "Adam (fresh)", "regularizers": "none", "instance_noise": 0.0,
        "loss_params": {n: v["loss_params"] for n, v in out["losses"].items()},
        "device": str(device), "torch": torch.__version__,
    }
    for v in out["losses"].values():
        v.pop("loss_params")
    return out


def _one_loss(ck: dict[str, Any], trained, name: str, s: Settings, steps: list[int], device: torch.device) -> dict[str, Any]:
    from bench.train import Trainee

    cfg = dataclasses.replace(
        trained, loss=name, loss_params={}, lr=s.lr, lr_d=None, beta1=s.beta1, beta2=s.beta2, n_disc=1, d_norm=s.d_norm,
        batch_size=s.batch_size or trained.batch_size, seed=s.seed, r1_gamma=0.0, r2_gamma=0.0, feature_matching=0.0, fm_alone=False, unrolled_steps=0, noise_std=0.0,
        noise_anneal_steps=None, device=str(device), precision="fp32", compile=False, cuda_graphs=False, metrics=[],
    ).resolved()
    t = Trainee.build(cfg, device)  # seeds torch with s.seed, then builds G and a fresh D
    t.G.load_state_dict(ck["G"])
    t.G.train(), t.D.train()  # as in training (BatchNorm in G uses batch statistics)
    g_params = list(t.G.parameters())
    rec: dict[str, Any] = {"d_steps": [], "g_grad_norm_mean": [], "g_grad_norm_std": [], "d_loss": [],
                           "loss_params": cfg.loss_params}
    done, d_loss, diverged = 0, math.nan, False
    for at in steps:
        t.D.requires_grad_(True)
        if done < at and not diverged:
            while done < at:
                last = t.d_step(0)
                done += 1
            d_loss = float(last.detach())  # one host sync per measurement, as the loop syncs once per window
            diverged = not math.isfinite(d_loss)
        t.D.requires_grad_(False)
        norms = [math.nan] * s.batches
        if not diverged:
            for b in range(s.batches):
                t.opt_g.zero_grad(set_to_none=True)
                t.g_objective(0).backward()
                norms[b] = grad_norm(g_params)
        mean = sum(norms) / len(norms)
        std = math.sqrt(sum((x - mean) ** 2 for x in norms) / (len(norms) - 1))
        rec["d_steps"].append(at)
        rec["g_grad_norm_mean"].append(mean)
        rec["g_grad_norm_std"].append(std)
        rec["d_loss"].append(d_loss)
    if diverged:  # D's loss was not finite at the first measurement from here on: the curve stops there
        rec["diverged_by"] = next(at for at, v in zip(rec["d_steps"], rec["d_loss"]) if not math.isfinite(v) and at > 0)
    return rec
