"""``bench score`` and ``bench train --metrics`` through the real CLI (subprocesses)."""
from __future__ import annotations

import json
import math
import zipfile

import pytest
import torch

from bench.config import TrainConfig
from bench.errors import UsageError
from bench.metrics.generator_file import check_archive, load_generator_file
from bench.train import train
from tests.conftest import run_bench, run_cli

RING = [[math.cos(2 * math.pi * k / 8) * 2, math.sin(2 * math.pi * k / 8) * 2] for k in range(8)]


class RingGenerator(torch.nn.Module):
    """z ~ N(0, I) [N, 3] -> ring8: the mode from Phi(z_0), 0.02 * (z_1, z_2) around it."""

    def __init__(self, out_dim: int = 2):
        super().__init__()
        self.register_buffer("centres", torch.tensor(RING))
        self.out_dim = out_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = (torch.special.ndtr(z[:, 0]) * 8).floor().clamp(0, 7).long()
        x = self.centres[k] + 0.02 * z[:, 1:3]
        return x if self.out_dim == 2 else torch.cat([x, z[:, :1]], 1)


class DigitLikeGenerator(torch.nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z[:, :64]).reshape(-1, 1, 8, 8)


def _export(module: torch.nn.Module, z_dim: int, path):
    batch = torch.export.Dim("batch")
    ep = torch.export.export(module, (torch.randn(16, z_dim),), dynamic_shapes={"z": {0: batch}})
    torch.export.save(ep, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    run = d / "run"
    train(TrainConfig(dataset="ring8", steps=20, log_every=10, ckpt_every=10, device="cpu"), run)
    corrupt = d / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not a checkpoint at all")
    return {
        "run": run, "corrupt": corrupt,
        "ring": _export(RingGenerator(), 3, d / "ring.pt2"),
        "digits": _export(DigitLikeGenerator(), 64, d / "digits.pt2"),
        "torch_home": d / "torch-home",  # empty: no Inception weights anywhere
        "dir": d,
    }


def _bad_inputs(f) -> dict[str, tuple[list, str]]:
    run, gen = f["run"], ["--generator", f["ring"], "--dataset", "ring8"]
    return {
        "unknown metric": ([run, "--metrics", "fid,fjd"], "unknown metric 'fjd'"),
        "unknown extractor": ([run, "--feature-extractor", "vgg"], "unknown feature extractor 'vgg'"),
        "missing checkpoint": ([f["dir"] / "nope.pt"], "not found"),
        "corrupt checkpoint": ([f["corrupt"]], "cannot read checkpoint"),
        "missing generator": (["--generator", f["dir"] / "nope.pt2", "--z-dim", 3, "--dataset", "ring8"], "not found"),
        "corrupt generator": (["--generator", f["corrupt"], "--z-dim", 3, "--dataset", "ring8"], "not a torch.export"),
        "z-dim not what it takes": ([*gen, "--z-dim", 5], "failed on z of shape"),
        "z-dim zero": ([*gen, "--z-dim", 0], "--z-dim must be a positive integer"),
        "samples zero": ([run, "--samples", 0], "--samples must be a positive integer"),
        "no inception weights": (["--generator", f["digits"], "--z-dim", 64, "--dataset", "digits",
                                  "--feature-extractor", "inception-v3-compat"], "weights-inception-2015-12-05"),
    }


def test_bad_input_is_one_line_exit_2(files, monkeypatch):
    cases = _bad_inputs(files)
    monkeypatch.setenv("TORCH_HOME", str(files["torch_home"]))
    monkeypatch.setenv("GAN_BENCH_INCEPTION_WEIGHTS", "")
    results = {name: run_cli("score", *c[0]) for name, c in cases.items()}
    for name, r in results.items():
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, (name, r.returncode, r.stderr[-2000:])
        assert len(lines) == 1 and "Traceback" not in r.stderr and r.stdout == "", (name, r.stderr)
        assert cases[name][1] in lines[0], (name, lines[0])
    assert not files["torch_home"].exists()  # nothing was downloaded


def test_score_run_dir_json_has_every_default_metric(files):
    r = run_bench("score", files["run"], "--samples", 200, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for k in ("w1", "fid", "precision", "recall", "f_score", "density", "coverage", "modes", "hq_fraction"):
        assert isinstance(out[k], (int, float)), k
    assert out["primary"] == {"metric": "w1", "value": out["w1"], "lower_is_better": True}
    assert "is" not in out  # no logits for 2-D data
    p = out["provenance"]
    assert p["n_generated"] == p["n_real"] == 200 and p["real_split"] == "test" and p["extractor"] == "identity"
    assert "kid" not in out and p["checkpoint"].endswith("step_00000020.pt")  # KID is opt-in for 2-D data


def test_score_exported_generator(files):
    r = run_bench("score", "--generator", files["ring"], "--z-dim", 3, "--dataset", "ring8", "--samples", 2000,
                  "--metrics", "fid,modes", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fid"] < 0.05 and out["modes"] == 8 and out["hq_fraction"] > 0.98
    assert out["provenance"]["z_dist"] == "normal" and out["provenance"]["generator"].endswith("ring.pt2")
    table = run_bench("score", "--generator", files["ring"], "--z-dim", 3, "--dataset", "ring8", "--samples", 2000,
                      "--metrics", "fid,modes")
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and lines[0].startswith("primary: w1 = ") and lines[1].split() == ["metric", "value"]
    assert any(line.split()[:2] == ["modes", "8"] for line in table.stdout.splitlines())


class MixtureGenerator(torch.nn.Module):
    """z ~ N(0, I) [N, 3] -> a Gaussian mixture with equal weights: the component from Phi(z_0)."""

    def __init__(self, centres: torch.Tensor, std: float):
        super().__init__()
        self.register_buffer("centres", centres.float().clone())
        self.std = std

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = (torch.special.ndtr(z[:, 0]) * len(self.centres)).floor().clamp(0, len(self.centres) - 1).long()
        return self.centres[k] + self.std * z[:, 1:3]


class GaussianGenerator(torch.nn.Module):
    """z ~ N(0, I) [N, 3] -> N(mean, cov): one blob with the data's first two moments."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("chol", torch.linalg.cholesky(cov).float())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mean + z[:, 1:3] @ self.chol.T


@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
def test_primary_metric_sees_modes_that_fid_misses(dataset, tmp_path):
    """Issue 12: on 2-D mixtures a blob with the data's mean and covariance, and a generator collapsed
    onto one mode, must both score clearly worse on the primary metric than the true mixture. FID on
    raw points cannot tell the blob from the mixture (it compares only the first two moments)."""
    from bench import datasets

    ds = datasets.get(dataset, split="train")
    real = ds.real(20_000).double()
    gens = {"mixture": MixtureGenerator(ds.centres, ds.std),
            "gaussian": GaussianGenerator(real.mean(0), torch.cov(real.T)),
            "collapsed": MixtureGenerator(ds.centres[:1], ds.std)}
    out = {}
    for name, G in gens.items():
        r = run_cli("score", "--generator", _export(G, 3, tmp_path / f"{name}.pt2"), "--z-dim", 3, "--dataset", dataset,
                    "--samples", 2000, "--metrics", "fid,modes", "--json")
        assert r.returncode == 0, r.stderr
        out[name] = json.loads(r.stdout)
        assert out[name]["primary"]["metric"] == "w1" and out[name]["primary"]["lower_is_better"] is True
    w1 = {name: o["primary"]["value"] for name, o in out.items()}
    # W1 at 1,000 points has a finite-sample floor (ring8 ~0.07, grid25 ~0.2: 25 modes' counts fluctuate)
    assert w1["gaussian"] > 3 * w1["mixture"] and w1["collapsed"] > 3 * w1["mixture"], w1
    assert out["mixture"]["modes"] == out["mixture"]["modes_total"] and out["gaussian"]["modes"] < out["mixture"]["modes"]
    assert out["gaussian"]["fid"] < 0.05  # what FID alone would have ranked as good as the mixture
    assert out["mixture"]["provenance"]["w1_samples"] == 1000 and "ot.emd2" in out["mixture"]["provenance"]["w1_solver"]


def test_w1_is_the_exact_transport_cost_on_small_sets():
    """W1 between two small point sets equals the best assignment found by brute force (uniform
    weights and equal sizes: an optimal coupling is a permutation, Birkhoff-von Neumann)."""
    import itertools

    from bench.metrics.wasserstein import w1

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, 2, generator=g, dtype=torch.float64) + 1
    d = torch.cdist(x.double(), y.double())
    brute = min(sum(d[i, j] for i, j in enumerate(p)) / 6 for p in itertools.permutations(range(6)))
    assert w1(x, y) == pytest.approx(float(brute), rel=1e-12)
    assert w1(x, x) == pytest.approx(0.0, abs=1e-12)
    assert w1(x, x + torch.tensor([3.0, 4.0], dtype=torch.float64)) == pytest.approx(5.0, rel=1e-12)  # a shift moves every point by 5


def test_train_with_metrics_writes_scores_per_checkpoint(tmp_path):
    out = tmp_path / "run"
    r = run_bench("train", "--dataset", "ring8", "--steps", 30, "--log-every", 10, "--ckpt-every", 10,
                  "--metrics", "fid,modes", "--eval-samples", 300, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert all({"fid", "modes", "hq_fraction", "provenance"} <= set(r) for r in rows)
    assert json.loads(r.stdout)["scores"]["step"] == 30
    bad = run_bench("train", "--dataset", "ring8", "--steps", 10, "--metrics", "fid,nope", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_generator_archives_with_pickled_payloads_are_refused(files, tmp_path):
    G = load_generator_file(files["ring"])
    assert G(torch.randn(5, 3)).shape == (5, 2)
    with zipfile.ZipFile(files["ring"]) as src:
        members = {name: src.read(name) for name in src.namelist()}
    for member, old, new in (("model_weights_config.json", b'"use_pickle": false', b'"use_pickle": true'),
                             ("archive_format", None, None)):  # a pickled weight; not the current format
        bad = tmp_path / f"bad-{member}.pt2"
        with zipfile.ZipFile(bad, "w") as z:
            for name, data in members.items():
                if name.endswith(member):
                    if old is None:
                        continue
                    assert old in data
                    data = data.replace(old, new)
                z.writestr(name, data)
        with pytest.raises(UsageError, match="refusing to load generator"):
            check_archive(bad)
