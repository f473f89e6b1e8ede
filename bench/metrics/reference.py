"""Real-side features, cached on disk: computed once per (dataset, split, resolution, real images,
extractor, weights, sample count), then every score computes only the generated side.

A reference file ``$GAN_BENCH_CACHE/reference/<hash of the key>.pt`` holds the real features (and
class logits), FID's (mu, sigma) and the real samples' exact k-NN radii for density/coverage (k =
``dc_k``) and for precision (k = ``prc_k``), so that a score computes k-NN balls only for the
generated side; it is written atomically and read with ``weights_only=True``. The key includes a
sha256 of the real samples themselves, so changed data never meets stale features. ``computations``
counts real-side computations in this process.

KID's real-side subset sums (``bench.metrics.kid``: sum over j != j' in each real subset of k(y_j,
y_j'), which depend on the subset draw, the kernel and the counts) are kept beside the reference
file, one small file per setting (``RealTerms``), so that every trial of a study after the first
computes only KID's generated and cross terms.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics

from bench.io import atomic_torch_save
from bench.metrics.defaults import DEFAULTS
from bench.metrics.extractor import Extractor, cache_root
from bench.metrics.knn import knn_radii

FORMAT = "gan-bench/reference/2"  # 2: precision radii (prc_k) added
computations = 0  # real-side feature computations in this process (the cache's tests read it)
log = logging.getLogger("bench.metrics")


@dataclass
class Reference:
    features: torch.Tensor             # [n_real, D] float32
    logits: torch.Tensor | None        # [n_real, K] or None
    fid_stats: dict[str, np.ndarray]   # {"mu", "sigma"} from torch-fidelity's fid_features_to_statistics
    radii: torch.Tensor                # k-NN radii for density/coverage, k = key["dc_k"] (float64 [n_real])
    key: dict
    path: Path | None = None
    prc_radii: torch.Tensor | None = None  # k-NN radii for precision, k = key["prc_k"] (float64 [n_real])
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # real-side terms (KID): RealTerms when cached


def reference_key(ds, real: torch.Tensor, extractor: Extractor, dc_k: int, prc_k: int = DEFAULTS["prc_k"]) -> dict:
    data = real.detach().cpu().contiguous()
    return {"format": FORMAT, "dataset": ds.name, "split": ds.split, "resolution": ds.info.get("resolution"),
            "real_sha256": hashlib.sha256(data.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest(),
            "n_real": len(real), "extractor": extractor.name, "weights_sha256": extractor.weights_sha256,
            "feature_layer": extractor.feature_layer, "dc_k": dc_k, "prc_k": prc_k}


def reference_path(key: dict) -> Path:
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_root() / "reference" / f"{key['dataset'].replace('/', '_').replace(':', '_')[:40]}-{h}.pt"


class RealTerms(dict):
    """Real-side terms of one reference: in memory, and for tuple keys starting with "kid" also in a
    file beside the reference (``<reference>.<hash of the term's key>.pt``, written atomically, read with
    ``weights_only=True``; an unreadable one is recomputed). Other entries (the subset indices, cheap
    to redraw) stay in memory."""

    def __init__(self, reference: Path):
        super().__init__()
        self.reference = reference

    def _file(self, key: tuple) -> Path:
        h = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]
        return self.reference.with_name(f"{self.reference.stem}.{key[0]}-{h}.pt")

    @staticmethod
    def _on_disk(key) -> bool:
        return isinstance(key, tuple) and bool(key) and key[0] == "kid"

    def get(self, key, default=None):
        if key in self or not self._on_disk(key):
            return super().get(key, default)
        try:
            b = torch.load(self._file(key), map_location="cpu", weights_only=True)
            if not (isinstance(b, dict) and b.get("key") == [str(k) for k in key] and isinstance(b.get("value"), torch.Tensor)):
                raise ValueError("foreign or mismatched file")
        except FileNotFoundError:
            return default
        except Exception as e:  # torn or foreign: recompute (and overwrite)
            log.warning("reference term %s unreadable (%s); recomputing", self._file(key), e)
            return default
        super().__setitem__(key, b["value"])
        return b["value"]

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if self._on_disk(key):
            try:
                atomic_torch_save(self._file(key), {"key": [str(k) for k in key], "value": value})
            except OSError as e:  # a read-only cache costs time, not correctness
                log.warning("could not write reference term %s (%s)", self._file(key), e)


def compute(real: torch.Tensor, extractor: Extractor, key: dict, batch_size: int = 64) -> Reference:
    """Extract the real side's features and statistics (no cache)."""
    global computations
    computations += 1
    feats = extractor(real, batch_size)
    f = feats[extractor.feature_layer]
    logits = feats.get(extractor.logits_layer) if extractor.logits_layer else None
    dev = extractor.device
    return Reference(f, logits, fid_features_to_statistics(f), knn_radii(f, key["dc_k"], dev), key,
                     prc_radii=knn_radii(f, key["prc_k"], dev))


def load_or_compute(ds, real: torch.Tensor, extractor: Extractor, *, dc_k: int, prc_k: int = DEFAULTS["prc_k"],
                    batch_size: int = 64, cache: bool = True) -> Reference:
    key = reference_key(ds, real, extractor, dc_k, prc_k)
    if not cache:
        return compute(real, extractor, key, batch_size)
    path = reference_path(key)
    ref = _read(path, key)
    if ref is None:
        ref = compute(real, extractor, key, batch_size)
        blob = {"format": FORMAT, "key": json.dumps(key, sort_keys=True), "features": ref.features,
                "logits": ref.logits, "mu": torch.from_numpy(ref.fid_stats["mu"]),
                "sigma": torch.from_numpy(ref.fid_stats["sigma"]), "radii": ref.radii, "prc_radii": ref.prc_radii}
        try:
            atomic_torch_save(path, blob)
        except OSError as e:  # a read-only cache costs time, not correctness
            log.warning("could not write reference cache %s (%s)", path, e)
    ref.path = path
    ref.memo = RealTerms(path)
    return ref


def _read(path: Path, key: dict) -> Reference | None:
    try:
        b = torch.load(path, map_location="cpu", weights_only=True)
        if not (isinstance(b, dict) and b.get("format") == FORMAT and json.loads(b["key"]) == key):
            raise ValueError("foreign or mismatched file")
        stats = {"mu": b["mu"].numpy(), "sigma": b["sigma"].numpy()}
        return Reference(b["features"], b["logits"], stats, b["radii"], key, path, prc_radii=b["prc_radii"])
    except FileNotFoundError:
        return None
    except Exception as e:  # torn or foreign: recompute and overwrite
        log.warning("reference cache %s unreadable (%s); recomputing", path, e)
        return None
