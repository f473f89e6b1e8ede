"""Registries name components by ``"module:attr"`` until first use, so that listing and validating names
(the CLI's help, a refused typo) imports no torch."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def resolve(target: Any) -> Any:
    """The object a ``"module:attr"`` string names (imported now), or ``target`` itself."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def entry(table: dict[str, Any], name: str, what: str, check: Callable[[str, Any], None]) -> Any:
    """``table[name]``, imported and ``check``-ed on its first use (then stored resolved); an unknown
    name is a one-line UsageError listing the known ones (``what``: "loss", "arch"...)."""
    from bench.errors import UsageError

    try:
        target = table[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown {what} '{name}'; known: {', '.join(sorted(table))}") from None
    if isinstance(target, str):  # first use of a lazy registration
        check(name, target := resolve(target))
        table[name] = target
    return target
