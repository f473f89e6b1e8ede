"""Everything gan-bench knows about a dataset, in one registration that imports no torch.

    from bench import datasets

    @datasets.register("circle16", kind="points", steps=3000, modes=datasets.Modes("mixture"))
    def circle16(req: datasets.Request) -> datasets.Dataset: ...

A registration is a ``DatasetInfo``: the loader (``loader(req) -> Dataset``, or a ``"module:function"``
string imported on first use, so that listing names and checking a study's flags needs no torch) and
the facts every other layer reads from it: resolutions, training length, default metrics, sample
count, extractor, primary (ranking) metric, mode definition, labels, default arch and search space.
Facts left out take the defaults of the data kind (``KIND_DEFAULTS``); after registration every field
is concrete. ``describe(name)`` gives the record (``folder:PATH`` is the ``folder`` entry).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import UsageError
from bench.lazy import resolve

KINDS = ("points", "images")
DEFAULT_STEPS = 1000  # training length of a dataset that declares neither epochs nor steps

# What a dataset of each kind gets unless its registration says otherwise.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "points": {
        # 10,000 generated vs 10,000 real points (Lucic et al. 2018's count for images)
        "samples": 10_000,
        "extractor": "identity",
        # KID is opt-in for 2-D points: its cubic kernel matches moments up to the third only, so it cannot
        # tell a moment-matched blob from the mixture (a Gaussian with ring8's moments: KID 0.009 +- 0.067)
        "metrics": ("w1", "fid", "prc", "dc"),
        # exact W1 (bench.metrics.wasserstein), a consistent distance; FID on raw points compares only
        # means and covariances (a blob with ring8's moments scores FID 0.001 and covers no mode)
        "primary": "w1",
        "arch": "mlp",
        # Lucic's ranges were tuned for images; at their learning rates and batch 64 no loss learns ring8's
        # modes in 5,000 steps (README, "Default training lengths"), so 2-D data has its own space
        "space": "mixtures-2d",
    },
    "images": {
        "samples": 10_000,  # Lucic et al. 2018: 10,000 generated vs 10,000 real (test split) images
        "extractor": "inception-v3-compat",
        "metrics": ("fid", "kid", "prc", "dc", "is"),
        "primary": "fid",
        "arch": "infogan",
        "space": "lucic-wide",
    },
}


@dataclass(frozen=True)
class Modes:
    """How a sample is assigned a mode (``bench.metrics.modes``).

    ``by="mixture"``: 2-D Gaussian mixtures (the dataset's centres and std): a sample is in a mode within
    ``radius_std`` std of its centre; ``by="classes"``: the classifier's class of each channel (10 per
    channel, the tuple is the mode). A mode is covered when it holds at least ``min_fraction`` of the
    samples (and at least one); ``mode_kl`` compares the mode histogram with ``kl_to`` ("uniform", or
    "data": the labelled data's class frequencies).
    """

    by: str
    min_fraction: float = 0.01
    kl_to: str = "uniform"
    radius_std: float = 3.0
    classifier: str = "digits-cnn"

    def __post_init__(self) -> None:
        if self.by not in ("mixture", "classes"):
            raise ValueError(f"Modes.by must be 'mixture' or 'classes', got {self.by!r}")
        if self.kl_to not in ("uniform", "data"):
            raise ValueError(f"Modes.kl_to must be 'uniform' or 'data', got {self.kl_to!r}")
        if not 0 <= self.min_fraction < 1 or not self.radius_std > 0:
            raise ValueError("Modes needs 0 <= min_fraction < 1 and radius_std > 0")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Callable | str = dataclasses.field(repr=False)  # loader(req: Request) -> Dataset, or "module:function"
    kind: str                                   # "points" | "images"
    summary: str = ""                           # one line for `bench list datasets`
    resolution: int | None = None               # native side length (images; None for points)
    resolutions: tuple[int, ...] = ()           # accepted side lengths, native first
    resolution_range: tuple[int, int] | None = None  # instead of a list: any side in [lo, hi] (folder:PATH)
    takes_arg: bool = False                     # spelt NAME:ARG (folder:PATH)
    takes_count: bool = False                   # get(count=) changes the number of images
    epochs: float | None = None                 # training length in epochs (Lucic et al. 2018) ...
    steps: int | None = None                    # ... or in generator steps (None and None: DEFAULT_STEPS)
    samples: int | None = None                  # generated samples per evaluation (the real side: min(it, split))
    extractor: str | None = None                # feature extractor of the default metrics
    metrics: tuple[str, ...] | None = None      # default metrics ("modes" is added when ``modes`` is set)
    primary: str | None = None                  # the score key its leaderboard ranks by and searches select by
    modes: Modes | None = None                  # mode definition; None: no mode metrics
    labels: bool = False                        # has class labels (conditional GANs, intra-class metrics)
    arch: str | None = None                     # default architecture
    space: str | None = None                    # default search space

    @property
    def shown(self) -> str:
        return f"{self.name}:PATH" if self.takes_arg else self.name

    @property
    def length(self) -> str:
        return f"{self.epochs:g} epochs" if self.epochs is not None else f"{self.steps} steps"


_REGISTRY: dict[str, DatasetInfo] = {}


def register(name: str, loader: Callable | str | None = None, *, kind: str, **facts: Any):
    """Register a dataset; with no ``loader``, a decorator for the loader function.

    ``facts`` are ``DatasetInfo`` fields; the ones left out come from ``KIND_DEFAULTS[kind]``. Checked
    at once: a bad name or kind, a name registered twice, images without a native resolution.
    """
    def add(fn: Callable | str) -> Callable | str:
        _REGISTRY[name] = _complete(name, fn, kind, facts)
        return fn

    _check_name(name)
    return add if loader is None else add(loader)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in ",:/ "):
        raise ValueError(f"a dataset name must be a non-empty string without ',', ':', '/' or spaces: {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"dataset {name!r} registered twice")


def _complete(name: str, loader: Callable | str, kind: str, facts: dict[str, Any]) -> DatasetInfo:
    if kind not in KINDS:
        raise ValueError(f"dataset {name!r}: kind must be points or images, got {kind!r}")
    if not (callable(loader) or (isinstance(loader, str) and ":" in loader)):
        raise ValueError(f"dataset {name!r}: the loader must be callable or 'module:function', got {loader!r}")
    known = {f.name for f in dataclasses.fields(DatasetInfo)} - {"name", "loader", "kind"}
    if set(facts) - known:
        raise ValueError(f"dataset {name!r}: unknown fields {sorted(set(facts) - known)}; known: {', '.join(sorted(known))}")
    d = {**KIND_DEFAULTS[kind], **{k: v for k, v in facts.items() if v is not None}}
    if "metrics" in d:
        d["metrics"] = tuple(d["metrics"])
    d["resolutions"] = tuple(d.get("resolutions", ()))
    if kind == "images":
        res = d.get("resolution")
        if not isinstance(res, int) or res < 1:
            raise ValueError(f"image dataset {name!r} must declare its native resolution (an integer side length)")
        if not d["resolutions"] and d.get("resolution_range") is None:
            d["resolutions"] = (res,)
        if d["resolutions"] and d["resolutions"][0] != res:
            raise ValueError(f"dataset {name!r}: resolutions must list the native one ({res}) first")
    elif d.get("resolution") is not None or d["resolutions"]:
        raise ValueError(f"point dataset {name!r} has no resolution")
    if d.get("epochs") is None and d.get("steps") is None:
        d["steps"] = DEFAULT_STEPS
    modes = d.get("modes")
    if modes is not None and not isinstance(modes, Modes):
        raise ValueError(f"dataset {name!r}: modes must be a bench.datasets.Modes, got {modes!r}")
    return DatasetInfo(name=name, loader=loader, kind=kind, **d)


# ---- lookups (none imports torch) --------------------------------------------------------------

def names() -> list[str]:
    """Registered dataset names, sorted; prefix datasets appear as ``folder:PATH``."""
    return sorted(e.shown for e in _REGISTRY.values())


def describe(name: str) -> DatasetInfo:
    """The registration of a dataset name (``folder:/x`` is ``folder``'s); unknown: one-line UsageError."""
    entry = _REGISTRY.get(name.split(":", 1)[0]) if isinstance(name, str) else None
    if entry is None or entry.takes_arg != (":" in name):
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(names())} (`bench list datasets`)")
    return entry


def labelled() -> list[str]:
    """The datasets registered with class labels (conditional GANs, intra-class metrics)."""
    return [e.shown for e in sorted(_REGISTRY.values(), key=lambda e: e.shown) if e.labels]


def kind_of(name: str) -> str:
    """"points" or "images" for a dataset name, without loading it (unknown names: UsageError)."""
    return describe(name).kind


def check(names_: list[str]) -> list[str]:
    """The names, each known (UsageError naming the first unknown one)."""
    for n in names_:
        describe(n)
    return list(names_)


def loader(info: DatasetInfo) -> Callable:
    return resolve(info.loader)


def default_metrics(name: str) -> list[str]:
    """The metrics a dataset is scored with by default: its kind's (or its own), plus modes where defined."""
    info = describe(name)
    return [m for m in info.metrics if m != "modes"] + (["modes"] if info.modes else [])


# ---- the package's own datasets (loaders in bench.data.synthetic and bench.data.files) -----------------
# Training lengths: Lucic et al. 2018's epochs (checkpoint every 5 epochs) for their datasets; CPU-sized
# steps for the embedded ones, measured with benchmarks/default_lengths.py (README, "Default training
# lengths"): on ring8 the best of 4 configs of ns and of wgan-gp (mixtures-2d) covers 8 of 8 modes by
# 2,000 steps; on grid25 the best of 3 wgan-gp configs covers 25 of 25 at 14,000 (18 at 12,000), ns's best
# 11 at 16,000 (a floor for ns). On digits (lucic-wide, batch 64) the best of 3 configs of each reaches
# FID < 5 by 1,500 steps (ns's config 0 is at FID 223 at 1,000). stacked-digits: wgan-gp's published
# config covers 996 of 1,000 modes from 1,000 steps; the best of 2 ns configs 137 at 1,000 and 846 at
# 2,000, still rising: 2,000 is a floor for ns.
_S, _F = "bench.data.synthetic", "bench.data.files"
register("ring8", f"{_S}:ring8", kind="points", steps=2000, modes=Modes("mixture"),
         summary="8 Gaussians (std 0.02) on a circle of radius 2")
register("grid25", f"{_S}:grid25", kind="points", steps=14000, modes=Modes("mixture"),
         summary="25 Gaussians (std 0.05) on the grid {-4,-2,0,2,4}^2")
# digits has no held-out split: all 1,797 images are the reference, and its own small classifier the extractor
register("digits", f"{_S}:digits", kind="images", resolution=8, resolutions=(8, 16, 32), steps=2000,
         samples=1_797, extractor="digits-cnn", labels=True, modes=Modes("classes", kl_to="data"),
         summary="scikit-learn's 1,797 8x8 digits (upsampled bilinearly to 16 or 32)")
# 26,000 samples and ">= 1 sample covers a triple": the count of Metz et al. 2017, VEEGAN and PacGAN
# (a 1% threshold would make 1,000 modes impossible)
register("stacked-digits", f"{_S}:stacked_digits", kind="images", resolution=8, resolutions=(8, 16, 32),
         takes_count=True, steps=2000, samples=26_000, extractor="digits-cnn-channels", labels=True,
         modes=Modes("classes", min_fraction=0.0, kl_to="uniform"),
         summary="StackedMNIST's 1,000 modes from the digits: 3 channels, a digit each")
register("polygons", f"{_S}:polygons", kind="images", resolution=28, resolutions=(28, 32), takes_count=True,
         epochs=20, summary="Lucic et al.'s anti-aliased triangles, generated here")
register("mnist", f"{_F}:mnist", kind="images", resolution=28, resolutions=(28, 32), epochs=20, labels=True,
         summary="MNIST from idx files under the data root")
register("fashion-mnist", f"{_F}:fashion_mnist", kind="images", resolution=28, resolutions=(28, 32), epochs=20,
         labels=True, summary="Fashion-MNIST from idx files under the data root")
register("cifar10", f"{_F}:cifar10", kind="images", resolution=32, resolutions=(32, 16), epochs=100, labels=True,
         summary="CIFAR-10 from the python batches under the data root")
register("celeba", f"{_F}:celeba", kind="images", resolution=64, resolutions=(64, 32), epochs=40,
         summary="CelebA, 160x160 centre crop, from the aligned images under the data root")
register("folder", f"{_F}:folder", kind="images", resolution=64, resolution_range=(4, 1024), takes_arg=True,
         summary="every image under PATH, centre-cropped and resized (no held-out split)")
