"""GAN losses chosen by name, in the style of compare_gan.

    import losses
    loss = losses.get("wgan-gp", gp_lambda=10.0)
    d = loss.d_loss(D(x), D(G(z).detach())) + loss.penalty(D, x, G(z).detach())
    g = loss.g_loss(D(G(z)), D(x) if loss.g_uses_real else None)

``losses.names()`` lists them; ``losses.loss_class(name).published`` gives the paper's training
defaults. Regularizers any loss can switch on (R1, instance noise) are in ``losses.regularizers``.
A loss of your own: ``@losses.register("name")`` on a ``losses.Loss`` subclass, in a plugin file
(``bench --plugin FILE``; README, "Benchmark your own loss").
"""

from __future__ import annotations

import importlib
from typing import Any

from .registry import check, get, loss_class, names, origin, register

# The package's losses: name -> where the class lives. Importing this module imports none of them
# (nor torch); each is imported and checked on first use.
for _name, _where in {
    "mm": "losses.minimax:MiniMax",                  # Goodfellow et al. 2014, minimax
    "ns": "losses.nonsaturating:NonSaturating",      # Goodfellow et al. 2014, non-saturating
    "ls": "losses.least_squares:LeastSquares",       # Mao et al. 2017
    "wgan": "losses.wasserstein:WGAN",               # Arjovsky et al. 2017, weight clipping
    "wgan-gp": "losses.wasserstein:WGANGP",          # Gulrajani et al. 2017
    "dragan": "losses.dragan:DRAGAN",                # Kodali et al. 2017
    "hinge": "losses.hinge:Hinge",                   # Lim & Ye 2017; Miyato et al. 2018
    "rsgan": "losses.relativistic:RSGAN",            # Jolicoeur-Martineau 2019
    "ragan": "losses.relativistic:RaGAN",            # Jolicoeur-Martineau 2019
    "began": "losses.began:BEGAN",                   # Berthelot et al. 2017
    "r3gan": "losses.r3gan:R3GAN",                   # Huang et al. 2024: RpGAN + R1 + R2, gamma schedule
}.items():
    register(_name, _where)

_LAZY = {"Loss": "losses.base", "Range": "losses.base", "Regularizers": "losses.regularizers"}

__all__ = ["Loss", "Range", "Regularizers", "check", "get", "loss_class", "names", "origin", "register"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'losses' has no attribute {name!r}")
