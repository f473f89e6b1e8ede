"""Generator / discriminator pairs for the GAN loss comparison of Lucic et al. 2018.

    G, D = build("infogan", DataSpec("images", (1, 28, 28)), z_dim=64, d_norm="batch")

G(z) maps z [N, z_dim] to samples in the data range: points [N, d] (linear output) or images
[N, C, H, W] in [-1, 1] (tanh). D(x) returns one score per sample, shape [N]: a logit
(d_head="logit") or, for BEGAN (d_head="autoencoder"), the mean absolute reconstruction error
of an autoencoder with a CODE_DIM-dimensional code.

An architecture is a class (or function) that implements ``Architecture``: called with a DataSpec it
raises UsageError if it cannot model that data, else returns an object with the four builders.
``norm`` is one of NORMS, with "spectral" meaning "no norm layer": build() then puts spectral norm on
every conv and linear of D. It is registered once by name: ``@models.register("name")`` (a plugin's
way), or ``register("name", "module:Class")`` (the package's own, below: listing names imports no
torch; the class is imported on first use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from bench.errors import UsageError
from bench.lazy import entry

if TYPE_CHECKING:
    from torch import nn

NORMS = ("none", "batch", "layer", "spectral")
HEADS = ("logit", "autoencoder")
MINIBATCH = ("none", "stddev", "discrimination")  # D options comparing a sample with its batch (models.minibatch)
G_NORMS = ("batch", "reference", "virtual")  # G's batch norm, or its reference-batch forms (models.reference_norm)
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


class Architecture(Protocol):
    """What ``register`` expects ``builder(spec)`` to return."""

    def generator(self, z_dim: int) -> nn.Module: ...              # z [N, z_dim] -> samples
    def discriminator(self, norm: str) -> nn.Module: ...           # x -> [N, 1]
    def encoder(self, norm: str, code_dim: int) -> nn.Module: ...  # x -> [N, code_dim] (BEGAN's D)
    def decoder(self, norm: str, code_dim: int) -> nn.Module: ...  # code -> x's shape (BEGAN's D)


_ARCHS: dict[str, Any] = {}   # name -> builder, or "module:Class" not imported yet
_ORIGIN: dict[str, str] = {}
_METHODS = ("generator", "discriminator", "encoder", "decoder")


def register(name: str, where: str | None = None) -> Callable | None:
    """``@register(name)`` on a builder ``(DataSpec) -> Architecture``, or ``register(name, "module:Class")``.
    Raises ValueError for a bad or duplicate name, TypeError for a builder without the four methods."""
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in ",/ "):
        raise ValueError(f"an arch name must be a non-empty string without spaces, ',' or '/', got {name!r}")

    def refuse_duplicate(origin: str) -> None:
        if name in _ARCHS:
            raise ValueError(f"arch '{name}' is registered twice (by {_ORIGIN[name]} and by {origin})")

    def add(target: Any, origin: str) -> None:
        refuse_duplicate(origin)
        _ARCHS[name], _ORIGIN[name] = target, origin

    if where is not None:
        if not (isinstance(where, str) and ":" in where):
            raise ValueError(f"arch '{name}': a lazy registration needs 'module:Class', got {where!r}")
        add(where, where.partition(":")[0])
        return None

    def deco(fn: Callable[[DataSpec], Any]) -> Callable[[DataSpec], Any]:
        refuse_duplicate(getattr(fn, "__module__", "?"))
        check(name, fn)
        add(fn, getattr(fn, "__module__", "?"))
        return fn

    return deco


def check(name: str, builder: Any) -> None:
    """A class builder must define the four methods of ``Architecture`` (a function is checked when called)."""
    if not callable(builder):
        raise TypeError(f"arch '{name}' must be a class or function taking a DataSpec, got {builder!r}")
    missing = [m for m in _METHODS if isinstance(builder, type) and not callable(getattr(builder, m, None))]
    if missing:
        raise TypeError(f"arch '{name}' must define {', '.join(missing)} (models.Architecture)")


def builder(name: str) -> Callable[[DataSpec], Architecture]:
    """The builder registered as ``name`` (imported on first use)."""
    return entry(_ARCHS, name, "arch", check)


def names() -> list[str]:
    """Registered architecture names, sorted (imports no architecture module)."""
    return sorted(_ARCHS)


for _name, _where in {
    "mlp": "models.mlp:MLP",              # 2-D points (mixtures of Gaussians)
    "infogan": "models.infogan:InfoGAN",  # Lucic et al.'s InfoGAN architecture
    "dcgan": "models.dcgan:DCGAN",        # Radford et al. 2016 as in Lucic et al.
    "resnet": "models.resnet:ResNet",     # Gulrajani et al. 2017 / Miyato et al. 2018 style
}.items():
    register(_name, _where)


def __getattr__(name: str) -> Any:
    if name == "build":  # needs torch: imported on first use
        from models.assemble import build

        return build
    raise AttributeError(f"module 'models' has no attribute {name!r}")
