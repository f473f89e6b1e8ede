"""Datasets: ``get(name, root=, resolution=, split=, count=) -> Dataset`` and ``names()``.

Every dataset lives in memory, images as one uint8 tensor [N, C, H, W] (so a whole set can be moved
to a GPU with ``Dataset.to``), mixtures as their centres and std. Batches are drawn by indexing
(``Dataset.sample``), never through a DataLoader.

What gan-bench knows about each dataset (resolutions, training length, default metrics and samples,
primary metric, modes, default arch and space) is its registration: ``describe(name)``, see
:mod:`bench.data.registry`. A plugin adds a dataset with ``@register(name, kind=..., ...)`` on its loader.

Names (see ``names()``, or ``bench list datasets``):

- ``ring8``, ``grid25``: 2-D Gaussian mixtures (8 on a circle of radius 2, std 0.02; 5x5 grid at
  {-4,-2,0,2,4}^2, std 0.05). ``real(n)`` draws a fixed, split-dependent set of points.
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16 scaled to 0..255);
  ``resolution`` 16 or 32 upsamples bilinearly. No held-out split: train == test == all 1,797.
- ``stacked-digits``: StackedMNIST's 1,000 modes (Metz et al. 2017) from the digits: 3 channels, each an
  independently drawn digit (train: seed 0, 60,000 images; test: seed 1, 10,000; ``count=`` as for
  polygons; ``resolution`` 16 or 32 as for digits). A sample's mode is its triple of digit classes;
  ``bench.data.synthetic.stacked_digits_labels(split, count)`` gives the data's own [count, 3].
- ``polygons``: Lucic et al.'s anti-aliased triangles, 28x28, generated here deterministically
  (train: seed 0, 60,000 images; test: seed 1, 10,000; ``count=`` changes the number; the first k
  images do not depend on ``count``).
- ``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``: read from files under the data root; see
  :mod:`bench.data.files` for the layouts. Missing files raise ``DataNotFound``; nothing is downloaded.
- ``folder:PATH``: every image under PATH, centre-cropped to a square and resized to ``resolution``
  (default 64). No held-out split: train == test.

Image datasets are materialized once and cached under ``$GAN_BENCH_CACHE/datasets`` (default
``~/.cache/gan-bench/datasets``) as ``<name>-<split>-<res>-<key>.pt``; the key hashes the source
files' paths, sizes and mtimes (or the generation parameters), so changed sources rebuild the cache,
and a corrupt cache file is rebuilt. If the source files are later removed, the newest cache built
from the same directory is still used.
"""
from __future__ import annotations

from bench.data.core import (CACHE_VERSION, DEFAULT_CACHE, DEFAULT_ROOT, ENV_CACHE, ENV_ROOT, SPLITS, Dataset, Request,
                             cache_dir, data_root, get, images_dataset)
from bench.data.files import CELEBA_CROP, IMAGE_EXTENSIONS, RESIZE, TENSOR_RESIZE, RestrictedUnpickler
from bench.data.registry import KIND_DEFAULTS, DatasetInfo, Modes, default_metrics, describe, kind_of, names, register
from bench.data.synthetic import DIGITS_COUNT, MIXTURES, POLYGONS

__all__ = [
    "get", "describe", "kind_of", "names", "register", "default_metrics", "Dataset", "DatasetInfo", "Modes",
    "Request", "images_dataset", "data_root", "cache_dir", "KIND_DEFAULTS", "SPLITS", "RESIZE", "TENSOR_RESIZE",
    "CELEBA_CROP", "IMAGE_EXTENSIONS", "MIXTURES", "POLYGONS", "DIGITS_COUNT", "CACHE_VERSION",
    "ENV_ROOT", "ENV_CACHE", "DEFAULT_ROOT", "DEFAULT_CACHE", "RestrictedUnpickler",
]
