"""The hot-path options of ``bench train`` and ``bench run`` (issue 7): --precision, --compile and
--cuda-graphs, on the CPU (tests/test_cuda_graphs.py runs the graphs themselves where there is a GPU).

Speed itself is measured by benchmarks/ (never timed here). These tests check the flags' validation,
what belongs to a run's identity, that the defaults (fp32, no compile) are the plain loop, and that
--compile trains, checkpoints and resumes.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from bench import checkpoint
from bench.config import TrainConfig
from bench.errors import UsageError
from bench.run_dir import RunDir
from bench.train import COMPILE_BACKEND_ENV, train
from tests.conftest import run_bench, run_cli, tree_snapshot


def _state(out):
    ck = checkpoint.load(checkpoint.list_checkpoints(out)[-1])
    return {k: ck[k] for k in ("G", "D", "opt_g", "opt_d", "rng_cpu", "step")}


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


BAD = [
    (["--precision", "fp16"], "unknown precision 'fp16'; known: fp32, bf16"),
    (["--precision", "bf16", "--device", "cpu"], "precision bf16 needs a CUDA GPU"),
    (["--compile=yes"], "--compile: ignored explicit argument"),
    (["--cuda-graphs", "--device", "cpu"], "--cuda-graphs needs a CUDA GPU (device is cpu)"),
]


@pytest.mark.parametrize("extra,needle", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_flags_one_line_exit_2_nothing_written(tmp_path, extra, needle):
    out = tmp_path / "run"
    r = run_cli("train", "--steps", "5", "--out", out, *extra)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert tree_snapshot(tmp_path) == {}


def test_config_validation_and_identity(tmp_path):
    with pytest.raises(UsageError, match="unknown precision 'half'"):
        TrainConfig(precision="half").resolved()
    with pytest.raises(UsageError, match="compile must be true or false"):
        TrainConfig(compile="yes").resolved()
    with pytest.raises(UsageError, match="cuda_graphs must be true or false"):
        TrainConfig(cuda_graphs=1).resolved()
    # a CUDA graph replays the eager step's kernels: not part of the run either
    assert TrainConfig(cuda_graphs=True).identity() == TrainConfig().identity()
    # precision changes the numerics: part of the run; compile does not change the model: not part of it
    assert TrainConfig(compile=True).identity() == TrainConfig().identity()
    assert TrainConfig(precision="bf16").identity() != TrainConfig().identity()
    # A config.json written before these fields existed reads as fp32, no compile: its runs still resume.
    old = {k: v for k, v in TrainConfig().resolved().to_dict().items() if k not in ("precision", "compile", "cuda_graphs")}
    assert TrainConfig.from_dict(old).identity() == TrainConfig().resolved().identity()
    cfg = TrainConfig(steps=4, log_every=2, ckpt_every=2, device="cpu")
    train(cfg, tmp_path / "run")
    with pytest.raises(UsageError, match="precision: 'fp32' -> 'bf16'"):
        RunDir(tmp_path / "run").stored_config(TrainConfig(**{**cfg.to_dict(), "precision": "bf16"}).resolved())
    assert RunDir(tmp_path / "run").stored_config(TrainConfig(**{**cfg.to_dict(), "compile": True}).resolved()) is not None


def test_defaults_are_fp32_without_compile_and_explicit_fp32_is_the_same_run(tmp_path):
    implicit = TrainConfig(dataset="ring8", loss="wgan-gp", steps=12, log_every=4, ckpt_every=6, device="cpu")
    assert implicit.precision == "fp32" and implicit.compile is False
    explicit = TrainConfig(**{**implicit.to_dict(), "precision": "fp32", "compile": False})
    train(implicit, tmp_path / "a")
    train(explicit, tmp_path / "b")
    assert _same(_state(tmp_path / "a"), _state(tmp_path / "b"))
    stored = json.loads((tmp_path / "a" / "config.json").read_text())
    assert stored["precision"] == "fp32" and stored["compile"] is False


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile through dynamo + AOTAutograd without code generation: no C++ toolchain, seconds not minutes."""
    monkeypatch.setenv(COMPILE_BACKEND_ENV, "aot_eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])  # wgan-gp: its penalty needs double backward (eager D)
def test_compile_trains_checkpoints_and_resumes_without_it(tmp_path, aot_eager, loss):
    cfg = TrainConfig(dataset="ring8", loss=loss, steps=6, log_every=3, ckpt_every=3, n_disc=1, device="cpu", compile=True)
    res = train(TrainConfig(**{**cfg.to_dict(), "steps": 3}), tmp_path / "run")
    assert res.status == "ok" and res.step == 3
    G, _ = checkpoint.load_generator(tmp_path / "run")  # plain module keys (no torch.compile wrapper prefix)
    assert G(torch.zeros(2, 64)).shape == (2, 2)
    # The same run resumes without --compile (compile is not part of the run's identity).
    res = train(TrainConfig(**{**cfg.to_dict(), "compile": False}), tmp_path / "run")
    assert res.status == "ok" and res.step == 6
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6]


@pytest.mark.skipif(not os.environ.get("GAN_BENCH_TEST_INDUCTOR"),
                    reason="inductor's first compile takes over a minute on 2 cores; set GAN_BENCH_TEST_INDUCTOR=1")
@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                    reason="torch.compile (inductor) on the CPU needs a C++ compiler; none on PATH")
def test_compile_with_inductor_on_cpu(tmp_path):
    torch._dynamo.reset()
    r = run_bench("train", "--steps", "4", "--log-every", "2", "--ckpt-every", "2", "--device", "cpu", "--compile",
                  "--out", tmp_path / "run", "--json", env={COMPILE_BACKEND_ENV: ""})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "ok"


def test_auto_gpus_per_trial_follows_the_measured_packing_table():
    import sweeps
    from bench.commands.run import PACKING, auto_gpus_per_trial
    from bench.run_study import DataInfo
    from bench.study import Study
    from models import DataSpec

    info = {"celeba": DataInfo(10, DataSpec("images", (3, 64, 64))),
            "cifar10": DataInfo(10, DataSpec("images", (3, 32, 32))),
            "mnist": DataInfo(10, DataSpec("images", (1, 28, 28))),
            "ring8": DataInfo(None, DataSpec("points", (2,)))}

    def share(datasets, archs=None):
        return auto_gpus_per_trial(Study(name="s", datasets=datasets, losses=["ns"], archs=archs, budget=1,
                                         space=sweeps.load("lucic-wide").to_dict()), info)

    assert share(["celeba"]) == 1 / PACKING["infogan", 64]
    assert share(["cifar10"]) == share(["mnist"]) == 1 / PACKING["infogan", 32]
    assert share(["cifar10", "celeba"]) == 1 / PACKING["infogan", 64]  # the largest share any cell needs
    assert share(["celeba"], ["dcgan"]) == 1.0  # not measured: one trial per GPU
    assert share(["ring8"]) == 0.0  # 2-D data trains on CPUs

    graphed = Study(name="s", datasets=["cifar10", "ring8"], losses=["ns"], budget=1,
                    space=sweeps.load("lucic-wide").to_dict(), base={"cuda_graphs": True})
    assert auto_gpus_per_trial(graphed, info) == 1.0  # one graphed trial keeps a GPU busy: no packing


def test_gpus_per_trial_flag_validation(tmp_path):
    for value, needle in (("abc", "expected a number or auto, got 'abc'"), ("-1", "--gpus-per-trial must be >= 0")):
        r = run_cli("run", "--budget", "1", "--dataset", "ring8", f"--gpus-per-trial={value}", "--storage", tmp_path / "s")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert tree_snapshot(tmp_path) == {}


def test_run_hot_path_flags_reach_every_trial_and_gpu_only_ones_are_refused_without_gpu_trials(tmp_path):
    from bench.cli import build_parser
    from bench.commands.run import _study

    def base(*flags):
        args = build_parser().parse_args(["run", "--budget", "1", "--dataset", "ring8", "--storage", str(tmp_path / "s"), *flags])
        return _study(args).base

    assert base() == {}  # defaults leave study.json as before these flags existed
    assert base("--precision", "bf16", "--cuda-graphs", "--compile", "--gpus-per-trial", "1") == {
        "device": "cuda", "precision": "bf16", "compile": True, "cuda_graphs": True}
    for flags, needle in ((["--precision", "bf16"], "--precision bf16 needs trials on a GPU"),
                          (["--cuda-graphs"], "--cuda-graphs needs trials on a GPU"),
                          (["--cuda-graphs", "--gpus-per-trial", "0"], "--cuda-graphs needs trials on a GPU"),
                          (["--precision", "fp16"], "argument --precision: invalid choice: 'fp16'")):
        r = run_cli("run", "--budget", "1", "--dataset", "ring8", "--storage", tmp_path / "s", *flags)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert tree_snapshot(tmp_path) == {}
