"""Losses by name: ``@register("ns")`` on a ``Loss`` subclass, ``get("ns", label_smoothing=0.1)``."""

from __future__ import annotations

from typing import Callable, TypeVar

from bench.errors import UsageError

from .base import Loss

_REGISTRY: dict[str, type[Loss]] = {}

PUBLISHED_KEYS = {"lr", "beta1", "n_disc", "d_norm"}
D_NORMS = {"none", "batch", "layer", "spectral"}
D_HEADS = {"logit", "autoencoder"}

L = TypeVar("L", bound=type[Loss])


def register(name: str) -> Callable[[L], L]:
    """Class decorator: make a ``Loss`` subclass available as ``get(name)``."""

    def add(cls: L) -> L:
        if name in _REGISTRY:
            raise ValueError(f"loss '{name}' is registered twice")
        if not (isinstance(cls, type) and issubclass(cls, Loss)):
            raise TypeError(f"@register('{name}') needs a Loss subclass, got {cls!r}")
        if set(cls.published) != PUBLISHED_KEYS or cls.published["d_norm"] not in D_NORMS:
            raise ValueError(f"loss '{name}': published must have keys {sorted(PUBLISHED_KEYS)}, "
                             f"d_norm one of {sorted(D_NORMS)}")
        if set(cls.ranges) != set(cls.params):
            raise ValueError(f"loss '{name}': every parameter needs a range")
        if cls.d_head not in D_HEADS:
            raise ValueError(f"loss '{name}': d_head must be one of {sorted(D_HEADS)}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def loss_class(name: str) -> type[Loss]:
    """The class registered as ``name`` (to read ``params``, ``published``, ``d_head``...)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown loss '{name}'; known: {', '.join(names())}") from None


def get(name: str, **params: float) -> Loss:
    """A new instance of the loss ``name`` with its hyperparameters (defaults for the rest)."""
    return loss_class(name)(**params)


def names() -> list[str]:
    """All registered loss names, sorted."""
    return sorted(_REGISTRY)
