"""Generated samples: drawn from a generator with a dedicated RNG, checked, converted for extractors.

``sampler(G, z_dim, z_dist, seed)`` returns ``n -> samples``: all n latents are drawn in one call
from a ``torch.Generator`` seeded with ``seed`` on the CPU, so z depends on (seed, n, z_dim, z_dist)
only, never on the device or the batch size G is called with, and the global RNG is never touched
(training resumes bit for bit after a scoring hook). The samples are bitwise the same for the same
batch size on the same machine; across batch sizes they agree to float rounding only (a matmul picks
its kernel by shape).
"""
from __future__ import annotations

from typing import Callable

import torch

from bench.errors import UsageError
from bench.metrics.defaults import DEFAULTS

Generate = Callable[[int], torch.Tensor]


def latents(n: int, z_dim: int, z_dist: str, g: torch.Generator) -> torch.Tensor:
    if z_dist == "uniform":
        return torch.rand(n, z_dim, generator=g) * 2 - 1  # Lucic: U(-1, 1)
    if z_dist == "normal":
        return torch.randn(n, z_dim, generator=g)
    raise UsageError(f"unknown z_dist '{z_dist}'; known: uniform, normal")


def sampler(G: Callable[[torch.Tensor], torch.Tensor], z_dim: int, z_dist: str = "uniform", *, seed: int = 0,
            device: torch.device | str = "cpu", batch_size: int = DEFAULTS["gen_batch_size"]) -> Generate:
    """``n -> G(z)`` for n latents from the prior, in batches, as float32 on the CPU. A conditional G
    (``models.conditional``) gets labels y drawn from its data's class frequencies by the same seeded
    generator after z; the sampler's ``labels(n)`` gives them (None for an unconditional G)."""
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise UsageError(f"z-dim must be a positive integer, got {z_dim!r}")
    from models.conditional import sample_labels

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        g = torch.Generator().manual_seed(seed)
        z = latents(n, z_dim, z_dist, g)  # one draw: z ignores batch_size
        return z, sample_labels(G, n, g)

    def generate(n: int) -> torch.Tensor:
        z, y = draw(n)
        with torch.no_grad():
            if y is None:
                return torch.cat([G(b.to(device)).detach().float().cpu() for b in z.split(batch_size)])
            return torch.cat([G(b.to(device), c.to(device)).detach().float().cpu()
                              for b, c in zip(z.split(batch_size), y.split(batch_size))])

    generate.labels = lambda n: draw(n)[1]  # type: ignore[attr-defined]
    return generate


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8: round((x + 1) * 127.5), clamped; non-finite values become 0 (black)."""
    return ((x.float().nan_to_num(-1.0, -1.0, -1.0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def check(x: torch.Tensor, ds, n: int, what: str = "generator") -> tuple[torch.Tensor, int]:
    """Validate samples against the dataset; returns (points or uint8 images, #non-finite samples)."""
    want = (n, *ds.shape)
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != want:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"{what} output {got} does not fit {ds.name}: expected {list(want)} "
                         f"({'2-D points' if ds.kind == 'points' else 'NCHW images in [-1, 1]'})")
    if x.dtype == torch.uint8:
        if ds.kind == "points":
            raise UsageError(f"{what} gave uint8 values for the point dataset {ds.name}")
        return x, 0
    if not x.is_floating_point():
        raise UsageError(f"{what} output has dtype {x.dtype}; expected floating point")
    bad = int((~torch.isfinite(x.reshape(n, -1))).any(1).sum())
    return (x.float() if ds.kind == "points" else to_uint8(x)), bad
