"""Non-saturating GAN (NS), the baseline of Lucic et al. 2018.

Goodfellow et al. 2014, "Generative Adversarial Nets", Sec. 3: instead of minimising
log(1 - D(G(z))), G maximises log D(G(z)), which gives strong gradients early in training.
With D(x) = sigmoid(l(x)) for the logit l and softplus(t) = log(1 + e^t):

    L_D = E_x[softplus(-l(x))] + E_z[softplus(l(G(z)))]     (= -E log D(x) - E log(1 - D(G(z))))
    L_G = E_z[softplus(-l(G(z)))]                           (= -E log D(G(z)))

One-sided label smoothing (Salimans et al. 2016, "Improved Techniques for Training GANs",
Sec. 3.4) replaces the real target 1 by 1 - s; fake targets stay 0:

    L_D = E_x[(1 - s) softplus(-l(x)) + s softplus(l(x))] + E_z[softplus(l(G(z)))]

Two-sided label smoothing also moves the fake target from 0 to f (``fake_label_smoothing``; the
form Salimans et al. advise against, since it rewards D for fake samples where p_data is zero, and
which a benchmark should therefore be able to compare):

    L_D = E_x[(1 - s) softplus(-l(x)) + s softplus(l(x))] + E_z[(1 - f) softplus(l(G(z))) + f softplus(-l(G(z)))]

Every term is a binary cross-entropy on logits (numerically stable for any logit).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LABEL_SMOOTHING, Loss, flat


def bce(logits: Tensor, target: float) -> Tensor:
    """E[-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l))] for a constant target t."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class BCELoss(Loss):
    """Shared discriminator loss of the sigmoid cross-entropy family (mm, ns, dragan)."""

    params = {"label_smoothing": 0.0, "fake_label_smoothing": 0.0}
    ranges = {"label_smoothing": LABEL_SMOOTHING, "fake_label_smoothing": LABEL_SMOOTHING}

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_target = 1.0 - self.hp["label_smoothing"]
        return bce(flat(real_out), real_target) + bce(flat(fake_out), self.hp["fake_label_smoothing"])


class NonSaturating(BCELoss):
    # Lucic et al. 2018 sample 0 (compare_gan v1 params.py, GANHyperParams): Adam lr 5e-5,
    # beta1 0.0, one D step per G step, batch norm in D.
    published = {"lr": 5e-5, "beta1": 0.0, "n_disc": 1, "d_norm": "batch"}

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return bce(flat(fake_out), 1.0)
