"""Minimax GAN (MM), the original saturating objective.

Goodfellow et al. 2014, "Generative Adversarial Nets", Eq. 1:
min_G max_D E_x[log D(x)] + E_z[log(1 - D(G(z)))], D(x) = sigmoid(l(x)). D's loss is the
non-saturating one (see nonsaturating.py, including one-sided label smoothing); G minimises

    L_G = E_z[log(1 - sigmoid(l(G(z))))] = -E_z[softplus(l(G(z)))]

i.e. the negative of D's fake term, as compare_gan v1 (GAN_MINMAX: g_loss = -d_loss_fake).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import flat
from .nonsaturating import BCELoss


class MiniMax(BCELoss):
    # Lucic et al. 2018 sample 0: same defaults as NS (compare_gan v1 GANHyperParams).
    published = {"lr": 5e-5, "beta1": 0.0, "n_disc": 1, "d_norm": "batch"}

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -F.softplus(flat(fake_out)).mean()
