"""DRAGAN: the non-saturating GAN plus a gradient penalty around the real data.

Kodali et al. 2017, "On Convergence and Stability of GANs" (arXiv:1705.07215), as implemented
in compare_gan v1 (DRAGAN.py), the code of Lucic et al. 2018. L_D and L_G are NS's (see
nonsaturating.py, label smoothing included); L_D gets the extra term

    lambda E[(||grad_xhat D(xhat)||_2 - 1)^2],
    x_p = x + 0.5 std(x) u,  u ~ U[0, 1) per element, std over the whole batch (population std),
    xhat = x + alpha (x_p - x),  alpha ~ U[0, 1] per sample.

The norm is over all non-batch dimensions. Two differences from compare_gan v1, both deliberate:
v1 differentiated sigmoid(D) (the probability) rather than the logit, and put sqrt(1e-4 + sum g^2)
in the norm; here the gradient is of the raw output D(xhat) and the norm is exact.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .base import LABEL_SMOOTHING, NON_NEGATIVE
from .nonsaturating import NonSaturating
from .wasserstein import unit_gradient_penalty


def perturb_real(x: Tensor) -> Tensor:
    """xhat = x + alpha * 0.5 std(x) u, u ~ U[0, 1) per element, alpha ~ U[0, 1] per sample."""
    x = x.detach()
    x_p = x + 0.5 * x.std(correction=0) * torch.rand_like(x)
    alpha = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
    return x + alpha * (x_p - x)


class DRAGAN(NonSaturating):
    params = {"gp_lambda": 10.0, "label_smoothing": 0.0, "fake_label_smoothing": 0.0}
    ranges = {"gp_lambda": NON_NEGATIVE, "label_smoothing": LABEL_SMOOTHING, "fake_label_smoothing": LABEL_SMOOTHING}
    # Lucic et al. 2018 sample 0 (compare_gan v1 DRAGANHyperParams): lr 1e-4, beta1 0.5, n_disc 1, BN.
    published = {"lr": 1e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "batch"}

    def penalty(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | float:
        lam = self.hp["gp_lambda"]
        if lam == 0.0:
            return 0.0
        return lam * unit_gradient_penalty(D, perturb_real(real))
