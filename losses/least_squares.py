"""Least-squares GAN (LSGAN).

Mao et al. 2017, "Least Squares Generative Adversarial Networks", with a = 0 (fake label),
b = 1 (real label), c = 1 (the value G wants D to believe), on raw D outputs:

    L_D = 1/2 E_x[(D(x) - 1)^2] + 1/2 E_z[D(G(z))^2]
    L_G = 1/2 E_z[(D(G(z)) - 1)^2]

Note: compare_gan v1 (LSGAN.py) applied these squares to sigmoid(D) rather than to the raw
output; we follow the paper (a linear last layer, no sigmoid).
"""

from __future__ import annotations

from torch import Tensor

from .base import Loss, flat


class LeastSquares(Loss):
    # Lucic et al. 2018 sample 0 (compare_gan v1 LSGANHyperParams): lr 2e-4, beta1 0.5, n_disc 1, BN.
    published = {"lr": 2e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "batch"}

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return 0.5 * (flat(real_out) - 1.0).pow(2).mean() + 0.5 * flat(fake_out).pow(2).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return 0.5 * (flat(fake_out) - 1.0).pow(2).mean()
