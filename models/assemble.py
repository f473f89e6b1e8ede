"""``build(arch, spec, z_dim, d_norm, d_head) -> (G, D)``: an architecture's modules behind D's head."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from bench.errors import UsageError
from models import CODE_DIM, HEADS, NORMS, DataSpec, builder, names
from models.layers import AutoencoderD, LogitD, spectral_norm_all_
from models import G_NORMS
from models.conditional import make_conditional
from models.minibatch import KINDS, add_minibatch_layer_
from models.reference_norm import ReferenceNormG

_HEADS: dict[str, Callable[[Any, str], nn.Module]] = {
    "logit": lambda arch, norm: LogitD(arch.discriminator(norm)),
    "autoencoder": lambda arch, norm: AutoencoderD(
        arch.encoder(norm, CODE_DIM), arch.decoder(norm, CODE_DIM)
    ),
}


def _check_choice(what: str, value: str, known: tuple[str, ...] | list[str]) -> None:
    if value not in known:
        raise UsageError(f"unknown {what} {value!r}; known: {', '.join(known)}")


def build(
    arch: str, spec: DataSpec, z_dim: int, d_norm: str = "none", d_head: str = "logit", d_minibatch: str = "none",
    g_norm: str = "batch", n_classes: int = 0,
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for `spec`. Raises ValueError for an unknown arch / norm / head, a
    non-positive z_dim, or data the arch cannot model. Freshly initialized, in train mode.
    ``d_minibatch``: a layer that lets D compare a sample with its batch (``models.minibatch``);
    ``g_norm``: G's batch norms as they are, or reference/virtual BN (``models.reference_norm``; the
    caller fills G's ``z_ref``); ``n_classes`` > 0: a class-conditional pair, conditional batch norm in
    G and a projection D (``models.conditional``)."""
    _check_choice("arch", arch, names())
    _check_choice("d_norm", d_norm, NORMS)
    _check_choice("d_head", d_head, HEADS)
    _check_choice("d_minibatch", d_minibatch, KINDS)
    _check_choice("g_norm", g_norm, G_NORMS)
    if d_minibatch != "none" and d_head != "logit":
        raise UsageError(f"d_minibatch {d_minibatch} needs a logit discriminator; this loss's D is an {d_head} "
                         "(began), which scores each sample by its own reconstruction")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise UsageError(f"z_dim must be a positive integer, got {z_dim!r}")
    built = builder(arch)(spec)
    g = built.generator(z_dim)
    if g_norm != "batch":
        try:
            g = ReferenceNormG(g, z_dim, virtual=g_norm == "virtual")
        except ValueError as e:
            raise UsageError(f"g_norm {g_norm}: arch '{arch}': {e}") from None
    d = _HEADS[d_head](built, d_norm)
    if d_minibatch != "none":
        try:
            add_minibatch_layer_(d.net, d_minibatch)
        except ValueError as e:
            raise UsageError(f"arch '{arch}': {e}") from None
    if n_classes:
        if d_head != "logit":
            raise UsageError(f"a conditional GAN needs a logit discriminator for its projection; this loss's D is an "
                             f"{d_head} (began)")
        if g_norm != "batch":
            raise UsageError(f"a conditional G conditions its batch norms; g_norm {g_norm} replaces them: use one or the other")
        try:
            g, d = make_conditional(g, d, n_classes, spectral=d_norm == "spectral")
        except ValueError as e:
            raise UsageError(f"conditional: arch '{arch}': {e}") from None
    if d_norm == "spectral":
        spectral_norm_all_(d)
    return g, d
