"""FID, KID, precision/recall and IS, equal to torch-fidelity 0.4's feature -> metric functions.

Convention (torch-fidelity's): input 1 is the generated side, input 2 the real side.

- FID (Heusel et al. 2017): ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2)) of Gaussians fitted
  to the features; the real side's (mu_r, S_r) come from the reference cache. torch-fidelity's own
  functions.
- KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean (and std) over
  ``kid_subsets`` random subsets of ``kid_subset_size = min(1000, n_generated, n_real)`` per side,
  the subsets drawn exactly as torch-fidelity draws them; all subsets at once (``bench.metrics.kid``).
- Precision / recall (Kynkaanniemi et al. 2019): the fraction of generated samples inside the real
  manifold (union of closed k-NN balls, k = 3) and of real samples inside the generated one;
  F = 2 P R / max(1e-5, P + R) as torch-fidelity. Exact k-NN (``bench.metrics.knn``); the real
  side's radii come from the reference cache.
- IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over ``min(10, n)`` splits, from logits.
  torch-fidelity's own function.

KID and PR compute in float64; torch-fidelity computes in the features' dtype (float32 here), so on
the same float32 features the two differ by its float32 rounding only (for PR: where a distance is
within float32 rounding of a radius, which on 10,000 ring8 points can move a fraction by 1e-4).
"""
from __future__ import annotations

from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

from bench.metrics import kid as _kid
from bench.metrics import knn


def fid(gen, ref, ctx) -> dict[str, float]:
    stats = fid_features_to_statistics(gen.features)
    return {"fid": fid_statistics_to_metric(stats, ref.fid_stats, verbose=False)[KEY_METRIC_FID]}


def kid(gen, ref, ctx) -> dict[str, float]:
    size = min(ctx.params["kid_subset_size"], len(gen.features), len(ref.features))
    mean, std, route = _kid.kid(gen.features, ref.features, subset_size=size, subsets=ctx.params["kid_subsets"],
                                seed=ctx.params["rng_seed"], device=ctx.extractor.device, real_cache=ref.memo)
    ctx.provenance.update(kid_subset_size=size, kid_subsets=ctx.params["kid_subsets"], kid_sums=route)
    return {"kid": mean, "kid_std": std}


def prc(gen, ref, ctx) -> dict[str, float]:
    k = ctx.params["prc_k"]
    ctx.provenance.update(prc_k=k, knn=knn.method(gen.features.shape[1]))
    radii = ref.prc_radii if ref.prc_radii is not None and ref.key.get("prc_k") == k else None
    precision, recall = knn.precision_recall(ref.features, gen.features, k, radii, device=ctx.extractor.device)
    return {"precision": precision, "recall": recall,
            "f_score": 2 * precision * recall / max(1e-5, precision + recall)}


def inception_score(gen, ref, ctx) -> dict[str, float]:
    splits = min(ctx.params["is_splits"], len(gen.logits))
    ctx.provenance.update(is_splits=splits)
    out = isc_features_to_metric(gen.logits, splits=splits, shuffle=True, rng_seed=ctx.params["rng_seed"])
    return {"is": out[KEY_METRIC_ISC_MEAN], "is_std": out[KEY_METRIC_ISC_STD]}
