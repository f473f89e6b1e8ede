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
    for k in ("fid", "kid", "precision", "recall", "f_score", "density", "coverage", "modes", "hq_fraction"):
        assert isinstance(out[k], (int, float)), k
    assert "is" not in out  # no logits for 2-D data
    p = out["provenance"]
    assert p["n_generated"] == p["n_real"] == 200 and p["real_split"] == "test" and p["extractor"] == "identity"
    assert p["kid_subset_size"] == 200 and p["checkpoint"].endswith("step_00000020.pt")


def test_score_exported_generator(files):
    r = run_bench("score", "--generator", files["ring"], "--z-dim", 3, "--dataset", "ring8", "--samples", 2000,
                  "--metrics", "fid,modes", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fid"] < 0.05 and out["modes"] == 8 and out["hq_fraction"] > 0.98
    assert out["provenance"]["z_dist"] == "normal" and out["provenance"]["generator"].endswith("ring.pt2")
    table = run_bench("score", "--generator", files["ring"], "--z-dim", 3, "--dataset", "ring8", "--samples", 2000,
                      "--metrics", "fid,modes")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["metric", "value"]
    assert any(line.split()[:2] == ["modes", "8"] for line in table.stdout.splitlines())


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
