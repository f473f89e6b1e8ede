"""Scoring: samples -> features -> statistics -> metrics, with provenance.

    from bench.metrics import score_samples, score_checkpoint
    score_checkpoint("runs/ring8-ns")                      # a run's latest checkpoint, its dataset
    score_samples(points, "ring8", metrics=["fid", "modes"])

``Scorer`` does the setup once (dataset, extractor, cached real side) and scores many sample sets:
``bench train`` keeps one for all checkpoints of a run. Every score carries ``provenance``: what
was compared with what, through which network, how it was resized, by which library versions.
A sample set holding non-finite values gets NaN for every feature-based metric (Lucic et al. give
such checkpoints a sentinel FID and never drop them); ``provenance.nonfinite_samples`` counts them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import torch

from bench.errors import UsageError
from bench.metrics import reference, registry
from bench.metrics.defaults import DEFAULTS
from bench.metrics.extractor import Extractor
from bench.metrics.samples import Generate, check, sampler

MIN_SAMPLES = DEFAULTS["dc_k"] + 1  # k-NN radii (density/coverage, k = 5) need k + 1 samples


@dataclass
class Features:
    samples: torch.Tensor              # points [N, 2] or uint8 images [N, C, H, W]
    features: torch.Tensor | None      # extractor.feature_layer
    logits: torch.Tensor | None        # extractor.logits_layer
    labels: torch.Tensor | None = None  # the classes a conditional G was asked for (int64 [N]), else None


@dataclass
class Context:
    dataset: Any                       # bench.datasets.Dataset
    info: Any                          # its registration, bench.datasets.DatasetInfo (info.modes...)
    extractor: Extractor
    classifier: Extractor | None       # for modes defined by classes (info.modes.classifier)
    params: dict
    provenance: dict = field(default_factory=dict)


def _count(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < MIN_SAMPLES:
        raise UsageError(f"{what} must be an integer >= {MIN_SAMPLES}, got {n!r}")
    return n


class Scorer:
    """Scores sample sets against one dataset split with fixed metrics, extractor and sample counts."""

    def __init__(self, dataset: str, *, metrics: list[str] | None = None, extractor: str | None = None,
                 n: int | None = None, fe_weights: str | None = None, split: str = DEFAULTS["split"],
                 resolution: int | None = None, data_root: str | None = None, device: str | torch.device = "cpu",
                 cache: bool = True, probe: Generate | None = None, primary: bool = True):
        """``probe``: the generator to be scored; two of its samples are checked against the dataset
        before any real-side work (a generator that does not fit fails fast and writes no cache).
        ``primary``: also compute the dataset's primary metric (``bench rescore`` scores exactly the
        metrics its protocols name, so it turns this off)."""
        from bench import datasets

        info = datasets.describe(dataset)
        metric_list = registry.check_metrics(list(metrics) if metrics else ["default"])
        if extractor is not None:
            registry.check_extractor(extractor)
        if n is not None:
            _count(n, "the number of samples (--samples)")
        if "modes" in metric_list and info.modes is None:
            with_modes = ", ".join(d for d in datasets.names() if datasets.describe(d).modes)
            raise UsageError(f"metric modes applies to datasets with modes ({with_modes}), not {dataset}")
        ds = datasets.get(dataset, root=data_root, resolution=resolution, split=split)
        if "intra_fid" in metric_list and not ds.classes:
            from bench.data.registry import labelled

            raise UsageError(f"metric intra_fid needs a labelled dataset ({', '.join(labelled())}), not {dataset}")
        if probe is not None:
            check(probe(2), ds, 2)
        self.dataset, self.info, self.device, self.params = ds, info, torch.device(device), dict(DEFAULTS)
        name = extractor or info.extractor
        if ds.kind == "points" and name != "identity":
            raise UsageError(f"{ds.name} is 2-D point data: only the identity extractor applies, not {name}")
        self.extractor = registry.get_extractor(name, fe_weights, self.device)
        # the dataset's ranking metric: it must see what the data is about (bench.data.registry.KIND_DEFAULTS)
        self.primary = info.primary
        if registry.family_of(self.primary) is None:
            raise UsageError(f"{ds.name}'s primary metric {self.primary!r} is produced by no registered metric")
        self.metrics = _expand(metric_list + ([registry.family_of(self.primary)] if primary else []), ds, self.extractor)
        self.classifier = None  # for modes defined by classes (digits-cnn on digits)
        if "modes" in self.metrics and info.modes.by == "classes":
            clf = info.modes.classifier
            self.classifier = self.extractor if name == clf else registry.get_extractor(clf, None, self.device)
        self.n = n if n is not None else info.samples
        self.n_real = self.n if ds.n is None else min(self.n, ds.n)
        _count(self.n_real, f"the real side ({ds.name} {split} has {ds.n})")
        self.reference = None
        if any(registry.metric_entry(m).needs == "features" for m in self.metrics):
            real = ds.real(self.n_real) if ds.kind == "points" else ds.uint8(self.n_real)
            self.reference = reference.load_or_compute(ds, real, self.extractor, dc_k=self.params["dc_k"],
                                                       batch_size=self.params["fe_batch_size"], cache=cache)

    def score(self, samples_or_generate_fn: torch.Tensor | Generate) -> dict[str, Any]:
        """Metric values, ``primary`` (``{"metric", "value", "lower_is_better"}``: the dataset's ranking
        metric, always computed) and ``provenance``; samples are float in the model range or uint8 images."""
        x = samples_or_generate_fn
        labels = None
        if isinstance(x, torch.Tensor):
            n = _count(len(x), "the number of samples")  # given samples are scored all
        else:
            n = self.n
            labels = x.labels(n) if hasattr(x, "labels") else None  # a conditional generator's classes
            x = x(n)
        x, nonfinite = check(x, self.dataset, n)
        ex = self.extractor
        feats = ex(x, self.params["fe_batch_size"])
        gen = Features(x, feats[ex.feature_layer], feats.get(ex.logits_layer) if ex.logits_layer else None, labels)
        ctx = Context(self.dataset, self.info, ex, self.classifier, self.params, self._provenance(n, nonfinite))
        out: dict[str, Any] = {}
        for m in self.metrics:
            entry = registry.metric_entry(m)
            if nonfinite and entry.needs != "samples":  # a NaN generator is a failed score (Lucic: never dropped)
                out.update(dict.fromkeys(entry.keys, math.nan))
            else:
                out.update(registry.metric_fn(m)(gen, self.reference, ctx))
        out = {k: _plain(v) for k, v in out.items()}
        if self.primary in out:
            out["primary"] = {"metric": self.primary, "value": out[self.primary],
                              "lower_is_better": registry.lower_is_better(self.primary)}
        return {**out, "provenance": ctx.provenance}

    def _provenance(self, n: int, nonfinite: int) -> dict[str, Any]:
        ds, ex = self.dataset, self.extractor
        p = {"dataset": ds.name, "real_split": ds.split, "resolution": ds.info.get("resolution"),
             "extractor": ex.name, "feature_layer": ex.feature_layer, "weights_sha256": ex.weights_sha256,
             "resize": ex.resize if ds.kind == "images" else "none", "n_generated": n, "n_real": self.n_real,
             "nonfinite_samples": nonfinite, "metrics": list(self.metrics),
             "torch_fidelity": _version("torch-fidelity"), "gan_bench": _version("gan-bench")}
        if ds.kind == "images" and ex.rgb and ds.shape[0] == 1:
            p["channels"] = "grayscale tiled to 3"
        if ds.info.get("resize"):
            p["data_resize"] = ds.info["resize"]
        if self.reference is not None and self.reference.path is not None:
            p["reference"] = self.reference.path.name
        return p


def _expand(requested: list[str], ds, extractor: Extractor) -> list[str]:
    """Metric names with "default" expanded to the dataset's; IS dropped from defaults without logits."""
    from bench.data.registry import default_metrics

    names: list[str] = []
    for m in requested:
        for x in default_metrics(ds.name) if m == "default" else [m]:
            names += [x] if x not in names else []
    if "is" in names and extractor.logits_layer is None:
        if "is" in requested:
            raise UsageError(f"metric is needs class logits; the {extractor.name} extractor has none "
                             "(use digits-cnn or inception-v3-compat)")
        names.remove("is")
    return names


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        v = v.item()
    return float(v) if isinstance(v, float) else v


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "unknown"


def score_samples(samples_or_generate_fn: torch.Tensor | Generate, dataset: str, *, metrics: list[str] | None = None,
                  extractor: str | None = None, n: int | None = None, fe_weights: str | None = None,
                  split: str = DEFAULTS["split"], **kw: Any) -> dict[str, Any]:
    """Score samples (a tensor, or ``n -> samples``) against ``dataset``; see ``Scorer`` for ``kw``."""
    is_tensor = isinstance(samples_or_generate_fn, torch.Tensor)
    if is_tensor and n is None:
        n = len(samples_or_generate_fn)
    return Scorer(dataset, metrics=metrics, extractor=extractor, n=n, fe_weights=fe_weights, split=split,
                  probe=None if is_tensor else samples_or_generate_fn, **kw).score(samples_or_generate_fn)


def score_checkpoint(path_or_run_dir: str | Path, *, dataset: str | None = None, seed: int = DEFAULTS["seed"],
                     device: str | torch.device = "cpu", **kw: Any) -> dict[str, Any]:
    """Score a checkpoint written by ``bench train`` (a run directory means its latest checkpoint).

    The dataset, resolution and data root default to the run's; z is drawn from the run's prior.
    """
    from bench.checkpoint import load_generator, resolve_checkpoint

    ck = resolve_checkpoint(path_or_run_dir)
    G, cfg = load_generator(ck, device)
    kw.setdefault("resolution", cfg.resolution)
    kw.setdefault("data_root", cfg.data_root)
    out = score_samples(sampler(G, cfg.z_dim, cfg.z_dist, seed=seed, device=device), dataset or cfg.dataset,
                        device=device, **kw)
    out["provenance"].update(checkpoint=str(ck), z_dist=cfg.z_dist, seed=seed)
    return out


def score_generator_file(path: str | Path, z_dim: int, dataset: str, *, seed: int = DEFAULTS["seed"],
                         device: str | torch.device = "cpu", **kw: Any) -> dict[str, Any]:
    """Score a ``torch.export`` program (.pt2) mapping z ~ N(0, I) [N, z_dim] to samples."""
    from bench.metrics.generator_file import load_generator_file

    gen = sampler(load_generator_file(path), z_dim, "normal", seed=seed, device=device)
    out = score_samples(gen, dataset, device=device, **kw)
    out["provenance"].update(generator=str(path), z_dist="normal", seed=seed)
    return out


def json_safe(d: Any) -> Any:
    """Non-finite floats as strings ("nan", "inf"), like the training records: strict JSON."""
    if isinstance(d, dict):
        return {k: json_safe(v) for k, v in d.items()}
    if isinstance(d, list):
        return [json_safe(v) for v in d]
    return str(d) if isinstance(d, float) and not math.isfinite(d) else d


def checkpoint_scorer(cfg, device: str | torch.device) -> Callable[[int, str, torch.nn.Module], dict[str, Any]]:
    """For ``bench train``: ``(step, checkpoint path relative to the run, G) -> scores row``.

    Set up once, before training starts (bad metric names, weights or sample counts fail early).
    Scoring leaves the global RNG (CPU and CUDA) exactly as it found it.
    """
    device = torch.device(device)
    extra = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=extra):
        scorer = Scorer(cfg.dataset, metrics=cfg.metrics, extractor=cfg.feature_extractor, n=cfg.eval_samples,
                        fe_weights=cfg.fe_weights, resolution=cfg.resolution,
                        data_root=cfg.data_root, device=device)

    def score(step: int, ckpt: str, G: torch.nn.Module) -> dict[str, Any]:
        with torch.random.fork_rng(devices=extra):
            G.eval()
            s = scorer.score(sampler(G, cfg.z_dim, cfg.z_dist, seed=DEFAULTS["seed"], device=device))
        s["provenance"].update(z_dist=cfg.z_dist, seed=DEFAULTS["seed"])
        return json_safe({"step": step, "checkpoint": ckpt, **s})

    return score
