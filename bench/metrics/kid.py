"""KID (Binkowski et al. 2018, "Demystifying MMD GANs") for all subsets at once, without a Python loop
over subsets, numerically equal to torch-fidelity 0.4's ``kid_features_to_metric``.

For each of S subsets s, torch-fidelity draws (in this order, from one ``np.random.RandomState(seed)``)
I_s = ``rng.choice(n1, m, replace=False)`` of the generated and J_s = ``rng.choice(n2, m, replace=False)``
of the real features, and takes the unbiased MMD^2 with the polynomial kernel
k(x, y) = (gamma x.y + c0)^p (defaults: gamma = 1/d, c0 = 1, p = 3):

    MMD^2_s = [ sum_{i != i' in I_s} k(x_i, x_i') + sum_{j != j' in J_s} k(y_j, y_j') ] / (m (m - 1))
              - 2 / m^2 * sum_{i in I_s, j in J_s} k(x_i, y_j)

KID = mean_s MMD^2_s, KID std = their population std (``np.std``). Only the three subset sums matter:

- ``moments`` (low dimension): k(x, y) = sum_q C(p, q) c0^(p-q) gamma^q <x^(x)q, y^(x)q>, with x^(x)q the
  q-fold tensor power, so a subset's kernel sum is a dot product of the subsets' summed tensor powers:
  O(S m d^p) instead of O(S m^2 d). For 2-D points that is 14 numbers per point.
- ``gram`` (high dimension, few samples): the full kernel matrices in row blocks, each subset's sum
  as 1_I^T K 1_J through one matmul with the subsets' 0/1 indicator matrix: O(n^2 (d + S)).
- ``subsets`` (high dimension, many samples): the subsets' m x m kernel blocks as batched matmuls
  over a few subsets at a time: O(S m^2 d), what torch-fidelity computes, without its Python loop.

The route with the smallest operation count is taken (recorded as ``kid_sums`` in the provenance).

All in float64 (torch-fidelity computes in the features' dtype: float32 features carry its float32
rounding, about 1e-7 of the kernel sums; float64 features give the same numbers to about 1e-12).
"""
from __future__ import annotations

import math

import numpy as np
import torch

_BLOCK = 2048
real_terms_computed = 0  # real-side subset sums computed in this process (the reference cache's tests read it)


def subset_indices(n1: int, n2: int, size: int, subsets: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """[subsets, size] index arrays into each side, drawn exactly as torch-fidelity 0.4 draws them."""
    if size > min(n1, n2):
        raise ValueError(f"KID subset size {size} exceeds the sample counts ({n1}, {n2})")
    rng = np.random.RandomState(seed)
    i1, i2 = np.empty((subsets, size), np.int64), np.empty((subsets, size), np.int64)
    for s in range(subsets):  # interleaved draws: one generated, then one real subset
        i1[s] = rng.choice(n1, size, replace=False)
        i2[s] = rng.choice(n2, size, replace=False)
    return i1, i2


def _tensor_powers(x: torch.Tensor, degree: int) -> list[torch.Tensor]:
    """[x^(x)q flattened, q = 0..degree]: [n, d^q] each (q = 0 is a column of ones)."""
    out = [torch.ones(len(x), 1, dtype=x.dtype, device=x.device)]
    for _ in range(degree):
        out.append((out[-1][:, :, None] * x[:, None, :]).flatten(1))
    return out


def _sums_moments(x, y, i1, i2, degree, gamma, coef0, need_yy=True):
    """Subset sums of k over (I, I), (J, J), (I, J) from summed tensor powers (yy None unless needed)."""
    px, py = _tensor_powers(x, degree), _tensor_powers(y, degree)
    xx = torch.zeros(len(i1), dtype=x.dtype, device=x.device)
    yy, xy = torch.zeros_like(xx), torch.zeros_like(xx)
    for q in range(degree + 1):
        w = math.comb(degree, q) * coef0 ** (degree - q) * gamma ** q
        mx, my = px[q][i1].sum(1), py[q][i2].sum(1)  # [S, d^q]
        xx += w * (mx * mx).sum(1)
        yy += w * (my * my).sum(1)
        xy += w * (mx * my).sum(1)
    return xx, yy if need_yy else None, xy


def _indicator(idx: torch.Tensor, n: int) -> torch.Tensor:
    sel = torch.zeros(len(idx), n, dtype=torch.float64, device=idx.device)
    return sel.scatter_(1, idx, 1.0)


def _block_sum(a, b, sel_a, sel_b, degree, gamma, coef0):
    """sum over subsets s of 1_{I_s}^T K(a, b) 1_{J_s}, K in row blocks of a."""
    tb = sel_b.T  # [n_b, S]
    out = torch.zeros(sel_a.shape[0], dtype=a.dtype, device=a.device)
    for start in range(0, len(a), _BLOCK):
        k = (a[start:start + _BLOCK] @ b.T * gamma + coef0) ** degree
        out += (sel_a[:, start:start + _BLOCK].T * (k @ tb)).sum(0)
    return out


def _sums_gram(x, y, i1, i2, degree, gamma, coef0, need_yy=True):
    s1, s2 = _indicator(i1, len(x)), _indicator(i2, len(y))
    yy = _block_sum(y, y, s2, s2, degree, gamma, coef0) if need_yy else None
    return _block_sum(x, x, s1, s1, degree, gamma, coef0), yy, _block_sum(x, y, s1, s2, degree, gamma, coef0)


def _sums_subsets(x, y, i1, i2, degree, gamma, coef0, need_yy=True):
    out = ([], [], [])
    chunk = max(1, _BLOCK * _BLOCK // (i1.shape[1] ** 2))  # subsets per batch: ~4M kernel entries
    for start in range(0, len(i1), chunk):
        a, b = x[i1[start:start + chunk]], y[i2[start:start + chunk]]  # [c, m, d]
        for acc, pair in zip(out, ((a, a), (b, b) if need_yy else None, (a, b))):
            if pair is not None:
                u, v = pair
                acc.append(((u @ v.transpose(1, 2)) * gamma + coef0).pow_(degree).sum((1, 2)))
    return tuple(torch.cat(acc) if acc else None for acc in out)


_ROUTES = {"moments": _sums_moments, "gram": _sums_gram, "subsets": _sums_subsets}


def route_costs(n1: int, n2: int, d: int, size: int, subsets: int, degree: int = 3) -> dict[str, float]:
    """Rough multiply-add counts of each route to the subset sums."""
    return {"moments": subsets * size * sum(d ** q for q in range(degree + 1)),
            "gram": (n1 * n1 + n2 * n2 + n1 * n2) * (d + subsets),
            "subsets": 3 * subsets * size * size * (d + 1)}


def kid(gen: torch.Tensor, real: torch.Tensor, *, subset_size: int = 1000, subsets: int = 100, seed: int = 2020,
        degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
        device: str | torch.device = "cpu", route: str | None = None,
        real_cache: dict | None = None) -> tuple[float, float, str]:
    """(KID mean, KID std, route) for generated ``gen`` [n1, d] and real ``real`` [n2, d] features;
    ``route`` None picks the cheapest (``route_costs``). ``real_cache``: a dict kept with these real
    features (the reference's), where the real side's subset sums are kept for later calls with the
    same counts and settings (and the subset indices): a second checkpoint computes only the generated
    and cross terms."""
    n1, d = gen.shape
    n2 = len(real)
    gamma = 1.0 / d if gamma is None else gamma
    draw = ("kid-subsets", n1, n2, subset_size, subsets, seed)
    if real_cache is not None and draw in real_cache:
        i1, i2 = real_cache[draw]
    else:
        i1, i2 = subset_indices(n1, n2, subset_size, subsets, seed)
        if real_cache is not None:
            real_cache[draw] = (i1, i2)
    x, y = gen.to(device, torch.float64), real.to(device, torch.float64)
    t1, t2 = torch.from_numpy(i1).to(x.device), torch.from_numpy(i2).to(x.device)
    if route is None:
        costs = route_costs(n1, n2, d, subset_size, subsets, degree)
        route = min(costs, key=costs.get)
    key = ("kid", n1, n2, subset_size, subsets, seed, degree, gamma, coef0, route)
    real_term = None if real_cache is None else real_cache.get(key)  # sum_{j != j' in J_s} k(y_j, y_j')
    xx, yy, xy = _ROUTES[route](x, y, t1, t2, degree, gamma, coef0, need_yy=real_term is None)
    if real_term is None:
        global real_terms_computed
        real_terms_computed += 1
        diag_y = ((y * y).sum(1) * gamma + coef0) ** degree  # k(y_j, y_j)
        real_term = (yy - diag_y[t2].sum(1)).cpu()
        if real_cache is not None:
            real_cache[key] = real_term
    diag_x = ((x * x).sum(1) * gamma + coef0) ** degree
    m = subset_size
    mmd = ((xx - diag_x[t1].sum(1)) + real_term.to(x.device)) / (m * (m - 1)) - 2 * xy / (m * m)
    mmd = mmd.cpu().numpy()
    return float(np.mean(mmd)), float(np.std(mmd)), route
