"""Generator / discriminator pairs for the GAN loss comparison of Lucic et al. 2018.

    G, D = build("infogan", DataSpec("images", (1, 28, 28)), z_dim=64, d_norm="batch")

G(z) maps z [N, z_dim] to samples in the data range: points [N, d] (linear output) or images
[N, C, H, W] in [-1, 1] (tanh). D(x) returns one score per sample, shape [N]: a logit
(d_head="logit") or, for BEGAN (d_head="autoencoder"), the mean absolute reconstruction error
of an autoencoder with a CODE_DIM-dimensional code.

An architecture is a class (or function) registered with @register(name). Called with a
DataSpec it raises ValueError if it cannot model that data, else returns an object with
    generator(z_dim) -> nn.Module
    discriminator(norm) -> nn.Module          # x -> [N, 1]
    encoder(norm, code_dim) -> nn.Module      # x -> [N, code_dim]
    decoder(norm, code_dim) -> nn.Module      # code -> x's shape
`norm` is one of NORMS, with "spectral" meaning "no norm layer": build() then puts spectral
norm on every conv and linear of D.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from bench.errors import UsageError
from models.layers import AutoencoderD, LogitD, spectral_norm_all_

NORMS = ("none", "batch", "layer", "spectral")
HEADS = ("logit", "autoencoder")
CODE_DIM = 64  # BEGAN autoencoder bottleneck, as in compare_gan v1


@dataclass(frozen=True)
class DataSpec:
    """What the models must produce: kind "points" with shape (d,), or "images" with (C, H, W)."""

    kind: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        ndim = {"points": 1, "images": 3}.get(self.kind)
        if ndim is None:
            raise UsageError(f"unknown data kind {self.kind!r}; known: points, images")
        if len(self.shape) != ndim or min(self.shape) <= 0:
            want = "(d,)" if ndim == 1 else "(C, H, W)"
            raise UsageError(f"{self.kind} need a positive shape {want}, got {self.shape}")


_ARCHS: dict[str, Callable[[DataSpec], Any]] = {}

_HEADS: dict[str, Callable[[Any, str], nn.Module]] = {
    "logit": lambda arch, norm: LogitD(arch.discriminator(norm)),
    "autoencoder": lambda arch, norm: AutoencoderD(
        arch.encoder(norm, CODE_DIM), arch.decoder(norm, CODE_DIM)
    ),
}


def register(name: str) -> Callable[[Callable[[DataSpec], Any]], Callable[[DataSpec], Any]]:
    """Class / function decorator: make an architecture buildable as `name`."""

    def deco(builder: Callable[[DataSpec], Any]) -> Callable[[DataSpec], Any]:
        if name in _ARCHS:
            raise ValueError(f"arch {name!r} registered twice")
        _ARCHS[name] = builder
        return builder

    return deco


def names() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_ARCHS)


def _check_choice(what: str, value: str, known: tuple[str, ...] | list[str]) -> None:
    if value not in known:
        raise UsageError(f"unknown {what} {value!r}; known: {', '.join(known)}")


def build(
    arch: str, spec: DataSpec, z_dim: int, d_norm: str = "none", d_head: str = "logit"
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for `spec`. Raises ValueError for an unknown arch / norm / head, a
    non-positive z_dim, or data the arch cannot model. Freshly initialized, in train mode."""
    _check_choice("arch", arch, names())
    _check_choice("d_norm", d_norm, NORMS)
    _check_choice("d_head", d_head, HEADS)
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise UsageError(f"z_dim must be a positive integer, got {z_dim!r}")
    built = _ARCHS[arch](spec)
    g = built.generator(z_dim)
    d = _HEADS[d_head](built, d_norm)
    if d_norm == "spectral":
        spectral_norm_all_(d)
    return g, d


# Importing the architecture modules registers them.
from models import dcgan, infogan, mlp, resnet  # noqa: E402,F401
