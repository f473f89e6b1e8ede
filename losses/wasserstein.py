"""Wasserstein GAN with weight clipping (wgan) and with a gradient penalty (wgan-gp).

Arjovsky et al. 2017, "Wasserstein GAN", Algorithm 1: the critic D estimates
W(P_r, P_g) = max_{||D||_L <= 1} E_x[D(x)] - E_z[D(G(z))]. On raw critic outputs:

    L_D = E_z[D(G(z))] - E_x[D(x)]
    L_G = -E_z[D(G(z))]

wgan keeps D (roughly) Lipschitz by clipping every D parameter to [-c, c] after each D step
(compare_gan v1 clips all D variables, batch-norm scale and offset included).

Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Eq. 3: instead of clipping,
add to L_D the penalty

    lambda E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2],   xhat = eps x + (1 - eps) G(z),
    eps ~ U[0, 1] drawn once per sample and broadcast over that sample's features.

The norm is over all non-batch dimensions. compare_gan v1 put sqrt(1e-4 + sum g^2) in the norm;
we use the exact norm (PyTorch's norm backward is 0, not NaN, at a zero gradient).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .base import NON_NEGATIVE, POSITIVE, Loss, flat, input_gradient, per_sample_norm


class WassersteinLoss(Loss):
    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return flat(fake_out).mean() - flat(real_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -flat(fake_out).mean()


class WGAN(WassersteinLoss):
    params = {"clip": 0.01}
    ranges = {"clip": POSITIVE}
    # Lucic et al. 2018 sample 0 (compare_gan v1 WGANHyperParams): lr 5e-5, beta1 0.5, n_disc 5, BN.
    published = {"lr": 5e-5, "beta1": 0.5, "n_disc": 5, "d_norm": "batch"}

    @torch.no_grad()
    def after_d_step(self, D: torch.nn.Module, real_out: Tensor, fake_out: Tensor) -> None:
        c = self.hp["clip"]
        for p in D.parameters():
            p.clamp_(-c, c)


def interpolate(real: Tensor, fake: Tensor) -> Tensor:
    """eps x + (1 - eps) x_fake with one eps ~ U[0, 1] per sample."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return eps * real.detach() + (1.0 - eps) * fake.detach()


def unit_gradient_penalty(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """E[(||grad_x D(x)||_2 - 1)^2] over the batch, differentiable w.r.t. D's parameters."""
    return (per_sample_norm(input_gradient(D, x)) - 1.0).pow(2).mean()


class WGANGP(WassersteinLoss):
    params = {"gp_lambda": 10.0}
    ranges = {"gp_lambda": NON_NEGATIVE}
    # Lucic et al. 2018 sample 0 (compare_gan v1 WGANGPHyperParams): lr 1e-4, beta1 0.5, n_disc 5,
    # no batch norm in D (the paper forbids it: the penalty is per sample).
    published = {"lr": 1e-4, "beta1": 0.5, "n_disc": 5, "d_norm": "none"}

    def penalty(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | float:
        lam = self.hp["gp_lambda"]
        if lam == 0.0:
            return 0.0
        if real.shape != fake.shape:
            raise ValueError(f"wgan-gp: real {list(real.shape)} and fake {list(fake.shape)} differ in shape")
        return lam * unit_gradient_penalty(D, interpolate(real, fake))
