"""R3GAN's objective (Huang, Gokaslan, Kuleshov & Tompkin, "The GAN is dead; long live the GAN! A
Modern GAN Baseline", NeurIPS 2024): the relativistic pairing loss (RpGAN, = ``rsgan``) with both
zero-centred gradient penalties, R1 on real and R2 on generated samples:

    L_D = E[softplus(-(C(x_r) - C(x_f)))] + gamma_t / 2 (E||grad C(x_r)||^2 + E||grad C(x_f)||^2)
    L_G = E[softplus(-(C(x_f) - C(x_r)))]

with gamma decayed by a cosine from gamma to gamma_final * gamma over training (p = step / steps):

    gamma_t = gamma + (1 - (1 + cos(pi p)) / 2) (gamma_final * gamma - gamma)

R3GAN's presets decay gamma to a tenth (e.g. CIFAR-10: 0.05 -> 0.005, its train.py
``gamma_scheduler`` with the cosine of its training loop's ``cosine_decay_with_warmup``), over a
fixed number of images; here over the run (p = step / the run's length; a run extended with more
--steps on resume computes p against the new length, so gamma steps back up there and decays over
the longer run). The paper's point: RpGAN + R1 + R2 converges where
RpGAN + R1 alone (R2 off) fails to cover the modes. ``r3gan`` is that whole objective as one named
loss, so a study compares it with ns like any other; the architecture stays the study's (the
paper's modernised ResNet is not part of this preset).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .base import NON_NEGATIVE, UNIT
from .regularizers import r1_penalty, r2_penalty
from .relativistic import RSGAN


def cosine_decay(start: float, end: float, progress: float | Tensor) -> float | Tensor:
    """start at progress 0, end at progress >= 1, a half cosine in between (a tensor for a tensor)."""
    if isinstance(progress, Tensor):
        p = progress.clamp(0.0, 1.0)
        return start + (1 - (1 + torch.cos(math.pi * p)) / 2) * (end - start)
    p = min(max(float(progress), 0.0), 1.0)
    return start + (1 - (1 + math.cos(math.pi * p)) / 2) * (end - start)


class R3GAN(RSGAN):
    params = {"gamma": 0.05, "gamma_final": 0.1}  # R3GAN's CIFAR-10 preset: gamma 0.05 -> 0.005
    ranges = {"gamma": NON_NEGATIVE, "gamma_final": UNIT}
    uses_progress = True
    # R3GAN's CIFAR-10 preset: Adam lr 2e-4 (decayed to 5e-5 in the paper), beta1 0, one D step per
    # G step, no normalisation in D (its networks use none).
    published = {"lr": 2e-4, "beta1": 0.0, "n_disc": 1, "d_norm": "none"}

    def gamma_at(self, progress: float | Tensor) -> float | Tensor:
        g = self.hp["gamma"]
        return cosine_decay(g, self.hp["gamma_final"] * g, progress)

    def penalty(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                progress: float | Tensor = 0.0) -> Tensor | float:
        if self.hp["gamma"] == 0.0:
            return 0.0
        gamma = self.gamma_at(progress)
        return r1_penalty(D, real, 1.0) * gamma + r2_penalty(D, fake, 1.0) * gamma
