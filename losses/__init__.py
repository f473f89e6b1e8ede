"""GAN losses chosen by name, in the style of compare_gan.

    import losses
    loss = losses.get("wgan-gp", gp_lambda=10.0)
    d = loss.d_loss(D(x), D(G(z).detach())) + loss.penalty(D, x, G(z).detach())
    g = loss.g_loss(D(G(z)), D(x) if loss.g_uses_real else None)

``losses.names()`` lists them; ``losses.loss_class(name).published`` gives the paper's training
defaults. Regularizers any loss can switch on (R1, instance noise) are in ``losses.regularizers``.
"""

from .base import Loss
from .registry import get, loss_class, names, register
from .regularizers import Regularizers

# Importing the modules registers their losses.
from . import began, dragan, hinge, least_squares, minimax, nonsaturating, relativistic, wasserstein  # noqa: E402,F401

__all__ = ["Loss", "Regularizers", "get", "loss_class", "names", "register"]
