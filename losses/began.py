"""Boundary Equilibrium GAN (BEGAN).

Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks", Sec. 3.4.
D is an autoencoder (``d_head = "autoencoder"``): its output for a sample v is the reconstruction
error L(v) = |v - AE(v)| (compare_gan v1: the mean absolute error per image). With batch means,

    L_D = L(x) - k_t L(G(z))
    L_G = L(G(z))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),   k_0 = 0

gamma = E[L(G(z))] / E[L(x)] is the diversity ratio D is steered towards. The convergence
measure M = L(x) + |gamma L(x) - L(G(z))| is logged. k_t is updated after each D step from that
step's outputs. compare_gan v1 did not clip k_t; the paper does (k_t in [0, 1]).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import NON_NEGATIVE, UNIT, Loss, flat


class BEGAN(Loss):
    d_head = "autoencoder"
    params = {"lambda_k": 1e-3, "gamma": 0.75}
    ranges = {"lambda_k": NON_NEGATIVE, "gamma": UNIT}
    # Lucic et al. 2018 sample 0 (compare_gan v1 BEGANHyperParams): lr 1e-4, beta1 0.5, n_disc 5,
    # no batch norm in D.
    published = {"lr": 1e-4, "beta1": 0.5, "n_disc": 5, "d_norm": "none"}

    def __init__(self, **params: float) -> None:
        super().__init__(**params)
        # k_t and M live in 0-d float64 tensors on D's device, updated in place: the update needs no
        # host sync per D step and can be captured in a CUDA graph (bench.train, cuda_graphs). float64
        # keeps the arithmetic of the Python floats this used to be.
        self._k = torch.zeros((), dtype=torch.float64)
        self._m: Tensor | None = None  # M of the last D step

    @property
    def k_t(self) -> float:
        return float(self._k)

    def _k_on(self, device: torch.device) -> Tensor:
        if self._k.device != device:  # once, at the first step: moved, then only updated in place
            self._k = self._k.to(device)
        return self._k

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        fake = flat(fake_out).mean()
        return flat(real_out).mean() - self._k_on(fake.device).to(fake.dtype) * fake  # k_t cast as a Python float would be

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return flat(fake_out).mean()

    @torch.no_grad()
    def after_d_step(self, D: torch.nn.Module, real_out: Tensor, fake_out: Tensor) -> None:
        k = self._k_on(real_out.device)
        l_real = flat(real_out).mean().double()
        l_fake = flat(fake_out).mean().double()
        balance = self.hp["gamma"] * l_real - l_fake
        self._m = l_real + balance.abs()
        # A NaN step leaves k_t a valid number (the loss shows the NaN).
        k.copy_(torch.where(balance.isfinite(), (k + self.hp["lambda_k"] * balance).clamp(0.0, 1.0), k))

    def state_dict(self) -> dict[str, float]:
        return {"k_t": self.k_t}

    def load_state_dict(self, state: dict[str, float]) -> None:
        if set(state) != {"k_t"}:
            raise ValueError(f"began: expected state with key 'k_t', got keys {sorted(state)}")
        k = float(state["k_t"])
        if not 0.0 <= k <= 1.0:
            raise ValueError(f"began: k_t must be in [0, 1], got {k!r}")
        self._k.fill_(k)

    def log_values(self) -> dict[str, float]:
        values = {"k_t": self.k_t}
        if self._m is not None:
            values["M"] = float(self._m)
        return values
