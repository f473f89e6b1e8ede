"""Registries name components by ``"module:attr"`` until first use, so that listing and validating names
(the CLI's help, a refused typo) imports no torch."""
from __future__ import annotations

import importlib
from typing import Any


def resolve(target: Any) -> Any:
    """The object a ``"module:attr"`` string names (imported now), or ``target`` itself."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
