"""Generators trained anywhere: a ``torch.export`` program (``torch.export.save``, a .pt2 file)
mapping z ~ N(0, I) of shape [N, D] (N dynamic) to samples in the dataset's range.

``torch.export.load`` unpickles some payloads (pickled tensor subclasses, opaque objects, legacy
archives, example inputs that fail a weights-only load) and loads AOTInductor shared libraries. Before
calling it we open the archive and refuse anything but plain tensors and the JSON graph, the policy
``weights_only=True`` enforces for checkpoints.
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

from bench.errors import UsageError


def _refuse(path: Path, why: str) -> UsageError:
    return UsageError(f"refusing to load generator {path}: {why}")


def check_archive(path: Path) -> None:
    """Raise UsageError unless ``path`` is a .pt2 archive that holds only tensors and JSON."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        raise UsageError(f"cannot read generator {path}: not a torch.export .pt2 archive") from None
    with z:
        rel = {n.split("/", 1)[1] if "/" in n else n: n for n in z.namelist()}
        if "archive_format" not in rel:
            raise _refuse(path, "not a torch.export .pt2 archive (torch >= 2.8 format)")
        for r, name in rel.items():
            if r.startswith("data/aotinductor/"):
                raise _refuse(path, "it holds compiled AOTInductor code")
            if r.startswith(("data/weights/", "data/constants/")) and r.endswith(".pt"):
                raise _refuse(path, "legacy pickled weights")
            if r.endswith(("weights_config.json", "constants_config.json")):
                try:
                    cfg = json.loads(z.read(name))["config"]
                except (ValueError, KeyError, TypeError):
                    raise _refuse(path, f"unreadable {r}") from None
                for fqn, meta in cfg.items():
                    if meta.get("use_pickle") or not str(meta.get("path_name", "")).startswith(("weight", "tensor")):
                        raise _refuse(path, f"'{fqn}' is a pickled object, not a plain tensor")
            if r.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(z.read(name)), weights_only=True)
                except Exception:
                    raise _refuse(path, "its example inputs are not plain data") from None


@contextmanager
def _quiet_export_logs():
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def load_generator_file(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The program's callable; every failure (load or call) is a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"generator not found: {path}")
    check_archive(path)
    try:
        with _quiet_export_logs():
            module = torch.export.load(path).module()
    except Exception as e:
        raise UsageError(f"cannot load generator {path}: {_first_line(e)}") from None

    def G(z: torch.Tensor) -> torch.Tensor:
        try:
            return module(z)
        except Exception as e:
            raise UsageError(f"generator {path.name} failed on z of shape {list(z.shape)}: {_first_line(e)}") from None

    return G


def _first_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:200]
