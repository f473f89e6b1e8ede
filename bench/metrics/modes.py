"""Mode coverage: which parts of the data distribution the generator reaches.

2-D mixtures (ring8, grid25; the setup of Metz et al. 2017 and Srivastava et al. 2017): a sample is
*high quality* when it lies within 3 std of some centre; a mode is *covered* when at least 1% of all
samples lie within 3 std of its centre.

    modes       = #covered modes (of modes_total)
    hq_fraction = #high-quality samples / #samples
    mode_kl     = KL(h || uniform) = sum_k h_k log(K h_k), h = histogram of the high-quality samples
                  over their nearest centres (0 = perfectly balanced; null when no sample is HQ)

Note that even the true mixture has hq_fraction = 1 - exp(-9/2) = 0.989 in 2-D.

    modes_mask  = sum_k 2^k over the covered modes k: *which* modes are covered, so that a run's
                  checkpoints show mode hopping (``bench.health.mode_hops``); exact in a float64 for up
                  to 52 modes (ring8, grid25, digits), null for more (stacked-digits). Descriptive.

Image datasets (digits, stacked-digits): a sample's mode is the tuple of the classes ``digits-cnn``
predicts for its channels, one channel at a time: 10 modes for digits, 10^3 = 1,000 for stacked-digits
(the StackedMNIST count of Metz et al. 2017, VEEGAN, PacGAN). The dataset's registration
(``bench.datasets.Modes``) says when a mode is covered and which histogram ``mode_kl`` compares with:

- digits: a class is covered when at least 1% of the samples are predicted as it, and
  ``mode_kl = KL(h || q)`` with h the predicted class histogram and q the class frequencies of the
  labelled data.
- stacked-digits: a triple is covered when at least one sample falls in it, and
  ``mode_kl = KL(h || uniform over 1,000)``, as Metz et al., VEEGAN and PacGAN count them (the latter
  two on 26,000 samples); the default sample count is 26,000 for that reason (KL of a finite
  sample is biased upwards by about (K - 1) / 2N = 0.019 at N = 26,000, so values compare only at
  equal N). A 1% threshold would make 1,000 modes impossible (at most 100 triples can each hold 1%).
  The classifier labels the channels of real stacked images right 99.74 to 99.86% of the time (per
  channel) and whole triples 99.35% (test split, 10,000 images, 8x8; at 16x16 97.5 to 97.8% and
  93.3%, at 32x32 98.0 to 98.2% and 94.5%, where the upsampled digits are resized back to 8x8 for it).
  It was trained on these very 1,797 digits, so this is its accuracy on the data's own digits, not on
  unseen ones. The real data scored as a generator (the first 26,000 train images against the test
  split) covers 1,000 of 1,000 triples with mode_kl = 0.021 (the next 26,000: 0.019; 10,000 images:
  999 or 1,000 and 0.05): the ceiling a generator can reach. Garbage also lands in some triple: an
  untrained infogan G covers 39 with 2,000 samples.
"""
from __future__ import annotations

import torch


def _kl(p: torch.Tensor, q: torch.Tensor) -> float:
    m = p > 0
    return float((p[m] * (p[m] / q[m]).log()).sum())


MASK_MODES = 52  # a float64 holds every integer below 2^53 exactly


def _mask(covered: torch.Tensor) -> int | None:
    """The covered modes (bool [K]) as the integer sum_k 2^k, or None when K > MASK_MODES."""
    if len(covered) > MASK_MODES:
        return None
    return int(sum(1 << int(k) for k in covered.nonzero().flatten()))


def mixture_modes(points: torch.Tensor, centres: torch.Tensor, std: float, *, radius_std: float = 3.0,
                  min_fraction: float = 0.01) -> dict[str, float | int | None]:
    d = torch.cdist(points.double().cpu(), centres.double().cpu())  # [N, K]; NaN rows are never near
    near = d <= radius_std * std
    hq = near.any(1)
    k = centres.shape[0]
    covered = near.sum(0) >= min_fraction * len(points)
    n_hq = int(hq.sum())
    kl = None
    if n_hq:
        h = torch.bincount(d[hq].argmin(1), minlength=k).double() / n_hq
        kl = _kl(h, torch.full((k,), 1.0 / k, dtype=torch.float64))
    return {"modes": int(covered.sum()), "modes_total": k, "hq_fraction": n_hq / len(points), "mode_kl": kl,
            "modes_mask": _mask(covered)}


def class_modes(classes: torch.Tensor, reference: torch.Tensor, *, min_fraction: float) -> dict[str, float | int]:
    """``classes``: int [N, C], the class (0..9) of each channel; mode = the C digits read as a number.

    A mode is covered when it holds at least one sample and at least ``min_fraction`` of them;
    ``reference``: the [10^C] histogram ``mode_kl`` compares with.
    """
    n, c = classes.shape
    k = 10 ** c
    mode = (classes * 10 ** torch.arange(c - 1, -1, -1)).sum(1)  # (a, b, c) -> 100a + 10b + c
    h = torch.bincount(mode, minlength=k).double() / n
    covered = (h > 0) & (h >= min_fraction)
    return {"modes": int(covered.sum()), "modes_total": k, "mode_kl": _kl(h, reference.double()),
            "modes_mask": _mask(covered)}


def _reference(kl_to: str, class_hist: torch.Tensor, channels: int) -> torch.Tensor:
    """uniform over 10^C modes, or the data's: the product of the per-channel class frequencies."""
    if kl_to == "uniform":
        return torch.full((10 ** channels,), 10.0 ** -channels, dtype=torch.float64)
    q = class_hist.double()
    for _ in range(channels - 1):
        q = torch.outer(q, class_hist.double()).flatten()
    return q


def channel_classes(gen, ctx) -> torch.Tensor:
    """int [N, C]: the classifier's class of each channel of each generated image."""
    x, clf = gen.samples, ctx.classifier
    if clf is ctx.extractor and x.shape[1] == 1:  # the scorer already has these logits
        logits = gen.logits
    else:
        logits = clf(x.flatten(0, 1).unsqueeze(1), ctx.params["fe_batch_size"])["logits"]
    return logits.argmax(1).view(len(x), -1)


def metric(gen, ref, ctx) -> dict:
    """The dataset's mode definition (``ctx.info.modes``, a ``bench.datasets.Modes``) applied to ``gen``."""
    rule, ds = ctx.info.modes, ctx.dataset
    if rule.by == "mixture":
        ctx.provenance.update(mode_radius_std=rule.radius_std, mode_min_fraction=rule.min_fraction)
        return mixture_modes(gen.samples, ds.centres, ds.std, radius_std=rule.radius_std, min_fraction=rule.min_fraction)
    clf = ctx.classifier
    ctx.provenance.update(mode_classifier=clf.name, mode_classifier_sha256=clf.weights_sha256,
                          mode_min_fraction=rule.min_fraction, mode_kl_to=rule.kl_to)
    classes = channel_classes(gen, ctx)
    return class_modes(classes, _reference(rule.kl_to, clf.module.class_hist, classes.shape[1]),
                       min_fraction=rule.min_fraction)
