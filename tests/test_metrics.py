"""Metrics: equal to torch-fidelity's own calculate_metrics, mode coverage, density/coverage, the
reference cache, and scoring inside ``bench train`` (which must not change training)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch_fidelity

from bench import datasets
from bench.config import TrainConfig
from bench.errors import UsageError
from bench.metrics import (Scorer, get_extractor, reference, register_metric, register_with_torch_fidelity, sampler,
                           score_samples)
from bench.metrics.density_coverage import density_coverage
from bench.metrics.feature_extractor_inception import write_random_inception_weights
from bench.train import train

REL = 1e-6


class _Images(torch.utils.data.Dataset):
    """A uint8 image tensor as the Dataset torch-fidelity reads."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _fidelity(gen: torch.Tensor, real: torch.Tensor, extractor: str, **kw) -> dict:
    """torch-fidelity's calculate_metrics, offline, in memory, no cache, input1 = generated."""
    return torch_fidelity.calculate_metrics(
        input1=_Images(gen), input2=_Images(real), cuda=False, isc=True, fid=True, kid=True, prc=True,
        feature_extractor=extractor, save_cpu_ram=True, verbose=False, cache=False, **kw)


def _assert_equal_to_fidelity(ours: dict, theirs: dict, kid64: dict | None = None) -> None:
    """``kid64``: torch-fidelity's KID function on the same features in float64. Our KID computes in
    float64; torch-fidelity's runs in the features' dtype, and its float32 rounding is about 1e-6 of the
    kernel sums (digits-cnn, 200 vs 200, subsets of all 200: every subset has the same MMD, yet its
    float32 KID std is 0.0044 against a KID of 3,493; in float64 it is 8e-12, ours 5e-13). So KID
    equals torch-fidelity's float64 values to 1e-6, and its float32 ones to 1e-5 of max(1, |KID|)."""
    pairs = {"fid": "frechet_inception_distance", "kid": "kernel_inception_distance_mean",
             "kid_std": "kernel_inception_distance_std", "precision": "precision", "recall": "recall",
             "f_score": "f_score", "is": "inception_score_mean", "is_std": "inception_score_std"}
    for a, b in pairs.items():
        if kid64 is not None and a in ("kid", "kid_std"):
            assert math.isclose(ours[a], kid64[b], rel_tol=REL, abs_tol=1e-9), (a, ours[a], kid64[b])
            assert abs(ours[a] - theirs[b]) <= 1e-5 * max(1.0, abs(ours["kid"])), (a, ours[a], theirs[b])
            continue
        assert math.isclose(ours[a], theirs[b], rel_tol=REL, abs_tol=1e-12), (a, ours[a], theirs[b])


def _kid64(extractor: str, gen: torch.Tensor, real: torch.Tensor, size: int, weights: str | None = None) -> dict:
    """torch-fidelity's kid_features_to_metric on float64 features of ``extractor`` (same seed, subsets)."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    ex = get_extractor(extractor, weights)
    f = [ex(x)[ex.feature_layer].double() for x in (gen, real)]
    return kid_features_to_metric(*f, kid_subset_size=size, kid_subsets=100, rng_seed=2020, verbose=False)


def _fake_digits(n: int) -> torch.Tensor:
    """Imperfect 'generated' digits: other images of the set, shifted by a pixel, with noise."""
    g = torch.Generator().manual_seed(1)
    x = datasets.get("digits").uint8()[-n:].roll(1, dims=-1).int()
    return (x + torch.randint(-30, 31, x.shape, generator=g)).clamp(0, 255).to(torch.uint8)


def test_digits_cnn_equals_torch_fidelity():
    register_with_torch_fidelity()
    n = 200
    fake = _fake_digits(n)
    ours = score_samples(fake, "digits", metrics=["fid", "kid", "prc", "is"], extractor="digits-cnn")
    real = datasets.get("digits", split="test").uint8(n)
    theirs = _fidelity(fake, real, "digits-cnn", kid_subset_size=n, isc_splits=10)
    _assert_equal_to_fidelity(ours, theirs, _kid64("digits-cnn", fake, real, n))
    p = ours["provenance"]
    assert p["n_generated"] == p["n_real"] == n and p["kid_subset_size"] == n and p["real_split"] == "test"
    assert p["extractor"] == "digits-cnn" and len(p["weights_sha256"]) == 64 and p["torch_fidelity"] == "0.4.0"
    assert ours["fid"] > 0.1 and 1 < ours["is"] <= 10


def test_inception_equals_torch_fidelity_with_local_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no real weights, and never a download
    weights = write_random_inception_weights(tmp_path / "inception.pth")
    n = 6  # Inception runs at about 5 images/s on this CPU
    fake = _fake_digits(n)
    ours = score_samples(fake, "digits", metrics=["fid", "kid", "prc", "is", "dc"], extractor="inception-v3-compat",
                         fe_weights=str(weights))
    real = datasets.get("digits", split="test").uint8(n)
    tile = lambda x: x.repeat(1, 3, 1, 1)  # noqa: E731  grayscale tiled to RGB, as Lucic
    theirs = _fidelity(tile(fake), tile(real), "inception-v3-compat", feature_extractor_weights_path=str(weights),
                       kid_subset_size=n, isc_splits=n)
    _assert_equal_to_fidelity(ours, theirs, _kid64("inception-v3-compat", fake, real, n, str(weights)))
    p = ours["provenance"]
    assert p["resize"] == "torch-fidelity-bilinear-299" and p["channels"] == "grayscale tiled to 3"
    assert p["weights_sha256"] == get_extractor("inception-v3-compat", str(weights)).weights_sha256
    assert 0 <= ours["coverage"] <= 1 and ours["density"] >= 0


def test_inception_without_weights_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GAN_BENCH_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(UsageError, match="weights-inception-2015-12-05-6726825d.pth") as e:
        get_extractor("inception-v3-compat")
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in str(e.value) and "\n" not in str(e.value)
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(UsageError, match="cannot use .* as Inception weights"):
        get_extractor("inception-v3-compat", str(bad))


def _mixture(ds, seed: int, collapse: bool = False):
    """A generator of the true mixture (or of its first mode only), with its own RNG."""
    def generate(m: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        k = torch.zeros(m, dtype=torch.long) if collapse else torch.randint(len(ds.centres), (m,), generator=g)
        return ds.centres[k] + ds.std * torch.randn(m, 2, generator=g)
    return generate


def test_ring8_true_mixture_scores_near_zero_and_collapse_is_caught():
    ds = datasets.get("ring8")
    good = score_samples(_mixture(ds, 7), "ring8", metrics=["fid", "modes"], n=2000)
    assert good["fid"] < 0.05 and good["modes"] == good["modes_total"] == 8
    # 3 std in 2-D holds 1 - exp(-9/2) = 98.9% of a Gaussian's mass
    assert good["hq_fraction"] > 0.98 and good["mode_kl"] < 0.01
    bad = score_samples(_mixture(ds, 7, collapse=True), "ring8", metrics=["fid", "modes"], n=2000)
    assert bad["modes"] == 1 and bad["fid"] > 1 and bad["mode_kl"] > 2 and bad["hq_fraction"] > 0.98


def test_non_finite_samples_fail_the_feature_metrics_but_are_counted():
    x = datasets.get("ring8", split="train").real(100)
    x[3, 0] = float("nan")
    out = score_samples(x, "ring8", metrics=["fid", "prc", "modes"])
    assert math.isnan(out["fid"]) and math.isnan(out["precision"]) and out["provenance"]["nonfinite_samples"] == 1
    assert out["modes"] == 8 and out["hq_fraction"] < 1


def test_digits_class_modes():
    x = datasets.get("digits").uint8()
    full = score_samples(x[:1000], "digits", metrics=["modes"])
    assert full["modes"] == 10 and full["mode_kl"] < 0.01 and "hq_fraction" not in full
    one = score_samples(x[:1].repeat(200, 1, 1, 1), "digits", metrics=["modes"], extractor="identity")
    assert one["modes"] == 1 and one["mode_kl"] > 2 and one["provenance"]["mode_classifier"] == "digits-cnn"


def test_stacked_digits_classifier_accuracy():
    """digits-cnn on real stacked digits, one channel at a time (the numbers in bench.metrics.modes)."""
    from bench.data.synthetic import stacked_digits_labels

    clf = get_extractor("digits-cnn", None, "cpu")
    for res, n, per_channel, triples in ((8, 10_000, 0.997, 0.99), (16, 2_000, 0.97, 0.92), (32, 2_000, 0.97, 0.93)):
        x = datasets.get("stacked-digits", split="test", resolution=res).uint8(n)
        pred = clf(x.flatten(0, 1).unsqueeze(1), 1024)["logits"].argmax(1).view(n, 3)
        right = pred == stacked_digits_labels("test", n)
        assert right.float().mean(0).min() >= per_channel and right.all(1).float().mean() >= triples, res


def test_stacked_digits_features_see_each_channel():
    """stacked-digits' FID features (digits-cnn-channels) see each channel; digits-cnn's channel mean
    cannot: the same images with their channels reordered so that classes ascend (220 of the 1,000
    triples) have exactly the same channel means, so the same digits-cnn FID, but a far worse one here."""
    from bench.data.synthetic import stacked_digits_labels

    register_with_torch_fidelity()
    n = 2000
    x = datasets.get("stacked-digits").uint8(n)
    order = stacked_digits_labels("train", n).argsort(dim=1, stable=True)
    ascending = torch.stack([x[i, order[i]] for i in range(n)])
    mean = [score_samples(v, "stacked-digits", metrics=["fid"], extractor="digits-cnn")["fid"] for v in (x, ascending)]
    assert mean[0] == pytest.approx(mean[1], rel=1e-9, abs=1e-9)
    per = [score_samples(v, "stacked-digits", metrics=["fid"]) for v in (x, ascending)]
    assert per[0]["provenance"]["extractor"] == "digits-cnn-channels"
    assert per[1]["fid"] > 5 * per[0]["fid"], (per[0]["fid"], per[1]["fid"])
    real = datasets.get("stacked-digits", split="test").uint8(n)
    theirs = torch_fidelity.calculate_metrics(input1=_Images(ascending), input2=_Images(real), cuda=False, fid=True,
                                              feature_extractor="digits-cnn-channels", verbose=False, cache=False)
    assert math.isclose(per[1]["fid"], theirs["frechet_inception_distance"], rel_tol=REL)
    # one channel: the same features as digits-cnn
    d = datasets.get("digits").uint8(50)
    assert torch.equal(get_extractor("digits-cnn-channels", None, "cpu")(d)["penultimate"],
                       get_extractor("digits-cnn", None, "cpu")(d)["penultimate"])


def test_stacked_digits_modes():
    x = datasets.get("stacked-digits").uint8(10_000)
    real = score_samples(x, "stacked-digits", metrics=["modes"])
    assert real["modes_total"] == 1000 and real["modes"] >= 995 and real["mode_kl"] < 0.07
    p = real["provenance"]
    assert (p["mode_classifier"], p["mode_min_fraction"], p["mode_kl_to"]) == ("digits-cnn", 0.0, "uniform")
    one = score_samples(x[:1].repeat(500, 1, 1, 1), "stacked-digits", metrics=["modes"])
    assert one["modes"] == 1 and one["mode_kl"] == pytest.approx(math.log(1000))
    # the classifier reads each channel on its own: the same digit in every channel is one triple (a, a, a)
    gray = score_samples(x[:500, :1].repeat(1, 3, 1, 1), "stacked-digits", metrics=["modes"])
    assert gray["modes"] <= 10


def test_class_modes_threshold():
    from bench.datasets import Modes, describe
    from bench.metrics.modes import class_modes

    classes = torch.tensor([[0, 0, 0]] * 999 + [[1, 2, 3]])  # one sample in triple 123
    uniform = torch.full((1000,), 1e-3, dtype=torch.float64)
    assert class_modes(classes, uniform, min_fraction=describe("stacked-digits").modes.min_fraction)["modes"] == 2
    assert class_modes(classes, uniform, min_fraction=0.01)["modes"] == 1
    # digits keeps its 1% rule and KL to the data's class frequencies
    assert describe("digits").modes == Modes("classes", min_fraction=0.01, kl_to="data")
    assert class_modes(torch.tensor([[3]] * 5), torch.full((10,), 0.1), min_fraction=0.01) == {
        "modes": 1, "modes_total": 10, "mode_kl": pytest.approx(math.log(10)), "modes_mask": 1 << 3}


def test_density_coverage_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    real, fake, k = torch.randn(40, 3, generator=g), torch.randn(25, 3, generator=g) * 1.3, 5
    d = lambda a, b: math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))  # noqa: E731
    radii = [sorted(d(r, s) for s in real)[k] for r in real]  # k-th neighbour; index 0 is the point itself
    inside = [[d(f, r) < radii[i] for i, r in enumerate(real)] for f in fake]
    density = sum(map(sum, inside)) / (k * len(fake))
    coverage = sum(any(row[i] for row in inside) for i in range(len(real))) / len(real)
    got = density_coverage(real, fake, k)
    assert math.isclose(got[0], density, rel_tol=1e-12) and math.isclose(got[1], coverage, rel_tol=1e-12)
    assert 0 < coverage < 1 and density > 0


def test_reference_cache_skips_the_real_side(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_BENCH_CACHE", str(tmp_path / "cache"))
    gen = _mixture(datasets.get("ring8"), 3)
    before = reference.computations
    first = score_samples(gen, "ring8", metrics=["fid", "dc"], n=300)
    assert reference.computations == before + 1
    files = sorted((tmp_path / "cache" / "reference").glob("*.pt"))
    assert [f.name for f in files] == [first["provenance"]["reference"]]
    second = score_samples(gen, "ring8", metrics=["fid", "dc"], n=300)
    assert reference.computations == before + 1 and second["fid"] == first["fid"]
    score_samples(gen, "ring8", metrics=["fid"], n=400)  # another sample count: another file
    assert reference.computations == before + 2 and len(list((tmp_path / "cache" / "reference").glob("*.pt"))) == 2
    files[0].write_bytes(b"torn")  # a corrupt cache file is recomputed, not fatal
    assert score_samples(gen, "ring8", metrics=["fid", "dc"], n=300)["fid"] == first["fid"]
    assert reference.computations == before + 3


@pytest.mark.parametrize("z_dist", ["uniform", "normal"])
def test_sampler_is_deterministic_and_leaves_the_global_rng_alone(z_dist):
    """What the sampler promises (bench.metrics.samples): z depends on the seed and n, never on the
    batch size (bitwise, by construction: one draw); G's outputs are bitwise equal for the same batch
    size, and only float-close across batch sizes, since a GEMM picks its kernel by shape (on an
    AVX-512 MKL machine batches of 7 and 30 differ by ~6e-8)."""
    G = torch.nn.Linear(4, 2)
    state = torch.get_rng_state()
    z7, z_all = sampler(lambda z: z, 4, z_dist, seed=5, batch_size=7)(30), sampler(lambda z: z, 4, z_dist, seed=5)(30)
    assert torch.equal(z7, z_all)
    a, b = sampler(G, 4, z_dist, seed=5, batch_size=7)(30), sampler(G, 4, z_dist, seed=5)(30)
    assert torch.equal(a, sampler(G, 4, z_dist, seed=5, batch_size=7)(30))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(a, sampler(G, 4, "normal" if z_dist == "uniform" else "uniform", seed=5)(30))


def test_bad_requests_are_usage_errors():
    with pytest.raises(UsageError, match="unknown metric 'fdi'"):
        Scorer("ring8", metrics=["fdi"])
    with pytest.raises(UsageError, match="only the identity extractor"):
        Scorer("ring8", extractor="digits-cnn")
    with pytest.raises(UsageError, match="needs class logits"):
        Scorer("digits", metrics=["is"], extractor="identity")
    with pytest.raises(UsageError, match="modes applies to"):
        Scorer("polygons", metrics=["modes"])
    with pytest.raises(UsageError, match="does not fit ring8"):
        score_samples(torch.zeros(20, 3), "ring8", metrics=["fid"])
    assert "is" not in Scorer("digits", extractor="identity", n=20).metrics  # a default that does not apply


def test_registries_validate_and_are_shared_with_torch_fidelity():
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    register_with_torch_fidelity()
    assert {"identity", "digits-cnn", "digits-cnn-channels", "inception-v3-compat"} <= set(FEATURE_EXTRACTORS_REGISTRY)
    from bench.metrics import feature_extractor_digits_cnn as dcnn
    from bench.metrics import registry

    assert FEATURE_EXTRACTORS_REGISTRY["digits-cnn-channels"] is dcnn.FeatureExtractorDigitsCNNChannels
    # one call registers both: ours now, torch-fidelity's on first use, under the same name
    registry.register_extractor("test-flat", "bench.metrics.feature_extractor_identity:build",
                                fidelity="bench.metrics.feature_extractor_identity:FeatureExtractorIdentity")
    try:
        assert "test-flat" in registry.extractor_names() and "test-flat" not in FEATURE_EXTRACTORS_REGISTRY
        register_with_torch_fidelity("test-flat")
        assert FEATURE_EXTRACTORS_REGISTRY["test-flat"].__name__ == "FeatureExtractorIdentity"
    finally:
        registry._EXTRACTORS.pop("test-flat", None)
        FEATURE_EXTRACTORS_REGISTRY.pop("test-flat", None)
    with pytest.raises(ValueError, match="fidelity class must be callable"):
        registry.register_extractor("test-bad", "m:f", fidelity="no-colon")
    with pytest.raises(ValueError, match="already registered"):
        register_metric("fid", lambda g, r, c: {}, needs="features", keys=("fid",))
    with pytest.raises(ValueError, match="needs must be"):
        register_metric("new", lambda g, r, c: {}, needs="everything", keys=("new",))


def _state(out) -> dict:
    from bench import checkpoint

    ck = checkpoint.load(checkpoint.list_checkpoints(out)[-1])
    return {k: ck[k] for k in ("G", "D", "opt_g", "opt_d", "rng_cpu", "step")}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def test_train_scores_checkpoints_without_changing_training(tmp_path):
    base = dict(dataset="ring8", loss="ns", arch="mlp", steps=40, log_every=10, ckpt_every=20, device="cpu",
                noise_anneal_steps=0)
    scored = dict(metrics=["fid", "modes"], eval_samples=300)
    plain = train(TrainConfig(**base), tmp_path / "plain")
    once = train(TrainConfig(**base, **scored), tmp_path / "once")
    assert plain.scores == {} and once.scores["step"] == 40 and "fid" in once.scores
    rows = [json.loads(line) for line in (tmp_path / "once" / "scores.jsonl").read_text().splitlines()]
    assert [(r["step"], r["checkpoint"]) for r in rows] == [(20, "checkpoints/step_00000020.pt"),
                                                             (40, "checkpoints/step_00000040.pt")]
    assert all(r["provenance"]["n_generated"] == 300 for r in rows)
    assert _same(_state(tmp_path / "plain"), _state(tmp_path / "once"))  # scoring did not touch training
    # Stopped at 20, then resumed to 40; the score of step 20 was lost (stopped before it was written).
    train(TrainConfig(**{**base, "steps": 20}, **scored), tmp_path / "resumed")
    (tmp_path / "resumed" / "scores.jsonl").write_text("")
    train(TrainConfig(**base, **scored), tmp_path / "resumed")
    assert _same(_state(tmp_path / "once"), _state(tmp_path / "resumed"))
    again = [json.loads(line) for line in (tmp_path / "resumed" / "scores.jsonl").read_text().splitlines()]
    assert [r["step"] for r in again] == [20, 40] and [r["fid"] for r in again] == [r["fid"] for r in rows]


# -- exact k-NN (bench.metrics.knn) and batched KID (bench.metrics.kid) ------------------------

def _brute_balls(centres: torch.Tensor, points: torch.Tensor, k: int, strict: bool) -> tuple[list, list]:
    """The definition, by brute force over all pairs in float64 (difference formula): per point the
    number of balls holding it, per ball whether any point lies in it."""
    c, p = centres.double(), points.double()
    own = ((c[:, None] - c[None]) ** 2).sum(-1).sqrt()
    radii = own.sort(dim=1).values[:, k]  # index 0: the point itself (or a duplicate)
    d = ((p[:, None] - c[None]) ** 2).sum(-1).sqrt()  # [points, centres]
    inside = d < radii[None] if strict else d <= radii[None]
    return inside.sum(1).tolist(), inside.any(0).tolist()


def _brute_prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> dict:
    in_real, _ = _brute_balls(real, fake, k_pr, strict=False)
    in_fake, _ = _brute_balls(fake, real, k_pr, strict=False)
    counts, hit = _brute_balls(real, fake, k_dc, strict=True)
    return {"precision": sum(c > 0 for c in in_real) / len(fake), "recall": sum(c > 0 for c in in_fake) / len(real),
            "density": sum(counts) / (k_dc * len(fake)), "coverage": sum(hit) / len(real)}


def _ours_prdc(real, fake, real_radii=None) -> dict:
    from bench.metrics import knn

    p, r = knn.precision_recall(real, fake, 3)
    d, c = knn.density_coverage(real, fake, 5)
    return {"precision": p, "recall": r, "density": d, "coverage": c}


def _lattice(n: int, dim: int, side: int, seed: int) -> torch.Tensor:
    """Integer points on a small grid: many duplicates and many equal distances, all of them exact in
    float32 (so torch-fidelity's float32 matmul distances are exact too)."""
    return torch.randint(0, side, (n, dim), generator=torch.Generator().manual_seed(seed)).float()


@pytest.fixture(params=["kd-tree", "torch"])
def knn_path(request, monkeypatch):
    """Both exact k-NN paths on the same inputs: KD-trees (d <= KD_MAX_DIM) and blocked matmul + topk."""
    from bench.metrics import knn

    monkeypatch.setattr(knn, "KD_MAX_DIM", 10_000 if request.param == "kd-tree" else 0)
    monkeypatch.setattr(knn, "_BLOCK", 37)  # several blocks, a ragged last one
    return request.param


@pytest.mark.parametrize("dim", [2, 5, 64])
def test_knn_precision_recall_equal_torch_fidelity(knn_path, dim):
    from torch_fidelity.metric_prc import prc_features_to_metric

    g = torch.Generator().manual_seed(dim)
    real = torch.randn(300, dim, generator=g, dtype=torch.float64)
    fake = (1 + 0.5 / dim ** 0.5) * torch.randn(260, dim, generator=g, dtype=torch.float64) + 0.3 / dim ** 0.5
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=3, save_cpu_ram=True, verbose=False)
    ours = _ours_prdc(real, fake)
    for key in ("precision", "recall"):  # torch-fidelity averages in float32: 1e-7 is its rounding
        assert ours[key] == pytest.approx(theirs[key], abs=1e-7), (key, ours[key], theirs[key])
        assert round(ours[key] * len(fake if key == "precision" else real)) == \
            round(theirs[key] * len(fake if key == "precision" else real))  # the same count of samples
    assert 0.05 < ours["precision"] < 0.99 and 0.05 < ours["recall"] < 0.99  # neither trivially 0 nor 1
    brute = _brute_prdc(real, fake)
    assert ours == pytest.approx(brute, abs=1e-12)


@pytest.mark.parametrize("dim,side", [(2, 4), (2, 9), (3, 3), (20, 2)])
def test_knn_ties_and_duplicates_follow_each_metrics_convention(knn_path, dim, side):
    """Lattice data: duplicated points and distances equal to a radius, where <= (precision/recall,
    torch-fidelity) and < (density/coverage, prdc) give different answers; torch-fidelity's own
    float32 computation is exact here."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    real, fake = _lattice(120, dim, side, 1), _lattice(90, dim, side, 2)
    ours = _ours_prdc(real, fake)
    assert ours == pytest.approx(_brute_prdc(real, fake), abs=1e-12)
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=3, save_cpu_ram=True, verbose=False)
    assert (ours["precision"], ours["recall"]) == pytest.approx((theirs["precision"], theirs["recall"]), abs=1e-7)
    # the convention decides something here: open balls (<) would give another precision or density
    counts_open, _ = _brute_balls(real, fake, 3, strict=True)
    counts_closed, _ = _brute_balls(real, fake, 5, strict=False)
    open_precision = sum(c > 0 for c in counts_open) / len(fake)
    assert open_precision != ours["precision"] or sum(counts_closed) / (5 * len(fake)) != ours["density"]


@pytest.mark.parametrize("points", ["gaussian", "lattice"])
def test_knn_identical_real_and_generated_sets(knn_path, points):
    """Every sample lies on its own twin (distance 0): precision = recall = 1 with closed balls; with
    open balls a twin counts only where the radius is positive (zero radii: >= k + 1 copies)."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    x = torch.randn(150, 3, generator=torch.Generator().manual_seed(4)) if points == "gaussian" else \
        _lattice(25, 2, 5, 4).repeat(6, 1)  # 6 copies of each point: every 3-NN and 5-NN radius is 0
    ours = _ours_prdc(x, x.clone())
    assert ours["precision"] == ours["recall"] == 1.0
    assert ours == pytest.approx(_brute_prdc(x, x), abs=1e-12)
    theirs = prc_features_to_metric(x, x.clone(), prc_neighborhood=3, save_cpu_ram=True, verbose=False)
    assert theirs["precision"] == theirs["recall"] == 1.0
    if points == "lattice":  # every radius is 0: closed balls hold their twins, open balls nothing
        assert ours["density"] == ours["coverage"] == 0.0


def test_knn_collapsed_generator_duplicates(knn_path):
    """A generator whose samples are all one point: generated radii are 0; that point is inside the
    real manifold only if some real ball holds it."""
    real = torch.randn(200, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for fake in (real[:1].repeat(50, 1), torch.full((50, 2), 9.0, dtype=torch.float64)):
        assert _ours_prdc(real, fake) == pytest.approx(_brute_prdc(real, fake), abs=1e-12)


def test_knn_on_ring8_equals_torch_fidelity_in_float64():
    """The protocol's data (fewer points: at 10,000, 3-NN radii of ring8 points are ~0.002, where
    torch-fidelity's float32 matmul distances are off by several percent and its precision by 1.7e-3,
    benchmarks/metrics_speed.py); on float64 features it decides every sample as we do."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    ds = datasets.get("ring8")
    real, fake = ds.real(1500), _mixture(ds, 11)(1400) * 1.01  # rings 1 std apart
    ours = _ours_prdc(real, fake)
    theirs = prc_features_to_metric(fake.double(), real.double(), prc_neighborhood=3, save_cpu_ram=True, verbose=False)
    assert round(ours["precision"] * 1400) == round(theirs["precision"] * 1400)
    assert round(ours["recall"] * 1500) == round(theirs["recall"] * 1500)
    assert ours == pytest.approx(_brute_prdc(real, fake), abs=1e-12)
    assert 0.3 < ours["precision"] < 0.99 and 0.3 < ours["recall"] < 0.99


def test_knn_scattered_generator(knn_path, monkeypatch):
    """A diverged but finite generator, spread far wider than the data: its k-NN balls are wide and
    hold many real samples each (the KD path checks such balls densely; _HEAVY lowered so that light
    and heavy balls mix)."""
    from bench.metrics import knn

    monkeypatch.setattr(knn, "_HEAVY", 20)
    monkeypatch.setattr(knn, "_DENSE", 1000)
    g = torch.Generator().manual_seed(10)
    real = torch.randn(300, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(200, 2, generator=g, dtype=torch.float64) * 4
    ours = _ours_prdc(real, fake)
    assert ours == pytest.approx(_brute_prdc(real, fake), abs=1e-12)
    held = (torch.cdist(fake, real) <= knn.knn_radii(fake, 3)[:, None]).sum(1)
    assert (held > 20).sum() >= 5 and (held <= 20).sum() >= 50  # heavy and light balls both occur


def test_knn_torch_path_is_exact_where_its_float32_pass_is_not(monkeypatch):
    """Far from the origin the coarse float32 matmul distance is off by far more than the distances
    themselves (|x|^2 ~ 2e7, distances^2 ~ 0.01 to 1): every decision must come from the float64
    recomputation, ties and duplicates included."""
    from bench.metrics import knn

    monkeypatch.setattr(knn, "KD_MAX_DIM", 0)
    monkeypatch.setattr(knn, "_BLOCK", 37)
    real, fake = (_lattice(n, 20, 3, seed).double() * 0.1 + 1000.0 for n, seed in ((80, 7), (70, 8)))
    assert _ours_prdc(real, fake) == pytest.approx(_brute_prdc(real, fake), abs=1e-12)
    g = torch.Generator().manual_seed(8)
    real, fake = (torch.randn(n, 20, generator=g, dtype=torch.float64) * 0.3 + 1000.0 for n in (90, 60))
    assert _ours_prdc(real, fake) == pytest.approx(_brute_prdc(real, fake), abs=1e-12)


def test_density_coverage_with_cached_radii_on_both_paths(monkeypatch):
    from bench.metrics import knn

    g = torch.Generator().manual_seed(6)
    real, fake = torch.randn(333, 8, generator=g), torch.randn(201, 8, generator=g) * 1.1
    kd_radii = knn.knn_radii(real, 5)
    kd = knn.density_coverage(real, fake, 5, kd_radii)
    monkeypatch.setattr(knn, "KD_MAX_DIM", 0)
    torch_radii = knn.knn_radii(real, 5)
    assert torch.allclose(kd_radii, torch_radii, rtol=1e-12, atol=0)
    assert knn.density_coverage(real, fake, 5, torch_radii) == pytest.approx(kd, abs=1e-12)
    assert kd == pytest.approx(density_coverage(real, fake, 5), abs=1e-12)


@pytest.mark.parametrize("dim,n1,n2,size,subsets", [(2, 400, 350, 100, 20), (64, 180, 210, 90, 7), (3, 60, 60, 60, 3)])
def test_kid_equals_torch_fidelity(dim, n1, n2, size, subsets):
    """Same subsets (same seed), same numbers: to 1e-9 on float64 features (both routes); on float32
    features torch-fidelity computes in float32, about 2e-7 off the float64 value (measured), within 1e-6."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    from bench.metrics.kid import kid

    g = torch.Generator().manual_seed(dim)
    gen64, real64 = torch.randn(n1, dim, generator=g, dtype=torch.float64) * 1.3 + 0.3, \
        torch.randn(n2, dim, generator=g, dtype=torch.float64)
    routes = set()
    for gen, real, tol in ((gen64, real64, 1e-9), (gen64.float(), real64.float(), REL)):
        theirs = kid_features_to_metric(gen, real, kid_subset_size=size, kid_subsets=subsets, rng_seed=2020,
                                        verbose=False)
        mean, std, route = kid(gen, real, subset_size=size, subsets=subsets, seed=2020)
        routes.add(route)
        assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=tol, abs=1e-12)
        assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=tol, abs=tol)  # std 0: rounding
        assert mean > 1e-4  # a real difference is measured, not noise around 0
    assert routes == {"moments" if dim <= 3 else "gram"}


def test_kid_routes_agree_with_each_other_and_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    from bench.metrics import kid as K

    g = torch.Generator().manual_seed(9)
    x, y = torch.randn(150, 4, generator=g, dtype=torch.float64) + 0.2, torch.randn(170, 4, generator=g, dtype=torch.float64)
    i1, i2 = (torch.from_numpy(a) for a in K.subset_indices(150, 170, 50, 6, 1))
    sums = [K._ROUTES[r](x, y, i1, i2, 3, 0.25, 1.0) for r in ("moments", "gram", "subsets")]
    for other in sums[1:]:
        for a, b in zip(sums[0], other):
            assert torch.allclose(a, b, rtol=1e-12, atol=0)
    theirs = kid_features_to_metric(x, y, kid_subset_size=50, kid_subsets=6, rng_seed=1, verbose=False)
    for route in K._ROUTES:
        mean, std, _ = K.kid(x, y, subset_size=50, subsets=6, seed=1, route=route)
        assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
        assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-9)
    # the real side's subset sums, kept for the next call with the same counts: the same numbers
    for route in K._ROUTES:
        cache: dict = {}
        first = K.kid(x, y, subset_size=50, subsets=6, seed=1, route=route, real_cache=cache)
        assert len(cache) == 2  # the subsets' indices and the real side's sums
        other = x.flip(0) * 1.1  # another checkpoint, same counts
        assert K.kid(other, y, subset_size=50, subsets=6, seed=1, route=route, real_cache=cache) == \
            K.kid(other, y, subset_size=50, subsets=6, seed=1, route=route)
        assert K.kid(x, y, subset_size=50, subsets=6, seed=1, route=route, real_cache=cache) == first
    # many samples in high dimension (stacked-digits: 26,000 x 192): the subsets' own blocks are cheapest
    costs = K.route_costs(26_000, 26_000, 192, 1000, 100)
    assert min(costs, key=costs.get) == "subsets"


def test_reference_cache_holds_both_knn_radii(tmp_path, monkeypatch):
    from bench.metrics import knn

    monkeypatch.setenv("GAN_BENCH_CACHE", str(tmp_path / "cache"))
    gen = _mixture(datasets.get("ring8"), 3)
    cached = score_samples(gen, "ring8", metrics=["prc", "dc"], n=500)
    blob = torch.load(next((tmp_path / "cache" / "reference").glob("*.pt")), weights_only=True)
    key = json.loads(blob["key"])
    assert (key["prc_k"], key["dc_k"]) == (3, 5)
    assert torch.equal(blob["prc_radii"], knn.knn_radii(blob["features"], 3))
    assert torch.equal(blob["radii"], knn.knn_radii(blob["features"], 5))
    again = score_samples(gen, "ring8", metrics=["prc", "dc"], n=500)  # from the cache
    uncached = score_samples(gen, "ring8", metrics=["prc", "dc"], n=500, cache=False)
    for k in ("precision", "recall", "f_score", "density", "coverage"):
        assert cached[k] == again[k] == uncached[k], k
    assert cached["provenance"]["knn"] == "exact, scipy cKDTree"


def test_2d_defaults_leave_kid_opt_in():
    from bench.datasets import default_metrics

    assert default_metrics("ring8") == ["w1", "fid", "prc", "dc", "modes"]
    assert "kid" in default_metrics("digits")
    x = datasets.get("ring8", split="train").real(300)
    out = score_samples(x, "ring8")
    assert "kid" not in out and "kid" not in out["provenance"]["metrics"]
    assert "kid" in score_samples(x, "ring8", metrics=["kid"])
    both = score_samples(x, "ring8", metrics=["default", "kid"])  # bench score --metrics default,kid
    assert "kid" in both and "precision" in both and both["provenance"]["kid_sums"] == "moments"


def test_kid_real_side_sums_are_cached_beside_the_reference(tmp_path, monkeypatch):
    """A second process (here: a fresh Scorer reading the reference from disk) computes only KID's
    generated and cross terms; the cached sums give the same KID bit for bit, and a torn file is
    recomputed."""
    from bench.metrics import kid as K

    monkeypatch.setenv("GAN_BENCH_CACHE", str(tmp_path / "cache"))
    gen = _mixture(datasets.get("ring8"), 3)
    before = K.real_terms_computed
    first = score_samples(gen, "ring8", metrics=["kid"], n=400)
    assert K.real_terms_computed == before + 1
    ref_dir = tmp_path / "cache" / "reference"
    (ref_file,) = [f for f in ref_dir.glob("*.pt") if f.name == first["provenance"]["reference"]]
    (term,) = [f for f in ref_dir.glob("*.pt") if f != ref_file]
    assert term.name.startswith(ref_file.stem + ".kid-")
    blob = torch.load(term, weights_only=True)
    assert blob["value"].dtype == torch.float64 and blob["value"].shape == (first["provenance"]["kid_subsets"],)
    second = score_samples(gen, "ring8", metrics=["kid"], n=400)
    assert K.real_terms_computed == before + 1 and (second["kid"], second["kid_std"]) == (first["kid"], first["kid_std"])
    uncached = score_samples(gen, "ring8", metrics=["kid"], n=400, cache=False)
    assert uncached["kid"] == first["kid"] and K.real_terms_computed == before + 2
    term.write_bytes(b"torn")
    assert score_samples(gen, "ring8", metrics=["kid"], n=400)["kid"] == first["kid"]
    assert K.real_terms_computed == before + 3
