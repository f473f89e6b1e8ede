"""Losses by name: ``get("ns", label_smoothing=0.1)``, ``names()``, ``register``.

A loss is registered once, by name, either

- eagerly, as a decorator on a ``Loss`` subclass (how a plugin adds one)::

      @losses.register("my-loss")
      class MyLoss(losses.Loss): ...

- or lazily, with the ``"module:Class"`` where it lives (how the package lists its own, in
  ``losses/__init__.py``): listing and validating names then imports no torch, so ``bench --help``
  and a refused ``--loss typo`` are instant. The class is imported, checked and cached on first use.

Either way the class is checked against the contract the training loop relies on (``check``), and a
name registered twice is refused, naming both places.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

from bench.lazy import entry

if TYPE_CHECKING:
    from .base import Loss

PUBLISHED_KEYS = {"lr", "beta1", "n_disc", "d_norm"}
D_NORMS = {"none", "batch", "layer", "spectral"}
D_HEADS = {"logit", "autoencoder"}

_REGISTRY: dict[str, Any] = {}  # name -> Loss subclass, or "module:Class" not imported yet
_ORIGIN: dict[str, str] = {}    # name -> where it was registered (for the duplicate message)

L = TypeVar("L")


def register(name: str, where: str | None = None) -> Callable[[L], L] | None:
    """``@register(name)`` on a ``Loss`` subclass (checked now), or ``register(name, "module:Class")``
    (checked on first use). Raises ValueError for a bad or duplicate name, TypeError/ValueError for a
    class that breaks the contract."""
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in ",/ "):
        raise ValueError(f"a loss name must be a non-empty string without spaces, ',' or '/', got {name!r}")
    if where is not None:
        if not (isinstance(where, str) and ":" in where):
            raise ValueError(f"loss '{name}': a lazy registration needs 'module:Class', got {where!r}")
        _add(name, where, where.partition(":")[0])
        return None

    def add(cls: L) -> L:
        origin = getattr(cls, "__module__", "?")
        _refuse_duplicate(name, origin)
        check(name, cls)
        _add(name, cls, origin)
        cls.name = name  # type: ignore[attr-defined]
        return cls

    return add


def _refuse_duplicate(name: str, origin: str) -> None:
    if name in _REGISTRY:
        raise ValueError(f"loss '{name}' is registered twice (by {_ORIGIN[name]} and by {origin})")


def _add(name: str, target: Any, origin: str) -> None:
    _refuse_duplicate(name, origin)
    _REGISTRY[name] = target
    _ORIGIN[name] = origin


def check(name: str, cls: Any) -> None:
    """The contract of a registered loss (what ``bench.train`` relies on), else TypeError/ValueError."""
    from .base import Loss

    if not (isinstance(cls, type) and issubclass(cls, Loss)):
        raise TypeError(f"loss '{name}' must be a subclass of losses.Loss, got {cls!r}")
    if set(cls.published) != PUBLISHED_KEYS or cls.published["d_norm"] not in D_NORMS:
        raise ValueError(f"loss '{name}': published must have keys {sorted(PUBLISHED_KEYS)}, "
                         f"d_norm one of {sorted(D_NORMS)}")
    if set(cls.ranges) != set(cls.params):
        raise ValueError(f"loss '{name}': every parameter needs a range")
    if cls.d_head not in D_HEADS:
        raise ValueError(f"loss '{name}': d_head must be one of {sorted(D_HEADS)}")
    for method in ("d_loss", "g_loss"):
        if getattr(cls, method) is getattr(Loss, method):
            raise TypeError(f"loss '{name}' must define {method}(...)")


def loss_class(name: str) -> type[Loss]:
    """The class registered as ``name`` (to read ``params``, ``published``, ``d_head``...)."""
    def checked(n: str, cls: type[Loss]) -> None:
        check(n, cls)
        cls.name = n

    return entry(_REGISTRY, name, "loss", checked)


def get(name: str, **params: float) -> Loss:
    """A new instance of the loss ``name`` with its hyperparameters (defaults for the rest)."""
    return loss_class(name)(**params)


def names() -> list[str]:
    """All registered loss names, sorted (imports no loss module)."""
    return sorted(_REGISTRY)


def origin(name: str) -> str:
    """The module that registered ``name`` (``losses.*`` for the package's own, else a plugin's)."""
    loss_class(name)  # UsageError for an unknown name
    return _ORIGIN[name]
