"""Checkpoints: one self-describing file per saved step, loaded with ``weights_only=True``.

A checkpoint holds everything needed to continue bit for bit (G, D, both Adam states, the step, the
loss's own state such as BEGAN's k_t, the RNG states) plus the run's config as a JSON string, so a
single file can be scored or resumed without its run directory. Only tensors, numbers, strings and
dicts are stored: ``torch.load(..., weights_only=True)`` refuses anything that would run code.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from bench.config import TrainConfig
from bench.errors import UsageError
from bench.io import atomic_torch_save

FORMAT = "gan-bench/checkpoint/1"
CKPT_DIR = "checkpoints"


def checkpoint_path(out: Path, step: int) -> Path:
    return out / CKPT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(out: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    return sorted((out / CKPT_DIR).glob("step_*.pt"))


def save(path: Path, payload: dict[str, Any]) -> None:
    atomic_torch_save(path, {"format": FORMAT, **payload})


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing, corrupt or foreign file is a UsageError (one line)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"refusing to load {path}: not a plain-data checkpoint ({first})") from None
    except Exception as e:  # truncated zip, not a torch file at all, ...
        raise UsageError(f"cannot read checkpoint {path}: {type(e).__name__}") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UsageError(f"{path} is not a gan-bench checkpoint (expected format {FORMAT})")
    return ck


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
    cfg = config_of(ck)
    spec = models.DataSpec(ck["data_kind"], tuple(ck["data_shape"]))
    G, _ = models.build(cfg.arch, spec, cfg.z_dim, cfg.d_norm, losses.loss_class(cfg.loss).d_head)
    try:
        G.load_state_dict(ck["G"])
    except RuntimeError as e:
        raise UsageError(f"checkpoint does not fit arch '{cfg.arch}': {str(e).splitlines()[0]}") from None
    return G.to(device).eval(), cfg
