"""Datasets read from local files under the data root. Nothing is ever downloaded.

Layouts (``<root>`` is ``--data-root``, else ``$GAN_BENCH_DATA``, else ``./data``):

- mnist:          <root>/mnist/ or <root>/MNIST/raw/: {train,t10k}-images-idx3-ubyte[.gz]
- fashion-mnist:  <root>/fashion-mnist/ or <root>/FashionMNIST/raw/: same file names
- cifar10:        <root>/cifar-10-batches-py/: data_batch_1..5, test_batch (python pickle format)
- celeba:         <root>/celeba/img_align_celeba/*.jpg and <root>/celeba/list_eval_partition.txt
                  (train = partition 0, test = partition 2; the validation partition 1 is unused)
- folder:PATH:    every png/jpg/jpeg/bmp/webp under PATH, recursively, in sorted order; there is
                  no held-out split: train and test are the same images.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.core import Dataset, Request, file_backed, with_labels
from bench.errors import DataNotFound, UsageError

# CelebA (and folder:PATH) resizing. compare_gan used TF1 tf.image.resize_images (bilinear, no
# antialiasing) after resize_image_with_crop_or_pad(160, 160); we use PIL's bicubic, which filters
# with a support scaled to the reduction (antialiased). Scores computed on CelebA should record this.
RESIZE = "PIL.Image.BICUBIC (antialiased)"
CELEBA_CROP = 160
# Resizing uint8 tensors of idx/CIFAR data to a non-native resolution (the accepted ones are in bench.data.registry).
TENSOR_RESIZE = "torch bilinear, align_corners=False, antialias when downsampling"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_HINT = "put the files there or pass --data-root (env GAN_BENCH_DATA)"


def resize_uint8(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    down = resolution < x.shape[-1]
    y = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=down)
    return y.round().clamp(0, 255).to(torch.uint8).contiguous()


# ----------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (idx format)
# ----------------------------------------------------------------------------------------------
IDX_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABEL_FILES = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


def read_idx_images(path: Path) -> np.ndarray:
    """uint8 [N, H, W] from an idx3-ubyte file, gzipped or not."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise UsageError(f"{path}: cannot read ({e})") from e
    if len(data) < 16:
        raise UsageError(f"{path}: too short for an idx image file ({len(data)} bytes)")
    magic, n, h, w = struct.unpack(">IIII", data[:16])
    if magic != IDX_IMAGES_MAGIC:
        raise UsageError(f"{path}: not an idx3-ubyte image file (magic {magic}, expected {IDX_IMAGES_MAGIC})")
    if len(data) != 16 + n * h * w:
        raise UsageError(f"{path}: header says {n}x{h}x{w} images but holds {len(data) - 16} bytes of pixels")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h, w)


def read_idx_labels(path: Path) -> np.ndarray:
    """uint8 [N] from an idx1-ubyte label file, gzipped or not."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UsageError(f"{path}: cannot read ({e})") from e
    if len(data) < 8:
        raise UsageError(f"{path}: too short for an idx label file ({len(data)} bytes)")
    magic, n = struct.unpack(">II", data[:8])
    if magic != IDX_LABELS_MAGIC or len(data) != 8 + n:
        raise UsageError(f"{path}: not an idx1-ubyte label file (magic {magic}, {len(data) - 8} labels for {n})")
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def _idx_dataset(req: Request, name: str, dirs: tuple[str, str]) -> Dataset:
    base = IDX_FILES[req.split]
    cands = [req.root / d for d in dirs]

    def locate() -> list[Path]:
        for d in cands:
            for fname in (base, base + ".gz"):
                if (d / fname).is_file():
                    return [d / fname]
        raise DataNotFound(f"{name}: expected {base}[.gz] in {cands[0]} or {cands[1]}; {_HINT}")

    def read(files: list[Path]) -> torch.Tensor:
        x = torch.from_numpy(read_idx_images(files[0]).copy()).unsqueeze(1)
        return resize_uint8(x, req.resolution)

    def labels() -> torch.Tensor:  # read when a conditional run or intra-class metric asks
        want = IDX_LABEL_FILES[req.split]
        for d in cands:
            for fname in (want, want + ".gz"):
                if (d / fname).is_file():
                    return torch.from_numpy(read_idx_labels(d / fname).astype(np.int64))
        raise DataNotFound(f"{name}: class labels need {want}[.gz] in {cands[0]} or {cands[1]}; {_HINT}")

    return with_labels(file_backed(req, name, cands[0], locate, read, resize=TENSOR_RESIZE), 10, labels)


def mnist(req: Request) -> Dataset:
    return _idx_dataset(req, "mnist", ("mnist", "MNIST/raw"))


def fashion_mnist(req: Request) -> Dataset:
    return _idx_dataset(req, "fashion-mnist", ("fashion-mnist", "FashionMNIST/raw"))


# ----------------------------------------------------------------------------------------------
# CIFAR-10 (python pickle batches), read with an unpickler that can only rebuild numpy arrays
# ----------------------------------------------------------------------------------------------
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _numpy_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray as ma  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as ma

    def latin1_encode(obj, encoding="utf-8", errors="strict"):
        # protocol-2 pickles store bytes as _codecs.encode(text, "latin1"); allow that and nothing else
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
            raise pickle.UnpicklingError(f"refusing _codecs.encode(..., {encoding!r}, {errors!r})")
        return obj.encode("latin1")

    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): latin1_encode}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = ma._reconstruct
        allowed[(mod, "scalar")] = ma.scalar
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: any other global is refused, so a crafted
    file cannot call os.system or the like."""

    ALLOWED = _numpy_globals()

    def find_class(self, module: str, name: str):  # noqa: D102
        obj = self.ALLOWED.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return obj


def load_cifar_batch(path: Path) -> np.ndarray:
    """uint8 [N, 3, 32, 32] (CHW: the file stores the R, G, B planes of each image in turn)."""
    return _cifar_field(path, "data", lambda d: isinstance(d, np.ndarray) and d.dtype == np.uint8 and d.ndim == 2
                        and d.shape[1] == 3072, "uint8 [N, 3072]").reshape(-1, 3, 32, 32)


def load_cifar_labels(path: Path) -> np.ndarray:
    """int64 [N]: the classes 0..9 of a CIFAR-10 batch's images (its b'labels')."""
    labels = _cifar_field(path, "labels", lambda d: isinstance(d, list) and all(isinstance(v, int) and 0 <= v < 10 for v in d),
                          "a list of ints in 0..9")
    return np.asarray(labels, dtype=np.int64)


def _cifar_field(path: Path, key: str, ok, what: str):
    try:
        with open(path, "rb") as f:
            obj = RestrictedUnpickler(f, encoding="latin1").load()
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e})") from e
    except Exception as e:  # refused globals, truncated or foreign files
        raise UsageError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from e
    data = None
    if isinstance(obj, dict):
        data = obj.get(key.encode(), obj.get(key))
    if not ok(data):
        got = type(data).__name__ if not isinstance(data, np.ndarray) else f"{data.dtype} {data.shape}"
        raise UsageError(f"{path}: expected a dict with b'{key}' {what}, got {got}")
    return data


def cifar10(req: Request) -> Dataset:
    d = req.root / CIFAR_DIR
    want = CIFAR_FILES[req.split]

    def locate() -> list[Path]:
        files = [d / f for f in want]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            names = "data_batch_1..5" if req.split == "train" else "test_batch"
            raise DataNotFound(f"cifar10: expected {names} in {d} (missing {', '.join(missing)}); {_HINT}")
        return files

    def read(files: list[Path]) -> torch.Tensor:
        x = torch.from_numpy(np.concatenate([load_cifar_batch(f) for f in files]))
        return resize_uint8(x, req.resolution)

    def labels() -> torch.Tensor:
        return torch.from_numpy(np.concatenate([load_cifar_labels(f) for f in locate()]))

    return with_labels(file_backed(req, "cifar10", d, locate, read, resize=TENSOR_RESIZE), 10, labels)


# ----------------------------------------------------------------------------------------------
# Decoded images (CelebA, folder:PATH), PIL in threads (decoding and resizing release the GIL)
# ----------------------------------------------------------------------------------------------
def _crop_or_pad(a: np.ndarray, size: int) -> np.ndarray:
    """Centre crop or zero-pad an [H, W, C] array to [size, size, C] (tf.image.resize_with_crop_or_pad)."""
    out = np.zeros((size, size, a.shape[2]), dtype=a.dtype)
    h, w = a.shape[:2]
    sy, dy = max((h - size) // 2, 0), max((size - h) // 2, 0)
    sx, dx = max((w - size) // 2, 0), max((size - w) // 2, 0)
    ch, cw = min(h, size), min(w, size)
    out[dy:dy + ch, dx:dx + cw] = a[sy:sy + ch, sx:sx + cw]
    return out


def _load_rgb(path: Path, resolution: int, crop: int | None) -> np.ndarray:
    """[H, W, 3] uint8: ``crop`` -> centre crop/pad to crop x crop, else centre crop to a square; then resize."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except Exception as e:
        raise UsageError(f"{path}: cannot decode image ({e})") from e
    if crop is not None:
        im = Image.fromarray(_crop_or_pad(np.asarray(im), crop))
    else:
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.BICUBIC)
    return np.asarray(im)


def read_images(files: list[Path], resolution: int, crop: int | None = None) -> torch.Tensor:
    """uint8 [N, 3, R, R] from image files, decoded in parallel threads."""
    out = np.empty((len(files), resolution, resolution, 3), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = _load_rgb(files[i], resolution, crop)

    workers = max(1, min(16, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(work, range(len(files)), chunksize=64):
            pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


CELEBA_PARTITION = {"train": "0", "test": "2"}


def celeba(req: Request) -> Dataset:
    d = req.root / "celeba"
    img_dir, part = d / "img_align_celeba", d / "list_eval_partition.txt"

    def locate() -> list[Path]:
        if not part.is_file() or not img_dir.is_dir():
            raise DataNotFound(f"celeba: expected img_align_celeba/*.jpg and list_eval_partition.txt in {d}; {_HINT}")
        want = CELEBA_PARTITION[req.split]
        files = []
        for i, line in enumerate(part.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise UsageError(f"{part}:{i}: expected '<file>.jpg <0|1|2>', got {line!r}")
            if fields[1] == want:
                files.append(img_dir / fields[0])
        if not files:
            raise UsageError(f"{part}: no images in partition {want} ({req.split})")
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise DataNotFound(f"celeba: {len(missing)} of the {len(files)} {req.split} images listed in {part.name} "
                               f"are missing from {img_dir} (first: {missing[0].name}); {_HINT}")
        return files

    return file_backed(req, "celeba", d, locate, lambda files: read_images(files, req.resolution, CELEBA_CROP),
                       resize=RESIZE, crop=CELEBA_CROP)


def folder(req: Request) -> Dataset:
    d = Path(req.arg).expanduser().absolute()

    def locate() -> list[Path]:
        if not d.is_dir():
            raise DataNotFound(f"folder: {d} is not a directory; pass folder:PATH with a folder of images")
        files = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise DataNotFound(f"folder: no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images under {d}")
        return files

    return file_backed(req, "folder", d, locate, lambda files: read_images(files, req.resolution), cache_split="all",
                       resize=RESIZE, note="no held-out split: train and test are the same images")
