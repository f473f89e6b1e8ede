"""Exact k-nearest-neighbour balls, the common core of precision/recall and density/coverage.

Both metric families (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models"; Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models") put a ball B(x_i, r_i) around every sample x_i of one set, with

    r_i = the k-th smallest of ||x_i - x_j|| over the other samples j != i

(duplicates of x_i count, at distance 0; torch-fidelity takes ``kthvalue(k + 1)`` over a row that
includes x_i itself, which is the same number), and then ask, for the samples y of the other set,
which balls hold them: ``||y - x_i|| <= r_i`` (precision/recall, torch-fidelity 0.4) or ``< r_i``
(density/coverage, the authors' ``prdc``). Where a distance equals a radius (duplicated points,
lattice data, identical real and generated sets) that choice decides the answer.

Exact, without the n x m distance matrix where the dimension allows:

- d <= ``KD_MAX_DIM``: SciPy's KD-tree (``scipy.spatial.cKDTree``) finds each sample's k + 1 nearest
  neighbours and, for each ball, the points within its radius (plus 1e-9 relative slack, so that the
  tree's own rounding cannot drop a point on the sphere); O((n + m) log n) for data without heavy
  duplication. A ball holding more than ``_HEAVY`` points (a generator scattered wider than the
  data) is checked against all points in dense blocks instead, so memory stays bounded. Every
  distance that decides anything is then recomputed as
  ``sqrt(sum((a - b)^2))`` in float64, the same formula for radii and for pairs, so equal distances
  compare equal.
- higher d (digits-cnn 64-d, Inception 2,048-d): blocks of rows against the whole other set on the
  device, squared distances by matmul (``|a|^2 + |b|^2 - 2 a.b``) in float32 (float64 where float32
  matmuls may run at lower precision, TF32 or bf16), ``topk`` for the radii. Such a distance is off
  by at most (d + 2) eps (|a|^2 + |b|^2) (plus the rounding of float64 inputs to float32); every pair
  within 4x that bound of a decision (the (k + 1)-th neighbour, a ball's sphere) is recomputed in
  float64 by the difference formula, so the answer is that of float64 throughout: duplicates are at
  distance exactly 0 and ties are decided by the convention, not by rounding.

Radii are float64 distances. Inputs are float tensors or arrays [n, d]; results are on the CPU.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

KD_MAX_DIM = 16   # KD-trees beat brute force only in low dimension
_BLOCK = 1024     # rows per block on the torch path
_SPARE = 8        # extra nearest neighbours fetched per row on the torch path (for near-ties)
_SLACK = 1e-9     # relative radius slack for the KD-tree's range queries (exact filtering follows)
_HEAVY = 256      # a ball holding more points than this is checked densely (KD path)
_DENSE = 1 << 23  # coordinate differences per dense block (KD path's heavy balls): 64 MiB


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.ascontiguousarray(x, dtype=np.float64)


def _as_torch(x, device) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.detach().to(device=device, dtype=torch.float64)


def use_kd_tree(dim: int) -> bool:
    return dim <= KD_MAX_DIM


def method(dim: int) -> str:
    """How k-NN balls are found at this dimension (for provenance)."""
    return "exact, scipy cKDTree" if use_kd_tree(dim) else \
        f"exact, blocked torch matmul + topk ({_coarse_dtype()} pass, float64 near decisions)".replace("torch.", "")


def _pair_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """||a - b|| along the last axis (broadcasting) in float64, the one formula every decision on the
    KD path uses."""
    return np.sqrt(((a - b) ** 2).sum(-1))


def _sq_direct(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances along the last axis by the difference formula (exact 0 for duplicates)."""
    return ((a - b) ** 2).sum(-1)


def _mm_sq(a: torch.Tensor, a2: torch.Tensor, b: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """|a_i|^2 + |b_j|^2 - 2 a_i.b_j for all pairs [len(a), len(b)], clamped at 0."""
    return torch.addmm(a2[:, None] + b2[None, :], a, b.T, alpha=-2.0).clamp_min_(0.0)


def _coarse_dtype() -> torch.dtype:
    """float32 for the coarse matmul pass, unless float32 matmuls may be rounded lower (TF32, bf16)."""
    lower = torch.get_float32_matmul_precision() != "highest" or torch.backends.cuda.matmul.allow_tf32
    return torch.float64 if lower else torch.float32


def _mm_tol(a2: torch.Tensor, b2_max: float, dim: int, eps: float) -> torch.Tensor:
    """Bound on the coarse squared distance's error per row of a block: 4x the worst case of the
    matmul formula, (d + 2) eps (|a|^2 + |b|^2), plus float64 -> float32 rounding of the inputs."""
    return 4.0 * (dim + 5) * eps * (a2 + b2_max)


class _Coarse:
    """A point set in float64 (exact decisions) and in the coarse dtype (the matmul pass)."""

    def __init__(self, x, device):
        self.x = _as_torch(x, device)
        self.sq = (self.x * self.x).sum(1)  # float64 |x|^2, for the error bounds
        dtype = _coarse_dtype()
        self.eps = float(torch.finfo(dtype).eps)
        self.c = self.x.to(dtype)
        self.csq = (self.c * self.c).sum(1)

    def d2(self, rows: slice, other: "_Coarse") -> torch.Tensor:
        """Coarse squared distances of self.x[rows] to all of other [b, len(other)], clamped at 0."""
        return _mm_sq(self.c[rows], self.csq[rows], other.c, other.csq)

    def tol(self, rows: slice, other: "_Coarse") -> torch.Tensor:
        return _mm_tol(self.sq[rows], float(other.sq.max()), self.x.shape[1], self.eps)


def knn_radii(x, k: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """r_i = distance from x_i to its k-th nearest other sample (float64 [n], CPU); needs n > k."""
    n, dim = x.shape
    if n <= k:
        raise ValueError(f"k-NN radii with k = {k} need more than {k} samples, got {n}")
    if use_kd_tree(dim):
        xn = _as_numpy(x)
        _, idx = cKDTree(xn).query(xn, k=k + 1)  # includes x_i itself (or a duplicate) at distance 0
        return torch.from_numpy(_pair_dist(xn, xn[idx[:, k]]))
    pts = _Coarse(x, device)
    xt = pts.x
    out = []
    for start in range(0, n, _BLOCK):
        rows = slice(start, start + _BLOCK)
        a, d2 = xt[rows], pts.d2(rows, pts)
        # every j that may truly be among the k + 1 nearest has d2 <= kth + 2 tol: recompute those
        # exactly and take the (k + 1)-th. Usually they are among the k + 1 + _SPARE smallest; rows
        # with more (duplicates, near-ties) take the whole row.
        spare = min(k + 1 + _SPARE, n)
        vals, idx = d2.topk(spare, dim=1, largest=False)  # sorted ascending
        vals = vals.double()
        bound = vals[:, k] + 2 * pts.tol(rows, pts)
        exact = _sq_direct(a[:, None, :], xt[idx])  # [b, spare]
        exact[vals > bound[:, None]] = float("inf")
        r2 = exact.kthvalue(k + 1, dim=1).values
        full = (vals[:, -1] <= bound).nonzero(as_tuple=True)[0] if spare < n else vals.new_zeros(0, dtype=torch.long)
        for i in full.tolist():  # rare: too many candidates for the spare columns
            cols = (d2[i].double() <= bound[i]).nonzero(as_tuple=True)[0]
            r2[i] = _sq_direct(a[i][None], xt[cols]).kthvalue(k + 1).values
        out.append(r2.sqrt())
    return torch.cat(out).cpu()


def ball_members(centres, radii: torch.Tensor, points, *, strict: bool,
                 device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """For balls B(c_i, r_i) and points y_j: (counts [m] int64: #{i : ||y_j - c_i|| <= r_i}, or ``<``
    when ``strict``; hit [n] bool: some point lies in ball i). Exact; CPU tensors."""
    n, dim = centres.shape
    m = len(points)
    if use_kd_tree(dim):
        return _ball_members_kd(_as_numpy(centres), _as_numpy(radii), _as_numpy(points), strict)
    cs, ps = _Coarse(centres, device), _Coarse(points, device)
    rt = _as_torch(radii, device)
    counts = torch.zeros(m, dtype=torch.int64, device=rt.device)
    hits = []
    for start in range(0, n, _BLOCK):
        block = slice(start, start + _BLOCK)
        a, r = cs.x[block], rt[block]
        r2 = r * r
        margin = cs.d2(block, ps).sub_(r2.to(cs.c.dtype)[:, None])  # d2 - r2, coarse
        inside = margin < 0 if strict else margin <= 0
        # pairs within rounding of a sphere: decide on the exact distance (as the KD path does)
        near = margin.abs_() <= (cs.tol(block, ps) + 4 * cs.eps * r2).to(margin.dtype)[:, None]
        rows, cols = near.nonzero(as_tuple=True)
        if len(rows):
            d = _sq_direct(a[rows], ps.x[cols]).sqrt()
            inside[rows, cols] = d < r[rows] if strict else d <= r[rows]
        counts += torch.count_nonzero(inside, dim=0)
        hits.append(inside.any(1))
    return counts.cpu(), torch.cat(hits).cpu()


def _ball_members_kd(c: np.ndarray, r: np.ndarray, p: np.ndarray, strict: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``ball_members`` by KD-tree range queries. Balls holding more than ``_HEAVY`` points (a
    generator scattered far wider than the data has balls holding every real sample) are checked
    against all points in dense blocks instead, so memory stays O(n _HEAVY + _DENSE)."""
    n, m = len(c), len(p)
    tree = cKDTree(p)
    reach = r * (1 + _SLACK)
    lens = tree.query_ball_point(c, reach, return_length=True)
    heavy = lens > _HEAVY
    counts = np.zeros(m, dtype=np.int64)
    hit = np.zeros(n, dtype=bool)
    light = np.flatnonzero(~heavy)
    if lens[light].sum():
        lists = tree.query_ball_point(c[light], reach[light], return_sorted=False)
        cols = np.concatenate([np.asarray(v, dtype=np.int64) for v in lists if len(v)])
        rows = np.repeat(light, lens[light])
        d = _pair_dist(c[rows], p[cols])
        inside = d < r[rows] if strict else d <= r[rows]
        counts += np.bincount(cols[inside], minlength=m)
        hit[rows[inside]] = True
    big = np.flatnonzero(heavy)
    step = max(1, _DENSE // max(m * c.shape[1], 1))  # [step, m, d] differences at a time
    for start in range(0, len(big), step):
        rows = big[start:start + step]
        d = _pair_dist(c[rows, None, :], p[None, :, :])  # [rows, m]
        inside = d < r[rows, None] if strict else d <= r[rows, None]
        counts += inside.sum(0)
        hit[rows] = inside.any(1)
    return torch.from_numpy(counts), torch.from_numpy(hit)


def precision_recall(real, fake, k: int = 3, real_radii: torch.Tensor | None = None,
                     device: str | torch.device = "cpu") -> tuple[float, float]:
    """Kynkaanniemi et al. 2019 with torch-fidelity 0.4's conventions (closed balls, ``<=``):

        precision = 1/M sum_j 1[ exists i: ||Y_j - X_i|| <= r_i(X) ]   (generated inside the real manifold)
        recall    = 1/N sum_i 1[ exists j: ||X_i - Y_j|| <= r_j(Y) ]   (real inside the generated manifold)

    with X the N real and Y the M generated features and r(.) the k-NN radii within each set.
    ``real_radii``: r(X) for this k, when already known (the reference cache)."""
    if real_radii is None:
        real_radii = knn_radii(real, k, device)
    fake_radii = knn_radii(fake, k, device)
    inside_real, _ = ball_members(real, real_radii, fake, strict=False, device=device)
    inside_fake, _ = ball_members(fake, fake_radii, real, strict=False, device=device)
    return (inside_real > 0).double().mean().item(), (inside_fake > 0).double().mean().item()


def density_coverage(real, fake, k: int = 5, real_radii: torch.Tensor | None = None,
                     device: str | torch.device = "cpu") -> tuple[float, float]:
    """Naeem et al. 2020 with the authors' ``prdc`` conventions (open balls, ``<``):

        density  = 1 / (k M) * sum_j sum_i 1[ ||Y_j - X_i|| < r_i ]
        coverage = 1 / N     * sum_i 1[ exists j: ||Y_j - X_i|| < r_i ]

    with r_i the k-NN radius of real X_i among the real features. Only real balls are needed, so
    with cached ``real_radii`` the generated side costs one KD-tree (or one blocked pass)."""
    if real_radii is None:
        real_radii = knn_radii(real, k, device)
    counts, hit = ball_members(real, real_radii, fake, strict=True, device=device)
    return counts.sum().item() / (k * len(fake)), hit.double().mean().item()
