"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017, "Unrolled Generative Adversarial
Networks"): G's update looks k steps ahead of D. With U one step of D's optimizer on its loss,

    theta_D^0 = theta_D,    theta_D^{i+1} = U(theta_G, theta_D^i),    L_G^K(theta_G) = L_G(theta_G, theta_D^K)

and G descends the gradient of L_G^K, which flows through the k updates (Eq. 4-6: the term that lets
G anticipate how D will react, the paper's remedy for mode collapse). D's own update is unchanged:
it takes one ordinary step from theta_D (the unrolled copies are discarded).

U is D's optimizer itself, Adam, from its current moments and step count (the paper unrolls the D
optimizer), written out so that autograd sees it:

    m' = b1 m + (1 - b1) g,   v' = b2 v + (1 - b2) g^2,   t' = t + 1
    theta' = theta - lr / (1 - b1^t') * m' / (sqrt(v') / sqrt(1 - b2^t') + eps)

(torch.optim.Adam's update, checked against it; sqrt(v' + 1e-30) keeps the second derivative finite
where a gradient is 0). Each unrolled step draws a fresh real batch and fresh z, as a D step does.
The unrolled steps use the loss's D objective alone: losses whose D update has more (a penalty, WGAN's
clipping, BEGAN's k_t) and R1/R2 are refused rather than unrolled differently from the real step.
D runs functionally on the unrolled parameters (``torch.func.functional_call``) with copies of its
buffers, so the unrolled steps leave the real D's BatchNorm statistics and spectral-norm vectors
alone; the training loop advances those with the forward a plain G step makes (bench.train), so
D's state after a step is exactly the plain run's.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call


def adam_step(params: dict[str, Tensor], grads: dict[str, Tensor], opt: torch.optim.Adam, real: dict[str, nn.Parameter],
              moments: dict[str, tuple[Tensor, Tensor, float]] | None) -> tuple[dict[str, Tensor], dict]:
    """One differentiable Adam step of ``params`` (names -> tensors) with ``grads``. ``moments``:
    the unrolled (m, v, t) per name, or None to start from ``opt``'s state for the ``real`` parameters."""
    group = opt.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    new, new_moments = {}, {}
    for name, p in params.items():
        g = grads[name]
        if moments is None:
            st = opt.state.get(real[name], {})
            m = st.get("exp_avg", torch.zeros_like(p))
            v = st.get("exp_avg_sq", torch.zeros_like(p))
            t = float(st["step"]) if "step" in st else 0.0
        else:
            m, v, t = moments[name]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        t = t + 1
        denom = (v + 1e-30).sqrt() / (1 - b2 ** t) ** 0.5 + eps
        new[name] = p - (lr / (1 - b1 ** t)) * m / denom
        new_moments[name] = (m, v, t)
    return new, new_moments


def unrolled_d(D: nn.Module, opt: torch.optim.Adam, steps: int,
               d_loss: Callable[[Callable[[Tensor], Tensor]], Tensor]) -> Callable[[Tensor], Tensor]:
    """D after ``steps`` differentiable optimizer steps on ``d_loss(D_fn)`` (a function of a D
    callable, drawing its own batches, G's samples not detached); returns that D as a callable."""
    real = dict(D.named_parameters())
    params = {n: p.detach().requires_grad_(True) for n, p in real.items()}
    buffers = {n: b.clone() for n, b in D.named_buffers()}
    moments = None
    for _ in range(steps):
        fn = lambda x, p=params: functional_call(D, (p, buffers), (x,))  # noqa: E731
        loss = d_loss(fn)
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()), create_graph=True)))
        params, moments = adam_step(params, grads, opt, real, moments)
    return lambda x: functional_call(D, (params, buffers), (x,))
