"""Datasets made here, no files needed: 2-D Gaussian mixtures, scikit-learn's digits (plain and stacked
three to an image), Lucic's triangles."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.core import (CACHE_VERSION, Dataset, Request, cache_path, cached, images_dataset,
                             short_hash, with_labels)

# ----------------------------------------------------------------------------------------------
# 2-D mixtures
# ----------------------------------------------------------------------------------------------
MIXTURES = {
    "ring8": {"modes": 8, "radius": 2.0, "std": 0.02},              # 8 Gaussians on a circle of radius 2
    "grid25": {"side": 5, "spacing": 2.0, "std": 0.05},             # 5x5 grid at {-4,-2,0,2,4}^2
}


def ring_centres(modes: int, radius: float) -> torch.Tensor:
    t = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([t.cos(), t.sin()], 1)).float()


def grid_centres(side: int, spacing: float) -> torch.Tensor:
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def _mixture(req: Request, centres: torch.Tensor, std: float) -> Dataset:
    return Dataset(name=req.name, kind="points", shape=(2,), split=req.split, centres=centres, std=float(std),
                   n=None, info={"modes": int(centres.shape[0])})


def ring8(req: Request) -> Dataset:
    p = MIXTURES["ring8"]
    return _mixture(req, ring_centres(p["modes"], p["radius"]), p["std"])


def grid25(req: Request) -> Dataset:
    p = MIXTURES["grid25"]
    return _mixture(req, grid_centres(p["side"], p["spacing"]), p["std"])


# ----------------------------------------------------------------------------------------------
# scikit-learn digits: 1,797 8x8 images, values 0..16. There is no split: train and test are both
# the whole set (metrics on digits therefore compare against the training images).
# ----------------------------------------------------------------------------------------------
DIGITS_COUNT = 1797


def digits_uint8(resolution: int = 8) -> torch.Tensor:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: never downloads

    x = torch.from_numpy(load_digits().images.astype(np.float32)).unsqueeze(1) * (255.0 / 16.0)
    if resolution != x.shape[-1]:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=False)
    return x.round().clamp(0, 255).to(torch.uint8).contiguous()


def digits(req: Request) -> Dataset:
    from importlib.metadata import version  # not `import sklearn`: that costs seconds on a cache hit

    key = short_hash([CACHE_VERSION, "digits", version("scikit-learn"), req.resolution])
    path = cache_path("digits", "all", req.resolution, key)
    images = cached(path, lambda: digits_uint8(req.resolution), {"name": "digits", "resolution": req.resolution})
    ds = images_dataset("digits", req.split, images, cache=str(path), source="sklearn.datasets.load_digits",
                        note="no held-out split: train and test are the same 1,797 images")
    return with_labels(ds, 10, digits_labels)


def digits_labels() -> torch.Tensor:
    """int64 [1797]: each digit's class (scikit-learn's ``target``)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: never downloads

    return torch.from_numpy(load_digits().target).long()



# ----------------------------------------------------------------------------------------------
# Stacked digits: the 1,000-mode StackedMNIST of Metz et al. 2017 ("Unrolled GANs"; also used by
# VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018; R3GAN, Huang et al. 2024), built from
# scikit-learn's digits instead of MNIST. Image i has 3 channels; channel c is digit image idx[i, c],
# the indices drawn independently and uniformly (with replacement) from the 1,797 digits by numpy's
# default_rng seeded per split. Its mode is the triple of the three digits' classes, one of
# 10^3 = 1,000, each with probability ~1/1,000 (the digits' classes hold 174 to 183 images each).
# Train and test are different draws (seeds 0 and 1) from the same 1,797 digits: digits has no
# held-out split, so the test split holds new triples (of 1,797^3 ~ 5.8e9), not unseen digits.
# Mode metrics (bench.metrics.modes) classify each channel with ``digits-cnn``.
# ----------------------------------------------------------------------------------------------
STACKED_DIGITS = {
    "channels": 3,
    "seed": {"train": 0, "test": 1},
    "count": {"train": 60_000, "test": 10_000},
}


def stacked_digits_indices(count: int, seed: int) -> np.ndarray:
    """[count, 3] int64 indices into scikit-learn's digits. The first k rows do not depend on count."""
    return np.random.default_rng(seed).integers(0, DIGITS_COUNT, size=(count, STACKED_DIGITS["channels"]))


def stacked_digits_uint8(count: int, seed: int, resolution: int = 8) -> torch.Tensor:
    """uint8 [count, 3, R, R]: channel c of image i is digit ``stacked_digits_indices(count, seed)[i, c]``."""
    digits = digits_uint8(resolution)[:, 0]                                  # [1797, R, R]
    return digits[torch.from_numpy(stacked_digits_indices(count, seed))].contiguous()


def stacked_digits_labels(split: str = "train", count: int | None = None) -> torch.Tensor:
    """int64 [count, 3]: the digit class of each channel of the split's images (row i is image i's mode)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: never downloads

    count = count or STACKED_DIGITS["count"][split]
    target = torch.from_numpy(load_digits().target).long()
    return target[torch.from_numpy(stacked_digits_indices(count, STACKED_DIGITS["seed"][split]))]


def stacked_digits(req: Request) -> Dataset:
    from importlib.metadata import version  # not `import sklearn`: that costs seconds on a cache hit

    count = req.count or STACKED_DIGITS["count"][req.split]
    seed = STACKED_DIGITS["seed"][req.split]
    key = short_hash([CACHE_VERSION, "stacked-digits", version("scikit-learn"), seed, count, req.resolution])
    path = cache_path("stacked-digits", req.split, req.resolution, key)
    images = cached(path, lambda: stacked_digits_uint8(count, seed, req.resolution),
                    {"name": "stacked-digits", "seed": seed, "count": count, "resolution": req.resolution})
    ds = images_dataset("stacked-digits", req.split, images, cache=str(path), seed=seed, modes=1000,
                        source="sklearn.datasets.load_digits, three per image (one per channel)")
    # the class of an image is its mode, 100 a + 10 b + c for the channels' digits a, b, c
    return with_labels(ds, 1000, lambda: stacked_digits_labels(req.split, count) @ torch.tensor([100, 10, 1]))


# ----------------------------------------------------------------------------------------------
# Polygons (Lucic et al. 2018, section 5.3): anti-aliased gray triangles, as built by compare_gan's
# GenerateConvexPolygon: the circle around the centre is cut into 3 segments of 120 degrees and one
# vertex is drawn in each, at least ``min_segment_angle`` from its neighbours (central angle); the
# circle's radius is ``scale`` times the half-width; the triangle is rotated uniformly at random and
# its centroid moved to the image centre. Coverage of each pixel is the fraction of its 8x8 subpixel
# centres inside the triangle (white triangle, 255, on black, 0).
#
# Differences from compare_gan's code, on purpose: (1) it draws the offset in [0, 120 - 20/2] which
# lets neighbours come within 10 degrees; we use [0, 120 - 20] so the 20 degree minimum holds;
# (2) its rotation is np.radians(U * 2 pi), i.e. at most 6.3 degrees; we rotate uniformly in
# [0, 2 pi); (3) it samples subpixel corners and pools a half-pixel-shifted 8x8 box; we sample
# subpixel centres, so the image is not shifted; (4) it stores background 1, triangle 0; we store the
# triangle bright like MNIST's strokes.
# ----------------------------------------------------------------------------------------------
POLYGONS = {
    "n_vertices": 3,
    "min_segment_angle": 20.0,   # degrees, central angle between neighbouring vertices
    "scale": 0.75,               # circumradius / half-width before centring
    "subpixels": 8,              # 8x8 subpixel supersampling (224x224 for 28x28)
    "seed": {"train": 0, "test": 1},
    "count": {"train": 60_000, "test": 10_000},
}
_CHUNK = 1024


def triangle_vertices(count: int, seed: int, resolution: int, *, scale: float = POLYGONS["scale"],
                      min_segment_angle: float = POLYGONS["min_segment_angle"]) -> np.ndarray:
    """[count, 3, 2] float64 vertices (x, y) in pixel units. The first k rows do not depend on count."""
    u = np.random.default_rng(seed).random((count, 4))  # sequential fill: prefix-stable in count
    seg = 360.0 / 3
    deg = np.arange(3) * seg + min_segment_angle / 2 + u[:, :3] * (seg - min_segment_angle)
    ang = np.radians(deg) + 2 * np.pi * u[:, 3:4]  # uniform rotation
    half = resolution / 2.0
    v = scale * half * np.stack([np.cos(ang), np.sin(ang)], -1)  # [count, 3, 2]
    return v - v.mean(axis=1, keepdims=True) + half  # centroid to the image centre


def render_triangles(vertices: np.ndarray, resolution: int, subpixels: int = POLYGONS["subpixels"]) -> torch.Tensor:
    """Rasterize triangles to uint8 [B, 1, R, R]: 255 * (fraction of the S x S subpixel centres inside).

    Equivalent to a point-in-triangle test on the (R*S)^2 subpixel grid followed by S x S average
    pooling (the tests check this exactly), but computed per subpixel row: the inside of a convex
    shape on a row is one interval [lo, hi], so each output pixel's count on that row is the overlap
    of that interval with its S subpixel centres. Work is B * R*S * R instead of B * (R*S)^2. numpy,
    single-threaded: intra-op threads only slow this down on a busy machine.
    """
    out = np.empty((len(vertices), 1, resolution, resolution), dtype=np.uint8)
    for s in range(0, len(vertices), _CHUNK):
        out[s:s + _CHUNK, 0] = _render_chunk(np.asarray(vertices[s:s + _CHUNK], dtype=np.float64),
                                             resolution, subpixels)
    return torch.from_numpy(out)


def _half_planes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges of the triangles [B, 3, 2], made counter-clockwise, as a*x + b*y + c >= 0 (each [B, 3])."""
    p, q, r = v[:, 0], v[:, 1], v[:, 2]
    area2 = (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0])
    v = np.where((area2 < 0)[:, None, None], v[:, [0, 2, 1]], v)
    P, Q = v, np.roll(v, -1, axis=1)
    a = -(Q[..., 1] - P[..., 1])
    b = Q[..., 0] - P[..., 0]
    c = -(a * P[..., 0] + b * P[..., 1])
    return a, b, c


def _render_chunk(v: np.ndarray, R: int, S: int) -> np.ndarray:
    a, b, c = (t[:, :, None] for t in _half_planes(v))                # [B, 3, 1]
    y = (np.arange(R * S, dtype=np.float64) + 0.5) / S                # subpixel row centres
    rhs = -(b * y + c)                                                 # edge e: a*x >= rhs
    t = rhs / np.where(a == 0, 1.0, a)
    lo = np.where(a > 0, t, -np.inf).max(1)                            # [B, R*S]
    hi = np.where(a < 0, t, np.inf).min(1)
    ok = ((a != 0) | (rhs <= 0)).all(1)                                # horizontal edges: all or nothing
    lo, hi = np.clip(lo, -1, R + 1), np.clip(hi, -1, R + 1)
    kmin = np.ceil(lo * S - 0.5)                                       # subpixel columns k inside:
    kmax = np.floor(hi * S - 0.5)                                      # (k + 0.5) / S in [lo, hi]
    kmax = np.where(ok, np.maximum(kmax, kmin - 1), kmin - 1)          # empty rows: kmax + 1 == kmin
    # Subpixels of column j (k in [jS, jS + S)) before index x: f_j(x) = clamp(x - jS, 0, S); the row's
    # count is f_j(kmax + 1) - f_j(kmin) >= 0, and sums over the S subpixel rows of a pixel row.
    start = np.arange(R, dtype=np.float32) * S

    def f(x: np.ndarray) -> np.ndarray:
        d = x.astype(np.float32)[..., None] - start
        np.clip(d, 0, S, out=d)
        return d.reshape(-1, R, S, R).sum(2)

    cnt = f(kmax + 1) - f(kmin)                                        # [B, R, R], 0..S*S
    return np.rint(cnt * (255.0 / (S * S))).astype(np.uint8)


def polygons_uint8(count: int, seed: int, resolution: int = 28) -> torch.Tensor:
    return render_triangles(triangle_vertices(count, seed, resolution), resolution)


def polygons(req: Request) -> Dataset:
    count = req.count or POLYGONS["count"][req.split]
    seed = POLYGONS["seed"][req.split]
    params = {k: POLYGONS[k] for k in ("n_vertices", "min_segment_angle", "scale", "subpixels")}
    key = short_hash([CACHE_VERSION, "polygons", params, seed, count, req.resolution])
    path = cache_path("polygons", req.split, req.resolution, key)
    images = cached(path, lambda: polygons_uint8(count, seed, req.resolution),
                    {"name": "polygons", "seed": seed, "count": count, "resolution": req.resolution})
    return images_dataset("polygons", req.split, images, cache=str(path), seed=seed, source="generated")
