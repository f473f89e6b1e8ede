"""FID, KID, precision/recall and IS: torch-fidelity 0.4's own feature -> metric functions.

Convention (torch-fidelity's): input 1 is the generated side, input 2 the real side.

- FID (Heusel et al. 2017): ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2)) of Gaussians fitted
  to the features; the real side's (mu_r, S_r) come from the reference cache.
- KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean (and std) over
  ``kid_subsets`` random subsets of ``kid_subset_size = min(1000, n_generated, n_real)`` per side.
- Precision / recall (Kynkaanniemi et al. 2019): the fraction of generated samples inside the real
  manifold (union of k-NN balls, k = 3) and of real samples inside the generated one; F = harmonic mean.
- IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over ``min(10, n)`` splits, from logits.
"""
from __future__ import annotations

from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric


def fid(gen, ref, ctx) -> dict[str, float]:
    stats = fid_features_to_statistics(gen.features)
    return {"fid": fid_statistics_to_metric(stats, ref.fid_stats, verbose=False)[KEY_METRIC_FID]}


def kid(gen, ref, ctx) -> dict[str, float]:
    size = min(ctx.params["kid_subset_size"], len(gen.features), len(ref.features))
    ctx.provenance.update(kid_subset_size=size, kid_subsets=ctx.params["kid_subsets"])
    out = kid_features_to_metric(gen.features, ref.features, kid_subset_size=size, kid_subsets=ctx.params["kid_subsets"],
                                 rng_seed=ctx.params["rng_seed"], verbose=False)
    return {"kid": out[KEY_METRIC_KID_MEAN], "kid_std": out[KEY_METRIC_KID_STD]}


def prc(gen, ref, ctx) -> dict[str, float]:
    ctx.provenance.update(prc_k=ctx.params["prc_k"])
    return prc_features_to_metric(gen.features, ref.features, prc_neighborhood=ctx.params["prc_k"],
                                  save_cpu_ram=True, verbose=False)


def inception_score(gen, ref, ctx) -> dict[str, float]:
    splits = min(ctx.params["is_splits"], len(gen.logits))
    ctx.provenance.update(is_splits=splits)
    out = isc_features_to_metric(gen.logits, splits=splits, shuffle=True, rng_seed=ctx.params["rng_seed"])
    return {"is": out[KEY_METRIC_ISC_MEAN], "is_std": out[KEY_METRIC_ISC_STD]}
