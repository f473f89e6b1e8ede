"""bench.datasets: registry, mixtures, digits, polygons, and the real on-disk formats of the file datasets."""
from __future__ import annotations

import gzip
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.data.files as files_mod
from bench import datasets as D
from bench.data.synthetic import (STACKED_DIGITS, render_triangles, stacked_digits_indices, stacked_digits_labels,
                                  triangle_vertices)
from bench.errors import DataNotFound, UsageError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    c = tmp_path / "cache"
    monkeypatch.setenv("GAN_BENCH_CACHE", str(c))
    monkeypatch.delenv("GAN_BENCH_DATA", raising=False)
    return c / "datasets"


# ----------------------------------------------------------------------------------------------
# registry and argument checks
# ----------------------------------------------------------------------------------------------
def test_names_and_constants():
    assert D.names() == ["celeba", "cifar10", "digits", "fashion-mnist", "folder:PATH", "grid25", "mnist",
                         "polygons", "ring8", "stacked-digits"]
    for name in D.names():  # every registration is complete: the other layers read these fields
        d = D.describe(name)
        assert d.kind == D.kind_of(name) and (d.epochs is None) != (d.steps is None)
        assert d.samples > 0 and d.extractor and d.primary and d.arch and d.space and d.metrics
        if d.kind == "images":
            assert d.resolution_range or d.resolutions[0] == d.resolution
        else:
            assert d.resolution is None and d.extractor == "identity"
    assert {n for n in D.names() if D.describe(n).modes} == {"ring8", "grid25", "digits", "stacked-digits"}


def test_usage_errors():
    with pytest.raises(UsageError, match=r"unknown dataset 'x'; known: celeba, cifar10, digits, "):
        D.get("x")
    with pytest.raises(UsageError, match="unknown dataset"):
        D.get("folder")  # needs :PATH
    with pytest.raises(UsageError, match="unknown dataset"):
        D.get("mnist:foo")
    with pytest.raises(UsageError, match="unknown split 'val'; known: train, test"):
        D.get("ring8", split="val")
    with pytest.raises(UsageError, match="allowed: 8, 16, 32"):
        D.get("digits", resolution=12)
    with pytest.raises(UsageError, match="resolution does not apply"):
        D.get("ring8", resolution=32)
    with pytest.raises(UsageError, match="count applies only to polygons"):
        D.get("digits", count=10)
    with pytest.raises(UsageError, match="count must be a positive integer"):
        D.get("polygons", count=0)
    ds = D.get("ring8")
    with pytest.raises(UsageError, match="pass the number of points"):
        ds.real()
    with pytest.raises(UsageError, match="no uint8 images"):
        ds.uint8(3)
    with pytest.raises(UsageError, match="positive integer"):
        ds.sample(0)


# ----------------------------------------------------------------------------------------------
# mixtures
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,k,std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_mixtures(name, k, std):
    ds = D.get(name)
    assert (ds.kind, ds.shape, ds.n, ds.std) == ("points", (2,), None, std)
    assert ds.centres.shape == (k, 2)
    if name == "ring8":
        assert torch.allclose(ds.centres.norm(dim=1), torch.full((8,), 2.0))
        angles = torch.atan2(ds.centres[:, 1], ds.centres[:, 0]).remainder(2 * np.pi).sort().values
        assert torch.allclose(angles, torch.arange(8) * (np.pi / 4), atol=1e-6)
    else:
        want = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
        assert {tuple(int(round(v)) for v in c.tolist()) for c in ds.centres} == want
        assert torch.equal(ds.centres, ds.centres.round())
    x = ds.sample(10_000)
    assert x.shape == (10_000, 2) and x.dtype == torch.float32
    d = torch.cdist(x, ds.centres)
    nearest = d.min(1)
    assert (nearest.values < 5 * std).all()
    assert set(nearest.indices.tolist()) == set(range(k))  # every mode hit

    torch.manual_seed(7)
    a = ds.sample(100)
    torch.manual_seed(7)
    assert torch.equal(a, ds.sample(100))

    state = torch.get_rng_state()
    r1, r2 = ds.real(500), ds.real(500)
    assert torch.equal(torch.get_rng_state(), state)  # real() leaves the global RNG alone
    assert torch.equal(r1, r2) and r1.shape == (500, 2)
    assert torch.equal(r1, D.get(name).real(500))
    assert not torch.equal(r1, D.get(name, split="test").real(500))
    assert (torch.cdist(r1, ds.centres).min(1).values < 5 * std).all()


def test_spec_and_to():
    from models import DataSpec

    assert D.get("ring8").spec == DataSpec("points", (2,))
    assert D.get("digits").spec == DataSpec("images", (1, 8, 8))
    ds = D.get("digits").to("cpu")
    assert ds.images.device.type == "cpu" and ds.n == 1797
    if torch.cuda.is_available():
        g = D.get("polygons", count=64).to("cuda")
        assert g.images.is_cuda and g.sample(8).is_cuda and g.real(4).is_cuda
        m = D.get("ring8").to("cuda")
        assert m.sample(8).is_cuda and torch.equal(m.real(16).cpu(), D.get("ring8").real(16))


# ----------------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------------
def test_digits():
    from sklearn.datasets import load_digits

    ds = D.get("digits")
    assert (ds.kind, ds.shape, ds.n) == ("images", (1, 8, 8), 1797)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (1797, 1, 8, 8)
    raw = load_digits().images
    assert torch.equal(ds.images[:, 0], torch.from_numpy(np.round(raw * 255 / 16).astype(np.uint8)))
    assert int(ds.images.max()) == 255 and int(ds.images.min()) == 0
    x = ds.sample(4096)
    assert x.dtype == torch.float32 and x.shape == (4096, 1, 8, 8)
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1 and x.max() == 1
    assert torch.equal(D.get("digits", split="test").images, ds.images)  # no held-out split
    assert torch.equal(ds.real(10), ds.images[:10].float() / 127.5 - 1)
    assert torch.equal(ds.uint8(10), ds.images[:10])
    with pytest.raises(UsageError, match="has 1797 images; asked for 2000"):
        ds.real(2000)
    for r in (16, 32):
        up = D.get("digits", resolution=r)
        assert up.shape == (1, r, r) and up.images.dtype == torch.uint8 and up.n == 1797
        # a bilinear upsample keeps the mean brightness to within quantization and edge effects
        assert abs(up.images.float().mean() - ds.images.float().mean()) < 3


# ----------------------------------------------------------------------------------------------
# stacked digits (1,000 modes)
# ----------------------------------------------------------------------------------------------
def test_stacked_digits(cache):
    from scipy.stats import chi2_contingency, chisquare
    from sklearn.datasets import load_digits

    digits = D.get("digits").images[:, 0]
    ds = D.get("stacked-digits")
    assert (ds.kind, ds.shape, ds.n, ds.images.dtype) == ("images", (3, 8, 8), 60_000, torch.uint8)
    assert ds.info["seed"] == 0 and ds.info["modes"] == 1000
    assert len(list(cache.glob("stacked-digits-train-8-*.pt"))) == 1
    # channel c of image i is digit idx[i, c]; deterministic, and the first k do not depend on count
    idx = torch.from_numpy(stacked_digits_indices(60_000, 0))
    assert torch.equal(ds.images, digits[idx])
    assert torch.equal(D.get("stacked-digits").images, ds.images)
    assert torch.equal(D.get("stacked-digits", count=100).images, ds.images[:100])
    test = D.get("stacked-digits", split="test")
    assert test.n == STACKED_DIGITS["count"]["test"] == 10_000 and test.info["seed"] == 1
    assert not torch.equal(test.images[:100], ds.images[:100])
    x = ds.sample(64)
    assert x.shape == (64, 3, 8, 8) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    for r in (16, 32):
        up = D.get("stacked-digits", resolution=r, count=50)
        assert torch.equal(up.images, D.get("digits", resolution=r).images[:, 0][idx[:50]])
    # labels: the digit class of each channel; channels independent, so a triple's frequency is the
    # product of its digits' class frequencies (174 to 183 of 1,797 each: near uniform, 1/1,000)
    y = stacked_digits_labels("train")
    assert y.shape == (60_000, 3) and torch.equal(y[:100], stacked_digits_labels("train", 100))
    q = torch.bincount(torch.from_numpy(load_digits().target), minlength=10).double() / 1797
    expected = torch.einsum("a,b,c->abc", q, q, q).flatten() * len(y)
    counts = torch.bincount((y * torch.tensor([100, 10, 1])).sum(1), minlength=1000)
    assert counts.min() > 0 and chisquare(counts.numpy(), expected.numpy()).pvalue > 0.01
    for a, b in ((0, 1), (0, 2), (1, 2)):
        table = torch.zeros(10, 10).index_put_((y[:, a], y[:, b]), torch.ones(len(y)), accumulate=True)
        assert chi2_contingency(table.numpy()).pvalue > 0.01  # channel a independent of channel b


# ----------------------------------------------------------------------------------------------
# polygons
# ----------------------------------------------------------------------------------------------
def test_polygons(cache):
    a = D.get("polygons", count=500)
    b = D.get("polygons", count=500)
    assert (a.kind, a.shape, a.n, a.images.dtype) == ("images", (1, 28, 28), 500, torch.uint8)
    assert torch.equal(a.images, b.images)
    assert len(list(cache.glob("polygons-train-28-*.pt"))) == 1
    # same as a fresh render without any cache, and prefix-stable in count
    assert torch.equal(a.images[:200], render_triangles(triangle_vertices(200, 0, 28), 28))
    t = D.get("polygons", split="test", count=500)
    assert not torch.equal(a.images, t.images)
    x = a.images.float() / 255
    grays = ((x > 0) & (x < 1)).float().mean()
    assert grays > 0.03  # anti-aliased edges
    assert len(torch.unique(a.images)) > 30
    area = x.mean((1, 2, 3))  # fraction of the image covered
    assert 0.02 < float(area.min()) and float(area.max()) < 0.35 and 0.08 < float(area.mean()) < 0.2
    # centred: the intensity centroid is near the image centre
    ys = torch.arange(28).float() + 0.5
    cy = (x[:, 0].sum(2) * ys).sum(1) / x[:, 0].sum((1, 2))
    cx = (x[:, 0].sum(1) * ys).sum(1) / x[:, 0].sum((1, 2))
    assert (cy - 14).abs().max() < 1 and (cx - 14).abs().max() < 1
    # vertices may reach the frame (centroid centring moves them up to 4/3 of the circumradius) but
    # the border rows and columns carry almost nothing
    border = torch.cat([x[..., [0, -1], :].flatten(1), x[..., :, [0, -1]].flatten(1)], 1)
    assert float(border.sum()) < 1e-3 * float(x.sum())
    assert D.get("polygons", resolution=32, count=10).shape == (1, 32, 32)


def test_polygons_default_counts_and_speed():
    t0 = time.perf_counter()
    ds = D.get("polygons", split="test")
    elapsed = time.perf_counter() - t0
    assert ds.n == 10_000 and ds.info["seed"] == 1
    assert elapsed < 15, elapsed
    assert torch.equal(ds.images[:50], D.get("polygons", split="test", count=50).images)


def test_polygon_rasterizer_matches_brute_force():
    v = triangle_vertices(40, 3, 28)
    fast = render_triangles(v, 28)[:, 0].numpy().astype(int)
    S, R = 8, 28
    g = (np.arange(R * S) + 0.5) / S
    X, Y = np.meshgrid(g, g)  # X[row, col] = x of the subpixel centre
    masks = []
    for tri in v:  # point-in-triangle on the 224x224 subpixel grid, then 8x8 average pooling
        e = [(tri[(i + 1) % 3, 0] - tri[i, 0]) * (Y - tri[i, 1]) - (tri[(i + 1) % 3, 1] - tri[i, 1]) * (X - tri[i, 0])
             for i in range(3)]
        e = np.stack(e)
        masks.append((e >= 0).all(0) | (e <= 0).all(0))
    slow = np.round(np.stack(masks).reshape(-1, R, S, R, S).sum((2, 4)) * 255 / 64).astype(int)
    assert np.abs(fast - slow).max() == 0


def test_triangle_geometry():
    v = triangle_vertices(2000, 0, 28)
    half = 14
    # circumradius is scale * half-width (the circle the vertices were drawn on)
    a, b, c = (np.linalg.norm(v[:, i] - v[:, (i + 1) % 3], axis=1) for i in range(3))
    area = 0.5 * np.abs((v[:, 1, 0] - v[:, 0, 0]) * (v[:, 2, 1] - v[:, 0, 1])
                        - (v[:, 1, 1] - v[:, 0, 1]) * (v[:, 2, 0] - v[:, 0, 0]))
    assert np.allclose(a * b * c / (4 * area), 0.75 * half)
    # central angles >= 20 degrees <=> interior angles >= 10 degrees
    cosines = [(b**2 + c**2 - a**2) / (2 * b * c), (a**2 + c**2 - b**2) / (2 * a * c), (a**2 + b**2 - c**2) / (2 * a * b)]
    assert np.degrees(np.arccos(np.clip(np.stack(cosines), -1, 1))).min() >= 10 - 1e-6
    assert np.allclose(v.mean(1), half)
    assert np.linalg.norm(v - half, axis=2).max() <= 4 / 3 * 0.75 * half  # inside the frame


# ----------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST idx files
# ----------------------------------------------------------------------------------------------
def write_idx(path: Path, images: np.ndarray, magic: int = 2051, gz: bool = False) -> None:
    header = np.array([magic, *images.shape], dtype=">u4").tobytes()
    data = header + images.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_mnist_gz_and_plain(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", train, gz=True)
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", test)
    ds = D.get("mnist", root=tmp_path)
    assert (ds.kind, ds.shape, ds.n, ds.split) == ("images", (1, 28, 28), 7, "train")
    assert np.array_equal(ds.uint8(1)[0, 0].numpy(), train[0])
    assert np.array_equal(ds.images[:, 0].numpy(), train)
    te = D.get("mnist", root=str(tmp_path), split="test")
    assert np.array_equal(te.images[:, 0].numpy(), test)
    assert torch.equal(te.real(2), torch.from_numpy(test[:2, None]).float() / 127.5 - 1)
    x = ds.sample(50)
    assert x.shape == (50, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    up = D.get("mnist", root=tmp_path, resolution=32)
    assert up.shape == (1, 32, 32) and up.n == 7


def test_fashion_torchvision_layout_and_env_root(tmp_path, monkeypatch):
    imgs = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 251
    write_idx(tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte", imgs)
    monkeypatch.setenv("GAN_BENCH_DATA", str(tmp_path))
    ds = D.get("fashion-mnist")
    assert np.array_equal(ds.images[:, 0].numpy(), imgs.astype(np.uint8))
    with pytest.raises(DataNotFound, match="t10k-images-idx3-ubyte"):
        D.get("fashion-mnist", split="test")


def test_idx_bad_magic(tmp_path):
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", np.zeros((2, 28, 28)), magic=2049)
    with pytest.raises(UsageError, match=r"train-images-idx3-ubyte.*magic 2049"):
        D.get("mnist", root=tmp_path)
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)
    with pytest.raises(UsageError, match="header says"):
        D.get("mnist", root=tmp_path)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(DataNotFound) as e:
        D.get("mnist", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"train-images-idx3-ubyte[.gz] in {tmp_path / 'mnist'} or {tmp_path / 'MNIST' / 'raw'}" in msg
    assert "--data-root" in msg and "GAN_BENCH_DATA" in msg
    with pytest.raises(DataNotFound, match=str(tmp_path / "cifar-10-batches-py")):
        D.get("cifar10", root=tmp_path)
    with pytest.raises(DataNotFound, match=str(tmp_path / "celeba")):
        D.get("celeba", root=tmp_path)
    with pytest.raises(DataNotFound, match="not a directory"):
        D.get(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFound, match="no png/jpg"):
        D.get(f"folder:{tmp_path / 'empty'}")


def test_cache_reused_rebuilt_and_orphaned(tmp_path, cache, monkeypatch):
    imgs = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    src = tmp_path / "mnist" / "train-images-idx3-ubyte"
    write_idx(src, imgs)
    first = D.get("mnist", root=tmp_path)
    (path,) = cache.glob("mnist-train-28-*.pt")
    assert first.info["cache"] == str(path)
    assert torch.equal(torch.load(path, weights_only=True)["images"], first.images)

    def boom(*a, **k):
        raise AssertionError("source re-read despite a cache")

    original = files_mod.read_idx_images
    monkeypatch.setattr(files_mod, "read_idx_images", boom)
    assert torch.equal(D.get("mnist", root=tmp_path).images, first.images)  # cache hit, source not read
    src.unlink()
    assert torch.equal(D.get("mnist", root=tmp_path).images, first.images)  # sources gone: cache serves
    with pytest.raises(DataNotFound):  # a different directory does not pick up that cache
        D.get("mnist", root=tmp_path / "other")
    monkeypatch.setattr(files_mod, "read_idx_images", original)

    write_idx(src, imgs)
    for p in cache.glob("*.pt"):
        p.write_bytes(b"not a torch file")  # corrupt cache: rebuilt, not fatal
    again = D.get("mnist", root=tmp_path)
    assert torch.equal(again.images, first.images)
    assert torch.equal(torch.load(again.info["cache"], weights_only=True)["images"], first.images)

    changed = imgs.copy()
    changed[0] = 255 - changed[0]
    write_idx(src, changed)
    os.utime(src, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a changed source: new key
    assert np.array_equal(D.get("mnist", root=tmp_path).images[0, 0].numpy(), changed[0])


# ----------------------------------------------------------------------------------------------
# CIFAR-10 pickles
# ----------------------------------------------------------------------------------------------
def write_cifar(root: Path, per_batch: int = 4) -> dict[str, np.ndarray]:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(2)
    out = {}
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, :1024] = 10 + i  # red plane
        data[:, 1024:2048] = 100 + i  # green plane
        batch = {b"batch_label": f"batch {i}".encode(), b"labels": list(range(per_batch)), b"data": data,
                 b"filenames": [f"img{k}.png".encode() for k in range(per_batch)]}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        out[name] = data
    return out


def test_cifar10_roundtrip(tmp_path):
    written = write_cifar(tmp_path)
    ds = D.get("cifar10", root=tmp_path)
    assert (ds.shape, ds.n) == ((3, 32, 32), 20)
    want = np.concatenate([written[f"data_batch_{j}"] for j in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert np.array_equal(ds.images.numpy(), want)
    assert (ds.images[0, 0] == 10).all() and (ds.images[0, 1] == 100).all()  # CHW: R plane first
    assert (ds.images[-1, 0] == 14).all()
    assert np.array_equal(ds.images[0, 2].numpy().reshape(-1), written["data_batch_1"][0, 2048:])
    te = D.get("cifar10", root=tmp_path, split="test")
    assert te.n == 4 and (te.images[:, 0] == 15).all()
    assert D.get("cifar10", root=tmp_path, resolution=16).shape == (3, 16, 16)


def test_cifar10_missing_batch(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataNotFound, match="missing data_batch_3"):
        D.get("cifar10", root=tmp_path)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.reliability  # the security part of the reliability suite (tests/test_security.py)
def test_cifar10_malicious_pickle_refused(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    assert D.get("cifar10", root=tmp_path).n == 20  # the training batches still read
    with pytest.raises(UsageError, match=r"test_batch.*refusing to load global (posix|nt)\.system"):
        D.get("cifar10", root=tmp_path, split="test")
    assert not marker.exists()
    pickle.loads(evil)  # the payload is live: an unrestricted unpickler runs it
    assert marker.exists()
    marker.unlink()
    # other ways in are closed too: builtins, and _codecs.encode with a codec other than latin1
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        f.write(b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00print('hi')\x85R.")
    with pytest.raises(UsageError, match="builtins.eval"):
        D.get("cifar10", root=tmp_path, split="test")
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        f.write(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R.")
    with pytest.raises(UsageError, match="refusing _codecs.encode"):
        D.get("cifar10", root=tmp_path, split="test")
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump([1, 2, 3], f, protocol=2)
    with pytest.raises(UsageError, match="expected a dict with b'data'"):
        D.get("cifar10", root=tmp_path, split="test")


# ----------------------------------------------------------------------------------------------
# CelebA, folder:PATH
# ----------------------------------------------------------------------------------------------
def write_celeba(root: Path) -> list[tuple[str, int, tuple[int, int, int]]]:
    from PIL import Image

    d = root / "celeba" / "img_align_celeba"
    d.mkdir(parents=True)
    rows = []
    for i, part in enumerate([0, 0, 1, 2, 0, 2]):
        inside = (40 * i + 20, 200 - 30 * i, 90)
        a = np.zeros((218, 178, 3), dtype=np.uint8)
        a[:] = (0, 0, 255)  # border that Lucic's 160x160 centre crop removes
        a[29:189, 9:169] = inside  # (218 - 160) // 2 = 29 rows, (178 - 160) // 2 = 9 columns
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(a).save(d / name, quality=100, subsampling=0)
        rows.append((name, part, inside))
    (root / "celeba" / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p, _ in rows))
    return rows


def test_celeba(tmp_path, monkeypatch):
    rows = write_celeba(tmp_path)
    ds = D.get("celeba", root=tmp_path)
    assert (ds.shape, ds.n) == ((3, 64, 64), 3)
    assert ds.info["resize"] == D.RESIZE and ds.info["crop"] == 160
    want = [c for _, p, c in rows if p == 0]
    for img, colour in zip(ds.images, want):
        diff = (img.int() - torch.tensor(colour).view(3, 1, 1)).abs()
        assert diff.max() <= 12, diff.max()  # only the inside colour survives the crop
    te = D.get("celeba", root=tmp_path, split="test")
    assert te.n == 2
    assert (te.images[1].float().mean((1, 2)) - torch.tensor(rows[5][2]).float()).abs().max() < 3
    assert D.get("celeba", root=tmp_path, resolution=32).shape == (3, 32, 32)
    (tmp_path / "celeba" / "img_align_celeba" / "000002.jpg").unlink()
    assert torch.equal(D.get("celeba", root=tmp_path).images, ds.images)  # a cache from this directory serves
    monkeypatch.setenv("GAN_BENCH_CACHE", str(tmp_path / "fresh-cache"))
    with pytest.raises(DataNotFound, match="1 of the 3 train images.*first: 000002.jpg"):
        D.get("celeba", root=tmp_path)


def test_crop_or_pad():
    a = np.arange(100 * 120 * 3, dtype=np.int64).reshape(100, 120, 3)
    out = files_mod._crop_or_pad(a, 110)
    assert out.shape == (110, 110, 3)
    assert (out[:5] == 0).all() and (out[105:] == 0).all()  # padded 5 rows each side
    assert np.array_equal(out[5:105], a[:, 5:115])  # cropped 5 columns each side


def test_folder(tmp_path):
    from PIL import Image

    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    specs = [("a.png", (40, 30), (255, 0, 0)), ("b.PNG", (64, 64), (0, 255, 0)), ("sub/c.png", (100, 50), (0, 0, 255))]
    for name, size, colour in specs:
        Image.new("RGB", size, colour).save(d / name)
    Image.new("L", (20, 20), 128).save(d / "sub" / "d.png")  # grayscale: converted to RGB
    (d / "notes.txt").write_text("not an image")
    ds = D.get(f"folder:{d}")
    assert ds.name == f"folder:{d}" and (ds.shape, ds.n) == ((3, 64, 64), 4)
    for img, (_, _, colour) in zip(ds.images, specs):
        assert torch.equal(img, torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).expand(3, 64, 64))
    assert (ds.images[3] == 128).all()
    small = D.get(f"folder:{d}", resolution=16, split="test")
    assert small.shape == (3, 16, 16) and small.n == 4
    assert torch.equal(D.get(f"folder:{d}", split="test").images, ds.images)
    with pytest.raises(UsageError, match="between 4 and 1024"):
        D.get(f"folder:{d}", resolution=2)


def test_kind_of_needs_no_data(tmp_path):
    # mnist files are absent here: kind_of must not try to read them
    assert D.kind_of("ring8") == "points" and D.kind_of("mnist") == "images"
    assert D.kind_of(f"folder:{tmp_path / 'nothing'}") == "images"
    with pytest.raises(UsageError, match="unknown dataset"):
        D.kind_of("nope")
