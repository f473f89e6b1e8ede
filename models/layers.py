"""Pieces shared by the architectures: D's norm layers, weight inits, the two D heads.

D normalization follows Kurach et al. 2019 ("A Large-Scale Study on Regularization and
Normalization in GANs"): batch norm (Ioffe & Szegedy 2015), layer norm (Ba et al. 2016) and
spectral norm (Miyato et al. 2018). Layer norm on conv features is GroupNorm with one group,
which normalizes each sample over (C, H, W) like LayerNorm does. Spectral norm is not a layer:
``models.build`` wraps every conv and linear of D with it, so here it maps to no layer at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from bench.errors import UsageError

# (norm, "conv" | "fc") -> layer for `features` channels. "spectral" adds no layer here.
_NORM_LAYERS: dict[tuple[str, str], Callable[[int], nn.Module]] = {
    ("none", "conv"): lambda c: nn.Identity(),
    ("none", "fc"): lambda c: nn.Identity(),
    ("spectral", "conv"): lambda c: nn.Identity(),
    ("spectral", "fc"): lambda c: nn.Identity(),
    ("batch", "conv"): nn.BatchNorm2d,
    ("batch", "fc"): nn.BatchNorm1d,
    ("layer", "conv"): lambda c: nn.GroupNorm(1, c),
    ("layer", "fc"): nn.LayerNorm,
}

_WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def norm2d(kind: str, channels: int) -> nn.Module:
    """Norm layer for conv features [N, C, H, W]: BatchNorm2d, GroupNorm(1, C) or Identity."""
    return _NORM_LAYERS[kind, "conv"](channels)


def norm1d(kind: str, features: int) -> nn.Module:
    """Norm layer for FC features [N, F]: BatchNorm1d, LayerNorm or Identity."""
    return _NORM_LAYERS[kind, "fc"](features)


def incompatible(arch: str, needs: str, spec) -> UsageError:
    """The one-line error for a data spec an architecture cannot model."""
    return UsageError(f"{arch} needs {needs}, got {spec.kind} of shape {spec.shape}")


def init_normal_(module: nn.Module, std: float = 0.02, bn_weight_std: float = 0.0) -> nn.Module:
    """DCGAN / compare_gan init: conv and linear weights N(0, std), biases 0;
    BN weights N(1, bn_weight_std) (exactly 1 when 0), BN biases 0. Returns `module`."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, bn_weight_std)  # std 0 gives exactly 1
            nn.init.zeros_(m.bias)
    return module


def xavier(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """SNGAN init (Miyato 2018 code: GlorotUniform): xavier_uniform weight, zero bias.
    Residual convs use gain sqrt(2), shortcuts and linears gain 1."""
    nn.init.xavier_uniform_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


RELU_GAIN = math.sqrt(2.0)


def spectral_norm_all_(module: nn.Module) -> nn.Module:
    """Put torch's spectral_norm parametrization on every Linear, Conv2d and ConvTranspose2d
    (Miyato et al. 2018: W / sigma(W), sigma by one power iteration per training forward)."""
    for m in list(module.modules()):
        if isinstance(m, _WEIGHTED):
            spectral_norm(m)
    return module


class LogitD(nn.Module):
    """Classifier / critic head: `net` maps x to [N, 1]; forward returns the scores as [N]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class AutoencoderD(nn.Module):
    """BEGAN discriminator (Berthelot et al. 2017): an autoencoder whose score is its L1
    reconstruction error. encoder: x -> code [N, code_dim]; decoder: code -> x's shape.
    forward returns mean |x - decoder(encoder(x))| over all non-batch dims, shape [N]."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.reconstruct(x)).abs().flatten(1).mean(1)
