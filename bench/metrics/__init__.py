"""Metrics: FID, KID, precision/recall, density/coverage, IS and mode coverage on pluggable feature
extractors, with real-side features cached on disk and provenance on every score.

Modules (one per metric family and per extractor, like torch-fidelity):

- ``defaults``: the metric parameters shared by the API and ``bench score`` (what depends on the
  dataset, such as sample counts and default metrics, is in its registration: ``bench.datasets.describe``).
- ``registry``: ``register_extractor`` / ``register_metric``, ``get_extractor``, ``extractor_names``.
- ``feature_extractor_identity``, ``feature_extractor_digits_cnn``, ``feature_extractor_inception``:
  the extractors; each ``register_extractor`` call names its torch-fidelity class too, which goes
  into torch-fidelity's registry under the same name on first use (``register_with_torch_fidelity()``;
  ``inception-v3-compat`` is torch-fidelity's own).
- ``fidelity`` (FID and IS by torch-fidelity's functions, KID and PR by ``kid`` and ``knn`` with
  torch-fidelity's conventions), ``density_coverage``, ``modes``, ``wasserstein``.
- ``knn``: exact k-NN balls (KD-trees, or blocked matmul + topk); ``kid``: KID's subsets batched.
- ``reference``: the on-disk cache of real-side features. ``samples``: drawing and checking samples.
- ``generator_file``: torch.export programs from elsewhere. ``score``: the API below.

The API is imported on first use (``bench.metrics.score_samples``), so that the CLI can validate
names without importing torch-fidelity.
"""
from __future__ import annotations

import importlib
from typing import Any

from bench.metrics.defaults import DEFAULTS
from bench.metrics.registry import (extractor_names, get_extractor, metric_names, register_extractor,
                                    register_metric, register_with_torch_fidelity)

_LAZY = {name: "bench.metrics.score" for name in
         ("Scorer", "score_samples", "score_checkpoint", "score_generator_file", "checkpoint_scorer", "json_safe")}
_LAZY["sampler"] = "bench.metrics.samples"

__all__ = ["DEFAULTS", "extractor_names",
           "get_extractor", "metric_names", "register_extractor", "register_metric",
           "register_with_torch_fidelity", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench.metrics' has no attribute {name!r}")
