"""A loss of your own, as a plugin: the KL f-GAN of Nowozin et al. 2016 ("f-GAN", Table 6).

    bench run --plugin examples/fgan_kl.py --dataset ring8 --losses ns,fgan-kl --budget 4 --seeds 5

D's output v is the variational function (activation g_f(v) = v), f*(t) = exp(t - 1) the conjugate of
f(u) = u log u. D maximizes E_x[v(x)] - E_z[exp(v(G(z)) - 1)]; G uses the paper's alternative
objective (Sec. 3.2): maximize E_z[v(G(z))].
"""
import torch

import losses
from losses.base import flat


@losses.register("fgan-kl")
class FGanKL(losses.Loss):
    published = {"lr": 2e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "none"}  # DCGAN's Adam settings

    def d_loss(self, real_out, fake_out):
        return -flat(real_out).mean() + torch.exp(flat(fake_out) - 1).mean()

    def g_loss(self, fake_out, real_out=None):
        return -flat(fake_out).mean()
