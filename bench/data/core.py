"""The ``Dataset`` record, ``get`` (a registered dataset's loader, called with a validated ``Request``), data
roots and the on-disk cache of materialized images. What is known about each dataset: ``bench.data.registry``."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from bench.data.registry import DatasetInfo, describe, loader, names
from bench.errors import DataNotFound, UsageError
from bench.io import atomic_torch_save

log = logging.getLogger("bench.datasets")

SPLITS = ("train", "test")
ENV_ROOT = "GAN_BENCH_DATA"
ENV_CACHE = "GAN_BENCH_CACHE"
DEFAULT_ROOT = "./data"
DEFAULT_CACHE = "~/.cache/gan-bench"
CACHE_VERSION = 1  # bump when a loader's output changes for the same sources

# ----------------------------------------------------------------------------------------------
# The record every loader returns
# ----------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """One split of one dataset, fully in memory (images as uint8, mixtures as their parameters).

    ``sample`` draws training batches with torch's global RNG; ``real``/``uint8`` give the first
    examples of the split deterministically (for metrics). Values are in the model range [-1, 1]
    for images (``x / 127.5 - 1``); points are in data units.
    """

    name: str
    kind: str                               # "points" | "images"
    shape: tuple[int, ...]                  # (2,) or (C, H, W)
    split: str
    images: torch.Tensor | None = field(default=None, repr=False)   # uint8 [N, C, H, W]
    centres: torch.Tensor | None = field(default=None, repr=False)  # float32 [K, 2]
    std: float | None = None
    n: int | None = None                    # number of images; None for mixtures (infinite)
    info: dict[str, Any] = field(default_factory=dict)  # provenance: resolution, resize filter, cache file...
    # Class labels of a labelled dataset (conditional GANs, intra-class metrics): ``classes`` of them,
    # int64 [N] from ``label_source`` on first use (computing them may cost seconds: only who needs them pays)
    classes: int = 0
    label_source: Callable[[], torch.Tensor] | None = field(default=None, repr=False, compare=False)
    _labels: torch.Tensor | None = field(default=None, repr=False, compare=False)

    # -- training batches ----------------------------------------------------------------------
    def sample(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` random examples as float32 (images with replacement), torch's global RNG."""
        n = _count(n, "n")
        if self.kind == "images":
            idx = torch.randint(self.images.shape[0], (n,), device=self.images.device)
            x = self.images[idx].float() / 127.5 - 1
        else:
            k = torch.randint(self.centres.shape[0], (n,), device=self.centres.device)
            x = self.centres[k] + self.std * torch.randn(n, 2, device=self.centres.device)
        return x if device is None else x.to(device)

    def sample_labelled(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random images and their class labels: the same draw as ``sample`` (same RNG use)."""
        labels = self.labels
        if labels is None:
            raise UsageError(f"{self.name} has no class labels")
        n = _count(n, "n")
        idx = torch.randint(self.images.shape[0], (n,), device=self.images.device)
        return self.images[idx].float() / 127.5 - 1, labels[idx]

    @property
    def labels(self) -> torch.Tensor | None:
        """int64 [N]: image i's class in 0..classes-1 (None for unlabelled data)."""
        if self._labels is None and self.label_source is not None:
            y = self.label_source().long()
            if y.shape != (self.n,) or int(y.min()) < 0 or int(y.max()) >= self.classes:
                raise AssertionError(f"{self.name}: labels {tuple(y.shape)} do not fit {self.n} images of {self.classes} classes")
            self._labels = y.to(self.images.device)
        return self._labels

    # -- deterministic views (metrics) ---------------------------------------------------------
    def real(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` examples of the split as float32 in the model range (all if None).

        Mixtures draw ``n`` points from a generator seeded by name and split (global RNG untouched):
        the same call gives the same points, and train differs from test.
        """
        if self.kind == "images":
            return self.uint8(n).float() / 127.5 - 1
        if n is None:
            raise UsageError(f"{self.name} is an infinite mixture: pass the number of points to real(n)")
        n = _count(n, "n")
        g = torch.Generator().manual_seed(_seed_of(f"{self.name}:{self.split}"))
        k = torch.randint(self.centres.shape[0], (n,), generator=g)
        noise = torch.randn(n, 2, generator=g)
        centres = self.centres.cpu()
        return (centres[k] + self.std * noise).to(self.centres.device)

    def uint8(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` images of the split as uint8 [n, C, H, W] (all if None)."""
        if self.kind != "images":
            raise UsageError(f"{self.name} is a point dataset: it has no uint8 images")
        if n is None:
            return self.images
        n = _count(n, "n")
        if n > self.images.shape[0]:
            raise UsageError(f"{self.name} {self.split} has {self.images.shape[0]} images; asked for {n}")
        return self.images[:n]

    # -- plumbing ------------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> "Dataset":
        """A copy whose backing tensors live on ``device`` (a whole image set can sit on a GPU)."""
        return dataclasses.replace(
            self,
            images=None if self.images is None else self.images.to(device),
            centres=None if self.centres is None else self.centres.to(device),
            info=dict(self.info),
            _labels=None if self._labels is None else self._labels.to(device),
        )

    @property
    def spec(self):
        """``models.DataSpec(kind, shape)``: what a model needs to know to fit this data."""
        from models import DataSpec  # lazy: models imports torch.nn machinery we do not need here

        return DataSpec(self.kind, tuple(self.shape))


def _count(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"{what} must be a positive integer, got {n!r}")
    return n


def _seed_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def with_labels(ds: Dataset, classes: int, source: Callable[[], torch.Tensor]) -> Dataset:
    """``ds`` with its class labels: ``source()`` gives int64 [N] in 0..classes-1, read on first use."""
    ds.classes, ds.label_source = classes, source
    return ds


def images_dataset(name: str, split: str, images: torch.Tensor, **info: Any) -> Dataset:
    """Wrap a uint8 [N, C, H, W] tensor."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise AssertionError(f"{name}: loader returned {images.dtype} {tuple(images.shape)}")
    return Dataset(name=name, kind="images", shape=tuple(images.shape[1:]), split=split,
                   images=images, n=int(images.shape[0]), info=info)


# ----------------------------------------------------------------------------------------------
# Loading a registered dataset
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """What ``get`` hands a loader, already validated."""

    name: str            # the registered name ("folder" for folder:PATH)
    split: str
    root: Path           # data root (absolute)
    resolution: int | None
    count: int | None
    arg: str | None = None  # the PATH of folder:PATH


def get(name: str, *, root: str | os.PathLike | None = None, resolution: int | None = None,
        split: str = "train", count: int | None = None) -> Dataset:
    """Load one split of a dataset by name (see ``names()``).

    ``root``: where file datasets live (default ``$GAN_BENCH_DATA``, else ``./data``).
    ``resolution``: side length for image datasets (accepted values: ``describe(name).resolutions``).
    ``count``: number of images, for datasets that take one (polygons, stacked-digits).
    """
    if not isinstance(name, str):
        raise UsageError(f"dataset name must be a string, got {name!r}")
    info = describe(name)
    arg = name.split(":", 1)[1] if info.takes_arg else None
    if info.takes_arg and not arg:
        raise UsageError(f"{info.name}:PATH needs a path, e.g. {info.name}:./my_images")
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if count is not None:
        if not info.takes_count:
            takes = ", ".join(n for n in names() if describe(n).takes_count)
            raise UsageError(f"count applies only to {takes}, not to {name}")
        count = _count(count, "count")
    resolution = _check_resolution(info, resolution)
    req = Request(name=info.name, split=split, root=data_root(root), resolution=resolution, count=count, arg=arg)
    ds = loader(info)(req)
    if not isinstance(ds, Dataset) or ds.kind != info.kind:
        raise UsageError(f"dataset {name}: its loader returned {type(ds).__name__} "
                         f"{getattr(ds, 'kind', '')!s}, not a {info.kind} Dataset")
    if resolution is not None:
        ds.info.setdefault("resolution", resolution)
    return ds


def _check_resolution(info: DatasetInfo, resolution: Any) -> int | None:
    if info.kind == "points":
        if resolution is not None:
            raise UsageError(f"{info.name} is a 2-D point dataset; resolution does not apply")
        return None
    if resolution is None:
        return info.resolution
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise UsageError(f"resolution must be an integer, got {resolution!r}")
    if info.resolution_range is not None:
        lo, hi = info.resolution_range
        if not lo <= resolution <= hi:
            raise UsageError(f"{info.name}: resolution must be between {lo} and {hi}, got {resolution}")
    elif resolution not in info.resolutions:
        raise UsageError(f"{info.name}: resolution {resolution} not supported; allowed: "
                         f"{', '.join(map(str, info.resolutions))}")
    return resolution


# ----------------------------------------------------------------------------------------------
# Roots and cache
# ----------------------------------------------------------------------------------------------
def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$GAN_BENCH_DATA``, else ``./data``; made absolute."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_ROOT) or DEFAULT_ROOT
    return Path(root).expanduser().absolute()


def cache_dir() -> Path:
    """``$GAN_BENCH_CACHE/datasets`` (default ``~/.cache/gan-bench/datasets``)."""
    return Path(os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser().absolute() / "datasets"


def short_hash(obj: Any, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def files_key(files: list[Path]) -> str:
    """Short hash of the files' (path, size, mtime): changes when any source file does."""
    rows = []
    for p in files:
        st = p.stat()
        rows.append((str(p), st.st_size, st.st_mtime_ns))
    return short_hash([CACHE_VERSION, rows], 6)


def cache_path(name: str, split: str, res: int, key: str) -> Path:
    return cache_dir() / f"{name}-{split}-{res}-{key}.pt"


def _read_cache(path: Path) -> torch.Tensor | None:
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
        images = obj["images"]
        if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.dim() == 4
                and images.shape[0] > 0 and obj.get("version") == CACHE_VERSION):
            raise ValueError("unexpected contents")
        return images
    except FileNotFoundError:
        return None
    except Exception as e:  # a torn or foreign file: rebuild it, never fail on it
        log.warning("dataset cache %s unreadable (%s); rebuilding it", path, e)
        return None


def cached(path: Path, build: Callable[[], torch.Tensor], meta: dict[str, Any]) -> torch.Tensor:
    """The uint8 tensor stored at ``path``, else ``build()`` it and store it (atomically)."""
    images = _read_cache(path)
    if images is not None:
        return images
    images = build()
    try:
        atomic_torch_save(path, {"version": CACHE_VERSION, "images": images, "meta": meta})
    except OSError as e:  # a read-only or full cache directory costs time, not correctness
        log.warning("could not write dataset cache %s (%s)", path, e)
    return images


def orphan_cache(name: str, split: str, res: int, root_key: str) -> tuple[Path, torch.Tensor] | None:
    """The newest readable cache of this (dataset, split, resolution, data directory), if any.

    Used when the source files are gone: a cache built from them still serves.
    """
    d = cache_dir()
    if not d.is_dir():
        return None
    hits = sorted(d.glob(f"{name}-{split}-{res}-{root_key}*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in hits:
        images = _read_cache(p)
        if images is not None:
            return p, images
    return None


def file_backed(req: Request, name: str, source_dir: Path, locate: Callable[[], list[Path]],
                read: Callable[[list[Path]], torch.Tensor], cache_split: str | None = None,
                **info: Any) -> Dataset:
    """Common path of file datasets: locate sources, key the cache on them, read once.

    ``locate`` raises DataNotFound; if a cache built from the same directory exists it is used instead.
    ``cache_split`` overrides the split in the cache name (for datasets whose splits are one set).
    """
    split = cache_split or req.split
    root_key = short_hash(str(source_dir), 6)
    try:
        files = locate()
    except DataNotFound:
        hit = orphan_cache(name, split, req.resolution, root_key)
        if hit is None:
            raise
        path, images = hit
        log.warning("%s: source files missing under %s; using cache %s", name, source_dir, path)
    else:
        path = cache_path(name, split, req.resolution, root_key + files_key(files))
        images = cached(path, lambda: read(files),
                        {"name": name, "split": split, "resolution": req.resolution, "source": str(source_dir)})
    return images_dataset(req.name if req.arg is None else f"{req.name}:{req.arg}", req.split, images,
                          source=str(source_dir), cache=str(path), **info)
