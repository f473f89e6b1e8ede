"""Relativistic standard GAN (rsgan) and relativistic average standard GAN (ragan).

Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing from standard
GAN" (arXiv:1807.00734). With the raw critic C (D(x) = sigmoid(C(x)) in the standard GAN), D
estimates how much more realistic real data is than fake data, and G gets a gradient through the
real data's term too (so the training loop passes D(real) to g_loss: ``g_uses_real = True``).

rsgan (RSGAN in the paper), real and fake paired sample by sample:

    L_D = E[softplus(-(C(x_r) - C(x_f)))]
    L_G = E[softplus(-(C(x_f) - C(x_r)))]

ragan (RaSGAN in the paper), each side compared with the batch mean of the other:

    L_D = E[softplus(-(C(x_r) - mean C(x_f)))] + E[softplus(C(x_f) - mean C(x_r))]
    L_G = E[softplus(-(C(x_f) - mean C(x_r)))] + E[softplus(C(x_r) - mean C(x_f))]

(softplus(-t) = -log sigmoid(t), softplus(t) = -log(1 - sigmoid(t)).) The paper's code halves the
ragan losses (a rescaling only); we keep the paper's equations.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import Loss, flat


class RelativisticLoss(Loss):
    g_uses_real = True
    # Not in Lucic et al. 2018. The relativistic paper's CIFAR-10 "DCGAN setup" (its code,
    # AlexiaJM/RelativisticGAN code/stable.sh): Adam lr 2e-4, beta1 0.5, beta2 0.999, one D step
    # per G step, spectral norm in D.
    published = {"lr": 2e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "spectral"}

    def _real(self, real_out: Tensor | None) -> Tensor:
        if real_out is None:
            raise ValueError(f"loss '{self.name}': g_loss needs real_out (g_uses_real is True)")
        return flat(real_out)


class RSGAN(RelativisticLoss):
    @staticmethod
    def _paired(a: Tensor, b: Tensor) -> Tensor:
        """E[softplus(-(a_i - b_i))], a and b of the same batch size."""
        if a.shape != b.shape:
            raise ValueError(f"rsgan pairs real and fake samples: got batches of {a.shape[0]} and {b.shape[0]}")
        return F.softplus(-(a - b)).mean()

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return self._paired(flat(real_out), flat(fake_out))

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return self._paired(flat(fake_out), self._real(real_out))


class RaGAN(RelativisticLoss):
    @staticmethod
    def _average(a: Tensor, b: Tensor) -> Tensor:
        """-E log sigmoid(a - mean b) - E log(1 - sigmoid(b - mean a)): 'a is the real side'."""
        return F.softplus(-(a - b.mean())).mean() + F.softplus(b - a.mean()).mean()

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return self._average(flat(real_out), flat(fake_out))

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return self._average(flat(fake_out), self._real(real_out))
