"""One descriptor per dataset: everything the package knows about it, readable without torch.

A dataset is registered once, with a ``DatasetInfo``: its kind, loader, resolutions, training length,
default arch and search space, default metrics, samples and extractor, primary metric and what its
modes are. Studies (``bench.study``), scoring (``bench.metrics.defaults``) and the CLI read it here,
so listing names and checking a command line (``bench --help``, ``bench run --dataset typo``) never
imports torch: loaders are ``"module:attr"`` strings imported on the first load, as for metrics in
``bench.metrics.registry``. A field left out takes its kind's value (``KIND_DEFAULTS``), so a
plugin dataset declares only what differs::

    from bench.datasets import register

    @register("spiral", kind="points", description="a 2-D spiral", steps=3000)
    def load(req):  # req: bench.datasets.Request -> bench.datasets.Dataset
        ...

This module must import neither torch nor numpy (tests check it in a fresh interpreter).
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from bench.errors import UsageError

KINDS = ("points", "images")
FOLDER_RESOLUTION_RANGE = (4, 1024)  # folder:PATH resizes to any side length in this range

Loader = Callable[["Request"], Any]  # loader(req) -> bench.data.core.Dataset


@dataclass(frozen=True)
class Request:
    """What ``bench.datasets.get`` hands a loader, already validated."""

    name: str            # the registered name ("folder" for folder:PATH)
    split: str
    root: Path           # data root (absolute)
    resolution: int | None
    count: int | None
    arg: str | None = None  # the PATH of folder:PATH


# ----------------------------------------------------------------------------------------------
# Defaults by data kind: what a descriptor gets for a field it leaves out
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KindDefaults:
    arch: str
    space: str
    samples: int
    extractor: str
    metrics: tuple[str, ...]  # "modes" is added for datasets with a mode definition
    primary: str
    steps: int                # training length of a dataset that gives neither steps nor epochs


KIND_DEFAULTS: dict[str, KindDefaults] = {
    # Lucic's ranges were tuned for images; at their learning rates and batch 64 no loss learns ring8's
    # modes in 5,000 steps (README, "Default training lengths"), so 2-D data has its own default space.
    # KID is opt-in for 2-D points: its cubic kernel matches moments up to the third only, so it cannot
    # tell a moment-matched blob from the mixture (a Gaussian with ring8's moments: KID 0.009 +- 0.067).
    # Primary: W1 for points, FID for images (bench.metrics.defaults.primary_metric says why).
    "points": KindDefaults(arch="mlp", space="mixtures-2d", samples=10_000, extractor="identity",
                           metrics=("w1", "fid", "prc", "dc"), primary="w1", steps=1000),
    # Lucic et al. 2018: 10,000 generated vs 10,000 real (test split) images.
    "images": KindDefaults(arch="infogan", space="lucic-wide", samples=10_000, extractor="inception-v3-compat",
                           metrics=("fid", "kid", "prc", "dc", "is"), primary="fid", steps=1000),
}


# ----------------------------------------------------------------------------------------------
# The descriptor
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Modes:
    """What a mode of the dataset is and when it counts as covered (``bench.metrics.modes``).

    ``by="centres"``: 2-D mixtures; a sample is in the mode of the nearest centre within 3 std.
    ``by="classes"``: images; a sample's mode is the tuple of the classes ``digits-cnn`` gives its
    channels, so ``total`` is 10 ** channels (10 for digits, 1,000 for stacked-digits).
    """

    by: str                     # "centres" | "classes"
    total: int                  # number of modes
    min_fraction: float = 0.01  # share of the samples a mode needs (besides one sample) to be covered
    kl_to: str = "uniform"      # histogram mode_kl compares with: "uniform", or "data" (the labels' frequencies)

    @property
    def channels(self) -> int:
        """Digits per mode for ``by="classes"`` (1 for digits, 3 for stacked-digits)."""
        return len(str(self.total)) - 1


@dataclass(frozen=True)
class DatasetInfo:
    """Everything about one dataset. Fields left as None take the kind's value (``KIND_DEFAULTS``);
    the constructor validates and fills them, raising ValueError that names the dataset."""

    name: str
    kind: str                                  # "points" | "images"
    loader: Loader | str                       # loader(req: Request) -> Dataset, or "module:attr"
    description: str = ""                      # one line, for help and `bench list datasets`
    native_resolution: int | None = None       # images: the side length when none is asked for
    resolutions: tuple[int, ...] | range = ()  # images: accepted side lengths (native first); a range: any in it
    takes_arg: bool = False                    # spelled NAME:ARG (folder:PATH)
    takes_count: bool = False                  # get(..., count=) changes the number of images
    steps: int | None = None                   # training length in steps (default: the kind's)...
    epochs: float | None = None                # ...or in epochs, for finite sets (Lucic et al. 2018)
    arch: str | None = None
    space: str | None = None                   # default search space (a sweeps name)
    samples: int | None = None                 # generated samples scored by default
    extractor: str | None = None               # default feature extractor
    metrics: tuple[str, ...] | None = None     # default metric families
    primary: str | None = None                 # the score key leaderboards rank by
    modes: Modes | None = None                 # None: the dataset has no mode metrics

    def __post_init__(self) -> None:
        for key in ("resolutions", "metrics"):  # lists from a plugin are fine; stored as tuples
            if isinstance(getattr(self, key), list):
                object.__setattr__(self, key, tuple(getattr(self, key)))
        problem = next(_problems(self), None)
        if problem is not None:
            raise ValueError(f"dataset {self.name!r}: {problem}")
        kd = KIND_DEFAULTS[self.kind]
        filled = {f: getattr(kd, f) for f in ("arch", "space", "samples", "extractor", "primary")
                  if getattr(self, f) is None}
        if self.metrics is None:
            filled["metrics"] = kd.metrics + (("modes",) if self.modes is not None else ())
        if self.steps is None and self.epochs is None:
            filled["steps"] = kd.steps
        if self.kind == "images":
            native = self.native_resolution or self.resolutions[0]
            rest = self.resolutions if isinstance(self.resolutions, range) else \
                (native, *(r for r in self.resolutions if r != native))
            filled.update(native_resolution=native, resolutions=rest)
        for key, value in filled.items():  # frozen: set once, here
            object.__setattr__(self, key, value)

    # -- use -------------------------------------------------------------------------------------
    @property
    def spelled(self) -> str:
        """The name as ``names()`` lists it (``folder:PATH``)."""
        return f"{self.name}:PATH" if self.takes_arg else self.name

    def load(self, req: Request) -> Any:
        """Call the loader (importing it the first time when it is a "module:attr" string)."""
        return _resolve(self.loader)(req) if isinstance(self.loader, str) else self.loader(req)

    def check_resolution(self, resolution: Any) -> int | None:
        """The side length to load: ``resolution`` if accepted (UsageError if not), else the native one."""
        if self.kind == "points":
            if resolution is not None:
                raise UsageError(f"{self.name} is a 2-D point dataset; resolution does not apply")
            return None
        if resolution is None:
            return self.native_resolution
        if isinstance(resolution, bool) or not isinstance(resolution, int):
            raise UsageError(f"resolution must be an integer, got {resolution!r}")
        if resolution in self.resolutions:
            return resolution
        if isinstance(self.resolutions, range):
            lo, hi = self.resolutions[0], self.resolutions[-1]
            raise UsageError(f"{self.name}: resolution must be between {lo} and {hi}, got {resolution}")
        raise UsageError(f"{self.name}: resolution {resolution} not supported; allowed: "
                         f"{', '.join(map(str, self.resolutions))}")


def _positive(v: Any, types: tuple[type, ...] = (int,)) -> bool:
    return not isinstance(v, bool) and isinstance(v, types) and v > 0


def _power_of_ten(v: int) -> bool:
    return str(v) == "1" + "0" * (len(str(v)) - 1)


def _problems(d: DatasetInfo):
    """What is wrong with a descriptor, first problem first (empty when it is fine)."""
    if not isinstance(d.name, str) or not d.name or d.name.strip() != d.name or any(c in d.name for c in ":,/ "):
        yield "the name must be a non-empty string without spaces, ':', ',' or '/'"
    if d.kind not in KINDS:
        yield f"kind must be points or images, got {d.kind!r}"
    if not (callable(d.loader) or (isinstance(d.loader, str) and ":" in d.loader)):
        yield f"loader must be callable or a 'module:attr' string, got {d.loader!r}"
    if not isinstance(d.description, str) or "\n" in d.description:
        yield "description must be one line of text"
    if d.kind == "points" and (d.native_resolution is not None or len(d.resolutions)):
        yield "a point dataset must not declare resolutions"
    if d.kind == "images":
        res = d.resolutions
        if not isinstance(res, (tuple, range)) or not all(_positive(r) for r in res):
            yield f"resolutions must be positive integers, got {res!r}"
        elif d.native_resolution is None and not len(res):
            yield "an image dataset must declare native_resolution (or resolutions, native first)"
        elif d.native_resolution is not None and not _positive(d.native_resolution):
            yield f"native_resolution must be a positive integer, got {d.native_resolution!r}"
        elif len(res) and d.native_resolution is not None and d.native_resolution not in res:
            yield f"native_resolution {d.native_resolution} must be one of its resolutions {tuple(res)}"
    if d.steps is not None and d.epochs is not None:
        yield "give its training length as steps or epochs, not both"
    if d.steps is not None and not _positive(d.steps):
        yield f"steps must be a positive integer, got {d.steps!r}"
    if d.epochs is not None and not _positive(d.epochs, (int, float)):
        yield f"epochs must be a positive number, got {d.epochs!r}"
    if d.samples is not None and not _positive(d.samples):
        yield f"samples must be a positive integer, got {d.samples!r}"
    for key in ("arch", "space", "extractor", "primary"):
        if getattr(d, key) is not None and (not isinstance(getattr(d, key), str) or not getattr(d, key)):
            yield f"{key} must be a name, got {getattr(d, key)!r}"
    if d.metrics is not None:
        if isinstance(d.metrics, str) or not d.metrics or not all(isinstance(m, str) and m for m in d.metrics):
            yield f"metrics must be a non-empty list of metric names, got {d.metrics!r}"
        elif "modes" in d.metrics and d.modes is None:
            yield "metric modes needs a mode definition (modes=Modes(...))"
    if d.modes is not None:
        yield from _mode_problems(d.kind, d.modes)
    if not isinstance(d.takes_arg, bool) or not isinstance(d.takes_count, bool):
        yield "takes_arg and takes_count must be True or False"


def _mode_problems(kind: str, m: Any):
    if not isinstance(m, Modes):
        yield f"modes must be a bench.data.registry.Modes, got {m!r}"
        return
    if m.by not in ("centres", "classes") or (m.by == "centres") != (kind == "points"):
        yield f"modes must be counted by centres (points) or classes (images), got {m.by!r} for {kind}"
    if not _positive(m.total) or (m.by == "classes" and not _power_of_ten(m.total)):
        yield f"modes total must be a positive integer (10 ** channels for classes), got {m.total!r}"
    if isinstance(m.min_fraction, bool) or not isinstance(m.min_fraction, (int, float)) or not 0 <= m.min_fraction <= 1:
        yield f"modes min_fraction must be between 0 and 1, got {m.min_fraction!r}"
    if m.kl_to not in ("uniform", "data"):
        yield f"modes kl_to must be uniform or data, got {m.kl_to!r}"


@functools.cache
def _resolve(target: str) -> Loader:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------
_REGISTRY: dict[str, DatasetInfo] = {}
_FIELDS = {f.name for f in fields(DatasetInfo)} - {"name", "loader"}


def register(name: str, loader: Loader | str | None = None, **fields_: Any):
    """Register a dataset: ``register("x", "pkg.mod:load", kind="images", native_resolution=32)``, or as
    a decorator on ``loader(req: Request) -> Dataset``: ``@register("x", kind="points")``.

    Returns the ``DatasetInfo`` (the loader, when used as a decorator). A name registered twice, an
    unknown field or a bad value raise one ValueError naming the dataset and the problem.
    """
    unknown = sorted(set(fields_) - _FIELDS)
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(_FIELDS))}")
    if "kind" not in fields_:
        raise ValueError(f"dataset {name!r}: kind must be given (points or images)")
    if loader is None:
        def deco(fn: Loader) -> Loader:
            register(name, fn, **fields_)
            return fn

        return deco
    if name in _REGISTRY:
        raise ValueError(f"dataset {name!r} registered twice")
    d = DatasetInfo(name=name, loader=loader, **fields_)
    _REGISTRY[name] = d
    return d


def names() -> list[str]:
    """Registered dataset names, sorted; prefix datasets appear as ``folder:PATH``."""
    return sorted(d.spelled for d in _REGISTRY.values())


def info(name: str) -> DatasetInfo:
    """The descriptor of a dataset name (``folder:PATH`` too); UsageError naming the known ones if unknown."""
    d = _REGISTRY.get(name.split(":", 1)[0]) if isinstance(name, str) else None
    if d is None:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    return d


def kind_of(name: str) -> str:
    """"points" or "images" for a dataset name, without loading it (unknown names: UsageError)."""
    return info(name).kind


def with_modes() -> list[str]:
    """Datasets that have mode metrics, sorted."""
    return sorted(d.spelled for d in _REGISTRY.values() if d.modes is not None)


def counted() -> list[str]:
    """Datasets whose number of images ``count=`` sets, sorted."""
    return sorted(d.spelled for d in _REGISTRY.values() if d.takes_count)


# ----------------------------------------------------------------------------------------------
# Built-ins (loaders in bench.data.synthetic and bench.data.files, imported on first load)
# ----------------------------------------------------------------------------------------------
_SYN, _FILES = "bench.data.synthetic", "bench.data.files"

# Training lengths. Image sets of Lucic et al. 2018 train for their epochs (checkpoint every 5 epochs);
# the others for steps measured with benchmarks/default_lengths.py (README, "Default training lengths"):
# on ring8 the best of 4 configs of ns and of wgan-gp (mixtures-2d) covers 8 of 8 modes by 2,000 steps; on
# grid25 the best of 3 wgan-gp configs covers 25 of 25 at 14,000 (18 at 12,000), ns's best 11 at 16,000 (a
# floor for ns). On digits (lucic-wide, batch 64) the best of 3 configs of each reaches FID < 5 by 1,500 steps
# (ns's config 0 is at FID 223 at 1,000). stacked-digits: wgan-gp's published config covers 996 of 1,000
# modes from 1,000 steps; the best of 2 ns configs 137 at 1,000 and 846 at 2,000, still rising: 2,000 is a
# floor for ns.
#
# Resolutions: digits upsample bilinearly (antialias off), then quantize to uint8 (stacked-digits: each
# channel a digit as that); polygons are rendered directly at the size; mnist and fashion-mnist upsample
# bilinearly; cifar10 downsamples bilinearly with antialiasing; celeba resizes its 160x160 centre crop
# straight to the target (bench.data.files.RESIZE); folder:PATH resizes to any side in FOLDER_RESOLUTION_RANGE.
#
# Sample counts: all 1,797 images for digits (it has no held-out split); 26,000 for stacked-digits (the
# count of Metz et al. 2017, VEEGAN and PacGAN, at which its modes are counted).
register("ring8", f"{_SYN}:load_ring8", kind="points", steps=2000, modes=Modes("centres", 8),
         description="8 Gaussians on a circle of radius 2, std 0.02")
register("grid25", f"{_SYN}:load_grid25", kind="points", steps=14000, modes=Modes("centres", 25),
         description="25 Gaussians on a 5x5 grid at {-4,-2,0,2,4}^2, std 0.05")
register("digits", f"{_SYN}:load_digits", kind="images", resolutions=(8, 16, 32), steps=2000, samples=1_797,
         extractor="digits-cnn", modes=Modes("classes", 10, min_fraction=0.01, kl_to="data"),
         description="scikit-learn's 1,797 8x8 digits (no held-out split)")
register("stacked-digits", f"{_SYN}:load_stacked_digits", kind="images", resolutions=(8, 16, 32), takes_count=True,
         steps=2000, samples=26_000, extractor="digits-cnn-channels",
         modes=Modes("classes", 1000, min_fraction=0.0, kl_to="uniform"),  # >= 1 sample: Metz, VEEGAN, PacGAN
         description="three digits per image, one per channel: StackedMNIST's 1,000 modes")
register("polygons", f"{_SYN}:load_polygons", kind="images", resolutions=(28, 32), takes_count=True, epochs=20,
         description="Lucic et al.'s anti-aliased triangles, generated here")
register("mnist", f"{_FILES}:load_mnist", kind="images", resolutions=(28, 32), epochs=20,
         description="MNIST from idx files under the data root")
register("fashion-mnist", f"{_FILES}:load_fashion_mnist", kind="images", resolutions=(28, 32), epochs=20,
         description="Fashion-MNIST from idx files under the data root")
register("cifar10", f"{_FILES}:load_cifar10", kind="images", resolutions=(32, 16), epochs=100,
         description="CIFAR-10 from its python batches under the data root")
register("celeba", f"{_FILES}:load_celeba", kind="images", resolutions=(64, 32), epochs=40,
         description="aligned CelebA, 160x160 centre crop, from files under the data root")
register("folder", f"{_FILES}:load_folder", kind="images", native_resolution=64, takes_arg=True,
         resolutions=range(FOLDER_RESOLUTION_RANGE[0], FOLDER_RESOLUTION_RANGE[1] + 1),
         description="every image under PATH, centre-cropped to a square (no held-out split)")

BUILTINS = tuple(_REGISTRY)
