"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models"), on the same features as FID.

With real features X_1..X_N, generated Y_1..Y_M and r_i the distance from X_i to its k-th nearest
other real sample (k = 5):

    density  = 1 / (k M) * sum_j sum_i 1[ ||Y_j - X_i|| < r_i ]
    coverage = 1 / N     * sum_i 1[ exists j: ||Y_j - X_i|| < r_i ]

(strict inequalities, as in the authors' ``prdc`` code). Density is unbounded (about 1 when the
distributions match); coverage is in [0, 1].
"""
from __future__ import annotations

import torch

_BATCH = 1024


def knn_radii(real: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each real sample to its k-th nearest other real sample (float64 [N])."""
    real = real.double()
    return torch.cat([torch.cdist(b, real).kthvalue(k + 1, dim=1).values for b in real.split(_BATCH)])


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5,
                     radii: torch.Tensor | None = None) -> tuple[float, float]:
    real, fake = real.double(), fake.double()
    radii = knn_radii(real, k) if radii is None else radii.double()
    inside_total = 0
    covered = torch.zeros(len(real), dtype=torch.bool)
    for b in fake.split(_BATCH):
        inside = torch.cdist(b, real) < radii[None]  # [b, N]
        inside_total += int(inside.sum())
        covered |= inside.any(0)
    return inside_total / (k * len(fake)), covered.double().mean().item()


def metric(gen, ref, ctx) -> dict[str, float]:
    k = ctx.params["dc_k"]
    ctx.provenance.update(dc_k=k)
    radii = ref.radii if ref.radii is not None and ref.key.get("dc_k") == k else None
    density, coverage = density_coverage(ref.features, gen.features, k, radii)
    return {"density": density, "coverage": coverage}
