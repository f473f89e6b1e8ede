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


def _assert_equal_to_fidelity(ours: dict, theirs: dict) -> None:
    pairs = {"fid": "frechet_inception_distance", "kid": "kernel_inception_distance_mean",
             "kid_std": "kernel_inception_distance_std", "precision": "precision", "recall": "recall",
             "f_score": "f_score", "is": "inception_score_mean", "is_std": "inception_score_std"}
    for a, b in pairs.items():
        assert math.isclose(ours[a], theirs[b], rel_tol=REL, abs_tol=1e-12), (a, ours[a], theirs[b])


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
    _assert_equal_to_fidelity(ours, theirs)
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
    _assert_equal_to_fidelity(ours, theirs)
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
    from bench.metrics.modes import CLASS_MODES, class_modes

    classes = torch.tensor([[0, 0, 0]] * 999 + [[1, 2, 3]])  # one sample in triple 123
    uniform = torch.full((1000,), 1e-3, dtype=torch.float64)
    assert class_modes(classes, uniform, min_fraction=CLASS_MODES["stacked-digits"]["min_fraction"])["modes"] == 2
    assert class_modes(classes, uniform, min_fraction=0.01)["modes"] == 1
    # digits keeps its 1% rule and KL to the data's class frequencies
    assert CLASS_MODES["digits"] == {"min_fraction": 0.01, "kl_to": "data"}
    assert class_modes(torch.tensor([[3]] * 5), torch.full((10,), 0.1), min_fraction=0.01) == {
        "modes": 1, "modes_total": 10, "mode_kl": pytest.approx(math.log(10))}


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
    assert {"identity", "digits-cnn", "inception-v3-compat"} <= set(FEATURE_EXTRACTORS_REGISTRY)
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
