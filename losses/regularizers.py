"""Regularizers any loss can switch on, each one hyperparameter (0 = off).

R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", Eq. 9):
a gradient penalty on real data only,

    R1 = gamma / 2 * E_x[||grad_x D(x)||_2^2]

added to D's loss (for BEGAN's autoencoder head it penalises the gradient of the reconstruction
error, which is still a smoothness penalty on D around the data).

R2 (Mescheder et al. 2018, Eq. 10): the same penalty on generated samples,

    R2 = gamma / 2 * E_z[||grad_x D(x)||_2^2 at x = G(z)]

R1 and R2 together are the zero-centred gradient penalties of R3GAN (Huang et al. 2024; the
``r3gan`` loss carries them with its gamma schedule).

Instance noise (Arjovsky & Bottou 2017, "Towards Principled Methods for Training GANs",
Sec. 3.1; annealed as in Sonderby et al. 2017): Gaussian noise of standard deviation sigma_t
added to every D input, real and fake alike, with sigma_t going linearly from sigma_0 at step 0 to
0 at ``anneal_steps`` (and 0 afterwards); ``anneal_steps = 0`` keeps sigma_0 for the whole run.

All randomness comes from torch's global RNG, so a training loop that saves and restores the RNG
state resumes bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable

import torch
from torch import Tensor

from bench.errors import UsageError

from .base import input_gradient


def r1_penalty(D: Callable[[Tensor], Tensor], real: Tensor, gamma: float) -> Tensor:
    """gamma/2 E[||grad_x D(x)||^2] on real data, differentiable w.r.t. D's parameters."""
    grad = input_gradient(D, real)
    return 0.5 * gamma * grad.flatten(1).pow(2).sum(dim=1).mean()


def r2_penalty(D: Callable[[Tensor], Tensor], fake: Tensor, gamma: float) -> Tensor:
    """gamma/2 E[||grad_x D(x)||^2] on generated samples (detached from G), differentiable w.r.t. D."""
    return r1_penalty(D, fake, gamma)


def annealed_noise_std(sigma0: float, step: int, anneal_steps: int) -> float:
    """sigma0 * (1 - step / anneal_steps), clipped at 0; sigma0 throughout if anneal_steps == 0."""
    if anneal_steps <= 0:
        return float(sigma0)
    return float(sigma0) * max(0.0, 1.0 - step / anneal_steps)


def add_instance_noise(x: Tensor, std: float | Tensor) -> Tensor:
    """x + std * N(0, 1) noise; ``x`` itself (and no RNG draw) when std is the float 0."""
    if isinstance(std, float) and std == 0:
        return x
    return x + std * torch.randn_like(x)


@dataclass
class Regularizers:
    """The regularizer settings of one run. The training loop calls ``perturb`` on every D input
    (real and fake, same step) and adds ``d_penalty`` to D's loss."""

    r1_gamma: float = 0.0
    r2_gamma: float = 0.0
    noise_std: float = 0.0
    noise_anneal_steps: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            integer = f.name == "noise_anneal_steps"
            kinds = (int,) if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                kind = "an integer" if integer else "a number"
                raise UsageError(f"regularizer {f.name} must be {kind} >= 0, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"regularizer {f.name} must be in [0, inf), got {value!r}")
            if not integer:
                setattr(self, f.name, float(value))

    def d_penalty(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | float:
        """R1 on the real batch plus R2 on the fake one; 0.0 when both are off."""
        total: Tensor | float = 0.0
        if self.r1_gamma != 0.0:
            total = total + r1_penalty(D, real, self.r1_gamma)
        if self.r2_gamma != 0.0:
            total = total + r2_penalty(D, fake, self.r2_gamma)
        return total

    def noise_std_at(self, step: int | Tensor) -> float | Tensor:
        """sigma_t. ``step`` may be a step counter on the device (a training step captured in a CUDA
        graph, bench.train): then an annealed sigma_t is computed on the device, as a tensor."""
        if isinstance(step, Tensor) and self.noise_std > 0 and self.noise_anneal_steps > 0:
            return self.noise_std * (1.0 - step / self.noise_anneal_steps).clamp(min=0.0)
        if isinstance(step, Tensor):
            return self.noise_std  # constant (or off): the step does not matter
        return annealed_noise_std(self.noise_std, step, self.noise_anneal_steps)

    def perturb(self, x: Tensor, step: int | Tensor) -> Tensor:
        """A D input with this step's instance noise added (``x`` unchanged when off)."""
        return add_instance_noise(x, self.noise_std_at(step))
