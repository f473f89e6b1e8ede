"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models"), on the same features as FID.

With real features X_1..X_N, generated Y_1..Y_M and r_i the distance from X_i to its k-th nearest
other real sample (k = 5):

    density  = 1 / (k M) * sum_j sum_i 1[ ||Y_j - X_i|| < r_i ]
    coverage = 1 / N     * sum_i 1[ exists j: ||Y_j - X_i|| < r_i ]

(strict inequalities, as in the authors' ``prdc`` code). Density is unbounded (about 1 when the
distributions match); coverage is in [0, 1]. Exact k-NN balls (``bench.metrics.knn``: KD-trees in
low dimension, blocked float64 matmul + topk otherwise); the real radii come from the reference cache.
"""
from __future__ import annotations

from bench.metrics import knn
from bench.metrics.knn import density_coverage  # the exact computation lives with the other k-NN balls


def metric(gen, ref, ctx) -> dict[str, float]:
    k = ctx.params["dc_k"]
    ctx.provenance.update(dc_k=k, knn=knn.method(gen.features.shape[1]))
    radii = ref.radii if ref.radii is not None and ref.key.get("dc_k") == k else None
    density, coverage = density_coverage(ref.features, gen.features, k, radii, device=ctx.extractor.device)
    return {"density": density, "coverage": coverage}
