"""Mode coverage: which parts of the data distribution the generator reaches.

2-D mixtures (ring8, grid25; the setup of Metz et al. 2017 and Srivastava et al. 2017): a sample is
*high quality* when it lies within 3 std of some centre; a mode is *covered* when at least 1% of all
samples lie within 3 std of its centre.

    modes       = #covered modes (of modes_total)
    hq_fraction = #high-quality samples / #samples
    mode_kl     = KL(h || uniform) = sum_k h_k log(K h_k), h = histogram of the high-quality samples
                  over their nearest centres (0 = perfectly balanced; null when no sample is HQ)

Note that even the true mixture has hq_fraction = 1 - exp(-9/2) = 0.989 in 2-D.

digits: classes predicted by ``digits-cnn`` stand in for modes: a class is covered when at least 1% of
the samples are predicted as it, and ``mode_kl = KL(h || q)`` with h the predicted class histogram and
q the class frequencies of the labelled data.
"""
from __future__ import annotations

import torch


def _kl(p: torch.Tensor, q: torch.Tensor) -> float:
    m = p > 0
    return float((p[m] * (p[m] / q[m]).log()).sum())


def mixture_modes(points: torch.Tensor, centres: torch.Tensor, std: float, *, radius_std: float = 3.0,
                  min_fraction: float = 0.01) -> dict[str, float | int | None]:
    d = torch.cdist(points.double().cpu(), centres.double().cpu())  # [N, K]; NaN rows are never near
    near = d <= radius_std * std
    hq = near.any(1)
    k = centres.shape[0]
    covered = int((near.sum(0) >= min_fraction * len(points)).sum())
    n_hq = int(hq.sum())
    kl = None
    if n_hq:
        h = torch.bincount(d[hq].argmin(1), minlength=k).double() / n_hq
        kl = _kl(h, torch.full((k,), 1.0 / k, dtype=torch.float64))
    return {"modes": covered, "modes_total": k, "hq_fraction": n_hq / len(points), "mode_kl": kl}


def class_modes(logits: torch.Tensor, class_hist: torch.Tensor, *, min_fraction: float = 0.01) -> dict[str, float | int]:
    k = logits.shape[1]
    h = torch.bincount(logits.argmax(1), minlength=k).double() / len(logits)
    return {"modes": int((h >= min_fraction).sum()), "modes_total": k, "mode_kl": _kl(h, class_hist.double())}


def metric(gen, ref, ctx) -> dict:
    p, ds = ctx.params, ctx.dataset
    ctx.provenance.update(mode_radius_std=p["mode_radius_std"], mode_min_fraction=p["mode_min_fraction"])
    if ds.kind == "points":
        return mixture_modes(gen.samples, ds.centres, ds.std, radius_std=p["mode_radius_std"],
                             min_fraction=p["mode_min_fraction"])
    clf = ctx.classifier
    logits = gen.logits if clf is ctx.extractor else clf(gen.samples, p["fe_batch_size"])["logits"]
    ctx.provenance.update(mode_classifier=clf.name, mode_classifier_sha256=clf.weights_sha256)
    return class_modes(logits, clf.module.class_hist, min_fraction=p["mode_min_fraction"])


