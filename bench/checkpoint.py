"""Checkpoints: one self-describing file per saved step, loaded with ``weights_only=True``.

A checkpoint holds everything needed to continue bit for bit (G, D, both Adam states, the step, the
loss's own state such as BEGAN's k_t, the RNG states) plus the run's config as a JSON string, so a
single file can be scored or resumed without its run directory. Only tensors, numbers, strings and
dicts are stored: ``torch.load(..., weights_only=True)`` refuses anything that would run code.
"""
from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from bench.config import TrainConfig
from bench.errors import UsageError
from bench.io import atomic_torch_save
from bench.run_dir import CKPT_DIR, RunDir

FORMAT = "gan-bench/checkpoint/1"


def list_checkpoints(out: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    return RunDir(out).checkpoints()


def save(path: Path, payload: dict[str, Any]) -> None:
    atomic_torch_save(path, {"format": FORMAT, **payload})


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing, corrupt or foreign file is a UsageError (one line).

    Only ``torch.save`` archives (zip files) are opened, with ``weights_only=True``: a bare pickle is
    refused unread, and an archive holding anything but tensors and plain data is refused by torch.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"cannot read checkpoint {path}: not a torch.save archive (a gan-bench checkpoint is a zip "
                         "file written by bench train; this one is truncated or something else)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr: the error says it all
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UsageError(f"refusing to load {path}: it holds objects other than tensors and plain data "
                         f"({_refusal(e)}); checkpoints are loaded with weights_only=True") from None
    except Exception as e:  # truncated zip, not a torch file at all, ...
        raise UsageError(f"cannot read checkpoint {path}: {type(e).__name__}: {_first_line(e)}") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UsageError(f"{path} is not a gan-bench checkpoint (expected format {FORMAT})")
    return ck


def _first_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:160]


def _refusal(e: pickle.UnpicklingError) -> str:
    """The reason in torch's weights-only error (its first lines are advice to load unsafely: skipped)."""
    for line in str(e).splitlines():
        line = line.strip()
        if line and not line.startswith(("Weights only load failed", "Please file an issue", "Check the documentation")):
            return line[:160]
    return "not plain data"


def config_of(ck: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_dict(json.loads(ck["config"]))


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory means its latest checkpoint; a file means itself."""
    p = Path(path)
    if p.is_dir():
        cks = list_checkpoints(p)
        if not cks:
            raise UsageError(f"{p} holds no checkpoints (expected {CKPT_DIR}/step_*.pt)")
        return cks[-1]
    return p


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """Rebuild G from a checkpoint (or a run directory's latest) in eval mode, with its config."""
    import losses
    import models

    ck = load(resolve_checkpoint(path), map_location=device)
    try:
        cfg = config_of(ck)
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"checkpoint {path} holds no readable run config ({type(e).__name__}: {_first_line(e)})") from None
    try:
        spec = models.DataSpec(ck["data_kind"], tuple(ck["data_shape"]))
        classes = int(ck["G"]["class_probs"].shape[0]) if cfg.conditional else 0
        G, _ = models.build(cfg.arch, spec, cfg.z_dim, cfg.d_norm, losses.loss_class(cfg.loss).d_head, g_norm=cfg.g_norm,
                            n_classes=classes)
    except (KeyError, TypeError, ValueError) as e:  # UsageError is a ValueError
        raise UsageError(f"checkpoint {path} does not fit arch '{cfg.arch}': {e}") from None
    try:
        G.load_state_dict(ck["G"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise UsageError(f"checkpoint {path} does not fit arch '{cfg.arch}': {str(e).splitlines()[0]}") from None
    return G.to(device).eval(), cfg
