"""Hinge loss GAN.

Lim & Ye 2017, "Geometric GAN"; Tran et al. 2017; used with spectral normalisation by
Miyato et al. 2018, "Spectral Normalization for GANs". On raw critic outputs:

    L_D = E_x[relu(1 - D(x))] + E_z[relu(1 + D(G(z)))]
    L_G = -E_z[D(G(z))]
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import Loss, flat


class Hinge(Loss):
    # Not in Lucic et al. 2018. Miyato et al. 2018 (Table 1, setting C; the standard-CNN setting
    # also used for HingeGAN by the relativistic paper's code, AlexiaJM/RelativisticGAN stable.sh):
    # Adam lr 2e-4, beta1 0.5, beta2 0.999, n_dis 1, spectral norm in D.
    published = {"lr": 2e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "spectral"}

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1.0 - flat(real_out)).mean() + F.relu(1.0 + flat(fake_out)).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -flat(fake_out).mean()
