"""W1: the exact Wasserstein-1 distance between generated and real samples, for point data.

    W1(P, Q) = min over couplings pi of P and Q of E_(x, y) ~ pi ||x - y||_2

between the empirical distributions of the first ``n = min(w1_samples, n_generated, n_real)``
generated and real points (uniform weights), solved exactly by POT's network simplex (``ot.emd2``,
Flamary et al. 2021, JMLR). W1 is a metric on distributions: zero only when they are equal, so unlike
FID on raw 2-D points (which sees only mean and covariance) it sees modes. On ring8 at n = 1,000:
the true mixture against the test split scores about 0.07 (the finite-sample floor), a Gaussian with
the data's mean and covariance about 0.9, all mass on one mode about 2.5 (in data units, the
ring's radius is 2).

The exact solver costs O(n^3) in the worst case (about 0.5 s at n = 1,000 here), hence the capped n;
the value depends on n (the floor falls like n^-1/2), so n is part of the protocol and recorded.
"""
from __future__ import annotations

import numpy as np
import torch


def w1(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W1 between the empirical distributions of x [N, D] and y [M, D] (Euclidean ground cost)."""
    import ot

    a = x.detach().double().cpu().numpy()
    b = y.detach().double().cpu().numpy()
    cost = ot.dist(a, b, metric="euclidean")
    value, log = ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                         numItermax=100_000_000, log=True)
    if log.get("result_code") != 1:  # 1 = optimal; anything else is not the distance
        raise RuntimeError(f"POT's network simplex did not reach the optimum: {log.get('warning')}")
    return float(value)


def metric(gen, ref, ctx) -> dict[str, float]:
    from importlib.metadata import version

    n = min(ctx.params["w1_samples"], len(gen.features), len(ref.features))
    ctx.provenance.update(w1_samples=n, w1_solver=f"POT {version('pot')} ot.emd2 (exact), euclidean ground cost")
    return {"w1": w1(gen.features[:n], ref.features[:n])}
