"""Registries of feature extractors and metric families, chosen by name.

An entry is a callable or a ``"module:attribute"`` string resolved on first use, so that listing and
validating names (``bench score --metrics typo``) does not import torch-fidelity.

- extractor factory: ``factory(weights: str | None, device) -> Extractor`` (bench.metrics.extractor), with
  the torch-fidelity class it wraps (registered in torch-fidelity's registry under the same name)
- metric function: ``fn(gen: Features, ref: Reference | None, ctx: Context) -> dict[str, float]``
  (bench.metrics.score); ``needs`` says what it reads: "features" (with the real side),
  "logits" (generated side only) or "samples" (the raw samples, e.g. 2-D points).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import UsageError
from bench.lazy import resolve

_NEEDS = ("features", "logits", "samples")


@dataclass(frozen=True)
class MetricEntry:
    name: str
    fn: Callable | str
    needs: str
    keys: tuple[str, ...]
    higher_is_better: tuple[str, ...] = ()  # keys where higher is better; the others are lower-better...
    columns: tuple[str, ...] = ()  # keys a study's results row keeps (from a trial's last checkpoint)
    descriptive: tuple[str, ...] = ()  # ...except these: they describe the measurement, not the generator

    def orientation(self, key: str) -> str:
        """``higher``, ``lower`` (is better), or ``none`` (a descriptive key: nothing to rank by)."""
        return "none" if key in self.descriptive else "higher" if key in self.higher_is_better else "lower"


_EXTRACTORS: dict[str, "ExtractorEntry"] = {}
_METRICS: dict[str, MetricEntry] = {}
_BUILT: dict[tuple, Any] = {}  # recently built extractors (see get_extractor)
_KEEP = 3


def _check_name(name: Any, table: dict, what: str) -> None:
    if not isinstance(name, str) or not name or name.strip() != name or "/" in name or "," in name:
        raise ValueError(f"{what} name must be a non-empty string without spaces, '/' or ',': {name!r}")
    if name in table:
        raise ValueError(f"{what} {name!r} is already registered")


def _resolve(obj: Callable | str) -> Callable:
    return resolve(obj)


@dataclass(frozen=True)
class ExtractorEntry:
    name: str
    factory: Callable | str   # factory(weights, device) -> bench.metrics.extractor.Extractor
    fidelity: Callable | str | None  # its torch_fidelity.FeatureExtractorBase class; None: torch-fidelity has it


def register_extractor(name: str, factory: Callable | str, *, fidelity: Callable | str | None = None) -> None:
    """Register ``factory(weights, device) -> Extractor`` under ``name``, and with it the
    ``torch_fidelity.FeatureExtractorBase`` subclass ``fidelity`` under the same name in torch-fidelity's
    registry (so ``torch_fidelity.calculate_metrics(feature_extractor=name)`` computes the same features);
    that happens on first use (``get_extractor``, ``register_with_torch_fidelity``), not at import.
    ``fidelity=None``: a name torch-fidelity registers itself (``inception-v3-compat``)."""
    _check_name(name, _EXTRACTORS, "feature extractor")
    for what, obj in (("factory", factory), ("fidelity class", fidelity)):
        if obj is not None and not (callable(obj) or (isinstance(obj, str) and ":" in obj)):
            raise ValueError(f"extractor {what} must be callable or 'module:attr', got {obj!r}")
    _EXTRACTORS[name] = ExtractorEntry(name, factory, fidelity)


def register_metric(name: str, fn: Callable | str, *, needs: str, keys: tuple[str, ...],
                    higher_is_better: tuple[str, ...] = (), columns: tuple[str, ...] | None = None,
                    descriptive: tuple[str, ...] = ()) -> None:
    """Register a metric family ``fn(gen, ref, ctx) -> dict`` producing ``keys``; ``higher_is_better``
    names the keys where higher is better (precision, modes...); ``descriptive`` the keys that
    describe the measurement rather than score the generator (the number of modes there are, the
    spread of an estimate over subsets): no verdict ranks by them; every other key is lower-better.
    ``columns``: the keys a study's results table keeps as columns (default: all of them)."""
    _check_name(name, _METRICS, "metric")
    if needs not in _NEEDS:
        raise ValueError(f"needs must be one of {_NEEDS}, got {needs!r}")
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"metric {name!r} must declare its output keys")
    if not set(higher_is_better) <= set(keys):
        raise ValueError(f"metric {name!r}: higher_is_better names keys it does not produce")
    if not set(descriptive) <= set(keys) or set(descriptive) & set(higher_is_better):
        raise ValueError(f"metric {name!r}: descriptive names keys it does not produce, or higher-better ones")
    columns = tuple(keys) if columns is None else tuple(columns)
    if not set(columns) <= set(keys):
        raise ValueError(f"metric {name!r}: columns names keys it does not produce")
    taken = {k: e.name for e in _METRICS.values() for k in e.keys}
    clash = [k for k in keys if k in taken]
    if clash:
        raise ValueError(f"metric {name!r}: key {clash[0]!r} is already produced by metric {taken[clash[0]]!r}")
    _METRICS[name] = MetricEntry(name, fn, needs, tuple(keys), tuple(higher_is_better), columns, tuple(descriptive))


def extractor_names() -> list[str]:
    return sorted(_EXTRACTORS)


def metric_names() -> list[str]:
    return list(_METRICS)


def check_extractor(name: str) -> str:
    if name not in _EXTRACTORS:
        raise UsageError(f"unknown feature extractor '{name}'; known: {', '.join(extractor_names())}")
    return name


def check_metrics(names: list[str]) -> list[str]:
    for m in names:
        if m not in _METRICS and m != "default":
            raise UsageError(f"unknown metric '{m}'; known: {', '.join(metric_names())} (or 'default')")
    return list(names)


def get_extractor(name: str, weights: str | None = None, device: Any = "cpu"):
    """The extractor ``name`` ready to use (``bench.metrics.extractor.Extractor``).

    The last few are kept in memory (Inception takes seconds to load), keyed by name, device and the
    weights file's path, size and mtime, so re-scoring many checkpoints builds each extractor once.
    """
    key = (check_extractor(name), str(device), _stamp(weights), _stamp(os.environ.get("GAN_BENCH_INCEPTION_WEIGHTS")),
           os.environ.get("TORCH_HOME"), os.environ.get("GAN_BENCH_CACHE"))
    if key not in _BUILT:
        register_with_torch_fidelity(name)
        ex = _resolve(_EXTRACTORS[name].factory)(weights, device)
        while len(_BUILT) >= _KEEP:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = ex
    return _BUILT[key]


def register_with_torch_fidelity(*names: str) -> None:
    """Put our extractors (all, or ``names``) into torch-fidelity's registry, each under its name."""
    import torch_fidelity
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    for e in (_EXTRACTORS[n] for n in names) if names else _EXTRACTORS.values():
        if e.fidelity is not None and e.name not in FEATURE_EXTRACTORS_REGISTRY:
            torch_fidelity.register_feature_extractor(e.name, _resolve(e.fidelity))


def _stamp(path: str | None) -> tuple | None:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return (path,)
    return None if st is None else (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def result_columns() -> tuple[str, ...]:
    """Every registered metric's results-table columns, in registration order (plugins' included)."""
    return tuple(k for e in _METRICS.values() for k in e.columns)


def family_of(key: str) -> str | None:
    """The metric family that produces a score key (``precision`` -> ``prc``), None if none does."""
    return next((e.name for e in _METRICS.values() if key in e.keys), None)


def lower_is_better(key: str) -> bool | None:
    """Orientation of a metric key (``fid``, ``precision``...): None when no metric produces it or
    the key is descriptive (``modes_total``: see ``register_metric``)."""
    family = family_of(key)
    if family is None or key in _METRICS[family].descriptive:
        return None
    return key not in _METRICS[family].higher_is_better


def metric_entry(name: str) -> MetricEntry:
    check_metrics([name])
    return _METRICS[name]


def metric_fn(name: str) -> Callable:
    return _resolve(metric_entry(name).fn)


# -- built-ins ---------------------------------------------------------------------------------
_X = "bench.metrics.feature_extractor_"
register_extractor("identity", f"{_X}identity:build", fidelity=f"{_X}identity:FeatureExtractorIdentity")
register_extractor("digits-cnn", f"{_X}digits_cnn:build", fidelity=f"{_X}digits_cnn:FeatureExtractorDigitsCNN")
register_extractor("digits-cnn-channels", f"{_X}digits_cnn:build_channels",
                   fidelity=f"{_X}digits_cnn:FeatureExtractorDigitsCNNChannels")
register_extractor("inception-v3-compat", f"{_X}inception:build")  # torch-fidelity's own

# (columns: what results tables have carried since the first studies; every key stays in scores.jsonl)
register_metric("fid", "bench.metrics.fidelity:fid", needs="features", keys=("fid",))
register_metric("w1", "bench.metrics.wasserstein:metric", needs="features", keys=("w1",))
register_metric("kid", "bench.metrics.fidelity:kid", needs="features", keys=("kid", "kid_std"), columns=("kid",),
                descriptive=("kid_std",))
register_metric("prc", "bench.metrics.fidelity:prc", needs="features", keys=("precision", "recall", "f_score"),
                higher_is_better=("precision", "recall", "f_score"), columns=("precision", "recall"))
register_metric("dc", "bench.metrics.density_coverage:metric", needs="features", keys=("density", "coverage"),
                higher_is_better=("density", "coverage"), columns=())
register_metric("is", "bench.metrics.fidelity:inception_score", needs="logits", keys=("is", "is_std"),
                higher_is_better=("is",), columns=(), descriptive=("is_std",))
register_metric("intra_fid", "bench.metrics.intra_fid:metric", needs="features", keys=("intra_fid", "intra_fid_classes"),
                columns=("intra_fid",), descriptive=("intra_fid_classes",))
register_metric("modes", "bench.metrics.modes:metric", needs="samples",
                keys=("modes", "modes_total", "hq_fraction", "mode_kl", "modes_mask"), higher_is_better=("modes", "hq_fraction"),
                columns=("modes", "modes_total", "hq_fraction", "mode_kl"), descriptive=("modes_total", "modes_mask"))
