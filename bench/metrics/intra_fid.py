"""Intra-class FID (Miyato & Koyama 2018, "cGANs with Projection Discriminator", Sec. 5.1): for a
class-conditional generator, the FID between the samples it was asked to make of class c and the
real samples of class c, averaged over the classes,

    intra-FID = (1 / |C|) sum_{c in C} FID(features of G(z, c), features of real x with label c),

each FID torch-fidelity's (``fid_features_to_statistics``, ``fid_statistics_to_metric``) on the
dataset's extractor features (digits-cnn on digits). C: the classes with more samples than feature
dimensions on both sides, and at least ``MIN_PER_CLASS`` (a covariance of fewer is singular, and its
FID mostly the estimator's bias); ``intra_fid_classes`` = |C|. The
real side is the reference set (the split's first n_real images) with its labels. An unconditional
generator has no classes asked for: NaN.
"""
from __future__ import annotations

import math

import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

MIN_PER_CLASS = 10


def per_class(gen_features: torch.Tensor, gen_labels: torch.Tensor, real_features: torch.Tensor,
              real_labels: torch.Tensor, min_per_class: int = MIN_PER_CLASS) -> dict[int, float]:
    """FID of each class with at least ``min_per_class`` samples, and more than the feature
    dimension, on both sides."""
    min_per_class = max(min_per_class, gen_features.shape[1] + 1)
    out = {}
    for c in sorted(set(gen_labels.tolist()) & set(real_labels.tolist())):
        g, r = gen_features[gen_labels == c], real_features[real_labels == c]
        if len(g) >= min_per_class and len(r) >= min_per_class:
            stats_g, stats_r = fid_features_to_statistics(g), fid_features_to_statistics(r)
            out[c] = float(fid_statistics_to_metric(stats_g, stats_r, verbose=False)[KEY_METRIC_FID])
    return out


def metric(gen, ref, ctx) -> dict[str, float]:
    if gen.labels is None:
        return {"intra_fid": math.nan, "intra_fid_classes": 0}
    real_labels = ctx.dataset.labels[: len(ref.features)].cpu()
    fids = per_class(gen.features.cpu(), gen.labels.cpu(), ref.features.cpu(), real_labels)
    ctx.provenance.update(intra_fid_min_per_class=MIN_PER_CLASS)
    return {"intra_fid": sum(fids.values()) / len(fids) if fids else math.nan, "intra_fid_classes": len(fids)}
