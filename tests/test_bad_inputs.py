"""Bad input to every command, through the real CLI: one line on stderr, exit status 2, nothing written.

One catalogue of cases (``CASES``), each a subprocess ``bench ...`` in a directory of its own: the
inputs are copied from a template made once per module (a real ``bench train`` run, a hand-made
study, malformed space files and tables, a malicious pickle, ...). The subprocesses run a few at a
time in a module fixture; the parametrized test then checks each result:

- exit status 2, stderr exactly one non-empty line that names the problem (``needle``), no
  traceback anywhere, nothing on stdout;
- nothing written or changed: every file and directory under the case's directory (its inputs, its
  working directory, the output paths it named, its dataset/metrics cache and TORCH_HOME) is the same
  before and after.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import BENCH

pytestmark = pytest.mark.reliability

NON_UTF8 = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: not UTF-8; a str argument with surrogate escapes
PWNED = "pwned"  # the file a malicious pickle would create (in the working directory of its case)


@dataclass(frozen=True)
class Case:
    args: Callable[[Path], list]  # the case's directory -> arguments of `bench`
    needle: str                    # what the one stderr line must say
    timeout: float = 120           # a bad input is refused in seconds; one that is not is killed after this


RUN = ["run", "--budget", "1", "--dataset", "ring8"]

# Every case names its inputs relative to its own directory ``d`` (a copy of the template).
CASES: dict[str, Case] = {
    # ---- bench train ---------------------------------------------------------------------------
    "train-steps-zero": Case(lambda d: ["train", "--steps", "0", "--out", d / "out"], "steps must be a positive integer"),
    "train-seed-negative": Case(lambda d: ["train", "--seed", "-1", "--out", d / "out"], "seed must be an integer >= 0"),
    "train-lr-not-a-number": Case(lambda d: ["train", "--lr", "abc", "--out", d / "out"], "invalid float value: 'abc'"),
    "train-eval-samples-zero": Case(lambda d: ["train", "--metrics", "fid", "--eval-samples", "0", "--out", d / "out"],
                                    "eval_samples must be a positive integer"),
    "train-unknown-loss": Case(lambda d: ["train", "--loss", "nope", "--out", d / "out"], "unknown loss 'nope'"),
    "train-unknown-feature-extractor": Case(
        lambda d: ["train", "--metrics", "fid", "--feature-extractor", "vgg16", "--out", d / "out"],
        "unknown feature extractor 'vgg16'"),
    "train-cifar10-files-absent": Case(
        lambda d: ["train", "--dataset", "cifar10", "--arch", "infogan", "--data-root", d / "empty", "--out", d / "out"],
        "cifar10: expected data_batch_1..5"),
    "train-cifar10-batch-with-code": Case(
        lambda d: ["train", "--dataset", "cifar10", "--arch", "infogan", "--data-root", d / "evil-cifar",
                   "--out", d / "out"], "refusing to load global"),
    "train-out-holds-another-run": Case(lambda d: ["train", "--loss", "hinge", "--steps", "20", "--out", d / "run"],
                                        "holds another run"),
    "train-out-below-a-file": Case(lambda d: ["train", "--out", d / "notes.pt" / "run"],
                                   "notes.pt is a file, not a directory"),
    "train-out-config-not-utf8": Case(lambda d: ["train", "--steps", "20", "--out", d / "run-latin1"],
                                      "unreadable config.json"),
    "train-data-root-path-not-utf8": Case(
        lambda d: ["train", "--dataset", "mnist", "--arch", "infogan", "--data-root", d / NON_UTF8, "--out", d / "out"],
        "mnist: expected train-images-idx3-ubyte"),
    # ---- bench run -----------------------------------------------------------------------------
    "run-budget-negative": Case(lambda d: ["run", "--budget", "-3", "--dataset", "ring8", "--storage", d / "studies"],
                                "--budget must be a positive integer"),
    "run-seed-negative": Case(
        lambda d: [*RUN, "--seed", "-2", "--losses", "ns", "--seeds", "0", "--steps", "2", "--samples", "20",
                   "--storage", d / "studies"], "--seed", timeout=30),
    "run-epochs-nan": Case(lambda d: [*RUN, "--epochs", "nan", "--storage", d / "studies"], "--epochs must be > 0"),
    "run-epochs-on-2d-data": Case(
        lambda d: [*RUN, "--epochs", "1", "--storage", d / "studies"], "--epochs needs a dataset of finite size"),
    "run-losses-empty": Case(
        lambda d: [*RUN, "--losses", ",", "--storage", d / "studies"], "--losses", timeout=30),
    "run-storage-is-a-file": Case(
        lambda d: [*RUN, "--storage", d / "notes.pt"], "notes.pt"),
    "run-storage-uri": Case(lambda d: [*RUN, "--storage", "gs://bucket/studies"], "gs:// is not supported"),
    "run-unknown-arch": Case(lambda d: [*RUN, "--archs", "dcgann", "--storage", d / "studies"], "unknown arch 'dcgann'"),
    "run-unknown-early-stop": Case(lambda d: [*RUN, "--early-stop", "median", "--storage", d / "studies"],
                                   "invalid choice: 'median'"),
    "run-space-toml-syntax-error": Case(
        lambda d: [*RUN, "--space", d / "spaces" / "syntax.toml", "--storage", d / "studies"], "malformed space file"),
    "run-space-unknown-key": Case(
        lambda d: [*RUN, "--space", d / "spaces" / "unknown-key.toml", "--storage", d / "studies"],
        "unknown key 'parameters'; accepted top-level keys"),
    "run-space-bad-range": Case(
        lambda d: [*RUN, "--space", d / "spaces" / "bad-range.toml", "--storage", d / "studies"],
        "params.lr: low (0.01) must be below high (0.0001)"),
    "run-space-not-utf8": Case(
        lambda d: [*RUN, "--space", d / "spaces" / "latin1.toml", "--storage", d / "studies"], "not a UTF-8 text file"),
    "run-name-holds-another-study": Case(
        lambda d: [*RUN, "--seeds", "0", "--steps", "5", "--storage", d / "studies-full", "--name", "other"],
        "holds another study"),
    "run-cifar10-files-absent": Case(
        lambda d: ["run", "--budget", "1", "--dataset", "cifar10", "--data-root", d / "empty", "--storage", d / "studies"],
        "cifar10: expected data_batch_1..5"),
    # ---- bench resume / status -----------------------------------------------------------------
    "resume-not-a-study": Case(lambda d: ["resume", d / "empty"], "not a study directory (study.json missing)"),
    "resume-study-json-not-utf8": Case(lambda d: ["resume", d / "study-latin1"], "study.json is unreadable"),
    "resume-max-concurrent-zero": Case(lambda d: ["resume", d / "study", "--max-concurrent", "0"],
                                       "--max-concurrent must be a positive integer"),
    "status-missing-path": Case(lambda d: ["status", d / "nope"], "not a study directory"),
    "status-results-not-parquet": Case(
        lambda d: ["status", d / "study-bad-results"], "results.parquet"),
    # ---- bench score ---------------------------------------------------------------------------
    "score-checkpoint-of-another-arch": Case(lambda d: ["score", d / "other-arch.pt", "--samples", "100"],
                                             "does not fit arch 'infogan'"),
    "score-generator-wrong-output-shape": Case(
        lambda d: ["score", "--generator", d / "wide.pt2", "--z-dim", "3", "--dataset", "ring8", "--samples", "100"],
        "generator output (2, 3) does not fit ring8: expected [2, 2]"),
    "score-not-a-checkpoint": Case(lambda d: ["score", d / "notes.pt"], "cannot read checkpoint"),
    "score-checkpoint-with-code": Case(lambda d: ["score", d / "evil.pt"], "refusing to load"),
    "score-bare-pickle-with-code": Case(lambda d: ["score", d / "evil.pkl"], "not a torch.save archive"),
    "score-unknown-device": Case(lambda d: ["score", d / "run", "--device", "tpu"], "unknown device 'tpu'"),
    "score-checkpoint-path-not-utf8": Case(lambda d: ["score", d / f"{NON_UTF8}.pt"], "checkpoint not found"),
    # ---- bench report --------------------------------------------------------------------------
    "report-text-named-parquet": Case(lambda d: ["report", d / "tables" / "notes.parquet"],
                                      "notes.parquet as Parquet"),
    "report-csv-missing-columns": Case(lambda d: ["report", d / "tables" / "few.csv"],
                                       "lack required column(s): phase, config_id, seed, status"),
    "report-csv-not-utf8": Case(lambda d: ["report", d / "tables" / "latin1.csv"], "cannot read"),
    "report-out-below-a-file": Case(lambda d: ["report", d / "tables" / "good.csv", "--out", d / "notes.pt" / "report"],
                                    "notes.pt is a file, not a directory"),
    "report-out-holds-a-study": Case(lambda d: ["report", d / "tables" / "good.csv", "--out", d / "study"],
                                     "holds other files"),
    # ---- bench rescore -------------------------------------------------------------------------
    "rescore-not-a-study": Case(lambda d: ["rescore", d / "tables"], "not a study directory"),
    "rescore-unknown-extractor": Case(lambda d: ["rescore", d / "study", "--feature-extractor", "vgg16"],
                                      "unknown feature extractor 'vgg16'"),
    "rescore-results-not-parquet": Case(lambda d: ["rescore", d / "study-bad-results"], "cannot read"),
    "rescore-results-without-trial-ids": Case(lambda d: ["rescore", d / "study-no-ids"], "lack column(s) trial_id"),
}


# ---- the template every case copies ---------------------------------------------------------------


class _Evil:
    """Unpickling this runs ``touch <marker>``: a loader that honours it has been fooled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    return buf.getvalue()


def _study(d: Path, name: str, **kw) -> None:
    from bench.study import Study

    d.mkdir(parents=True)
    s = Study(name=name, datasets=kw.pop("datasets", ["ring8"]), losses=["ns"], budget=1, seeds=0, steps=5, **kw)
    (d / "study.json").write_text(json.dumps(s.to_dict(), indent=2))


def make_template(t: Path) -> None:
    """Every input a case may name, under ``t`` (copied into each case's directory)."""
    import numpy as np
    import pandas as pd
    import torch

    from bench import checkpoint
    from bench.config import TrainConfig
    from bench.train import train

    run = t / "run"
    train(TrainConfig(dataset="ring8", steps=20, log_every=10, ckpt_every=20, device="cpu"), run)
    ck = checkpoint.list_checkpoints(run)[-1]
    # The same checkpoint (mlp weights for 2-D points) claiming to be an infogan.
    other = checkpoint.load(ck)
    other["config"] = json.dumps({**json.loads(other["config"]), "arch": "infogan"})
    torch.save(other, t / "other-arch.pt")
    # A run directory whose config.json is Latin-1, not UTF-8.
    (t / "run-latin1").mkdir()
    (t / "run-latin1" / "config.json").write_bytes('{"dataset": "ring8", "loss": "caf\u00e9"}'.encode("latin-1"))
    # Not checkpoints: text with a .pt name, and a pickle whose loading would run code.
    (t / "notes.pt").write_text("not a checkpoint\n")
    torch.save({"format": checkpoint.FORMAT, "G": _Evil(PWNED)}, t / "evil.pt")
    with open(t / "evil.pkl", "wb") as f:  # the same as a bare pickle (what torch.load opens in legacy mode)
        pickle.dump({"format": checkpoint.FORMAT, "G": _Evil(PWNED)}, f)
    # A generator program with 3 outputs per sample where ring8 has 2.
    wide = torch.nn.Linear(3, 3)
    ep = torch.export.export(wide, (torch.randn(4, 3),), dynamic_shapes={"input": {0: torch.export.Dim("batch")}})
    torch.export.save(ep, t / "wide.pt2")
    # Search spaces.
    sp = t / "spaces"
    sp.mkdir()
    (sp / "syntax.toml").write_text("[params]\nlr = { dist = 'loguniform', low = 1e-5, high = \n")
    (sp / "unknown-key.toml").write_text("[parameters]\nlr = { dist = 'fixed', value = 1e-4 }\n")
    (sp / "bad-range.toml").write_text("[params]\nlr = { dist = 'loguniform', low = 1e-2, high = 1e-4 }\n")
    (sp / "latin1.toml").write_bytes("# caf\u00e9\n[params]\nlr = { dist = 'fixed', value = 1e-4 }\n".encode("latin-1"))
    # Results tables.
    tb = t / "tables"
    tb.mkdir()
    (tb / "notes.parquet").write_text("dataset,loss\nring8,ns\n")
    pd.DataFrame({"dataset": ["ring8"], "loss": ["ns"], "fid": [1.0]}).to_csv(tb / "few.csv", index=False)
    good = pd.DataFrame({"dataset": "ring8", "loss": np.repeat(["ns", "hinge"], 4), "phase": "search",
                         "config_id": np.tile(np.arange(4), 2), "seed": np.arange(8), "status": "ok",
                         "fid": np.linspace(1, 2, 8)})
    good.to_csv(tb / "good.csv", index=False)
    (tb / "latin1.csv").write_bytes(good.assign(loss="caf\u00e9").to_csv(index=False).encode("latin-1"))
    # Studies (made by hand: study.json as `bench run` writes it).
    _study(t / "study", "study")
    good.assign(study="study", arch="mlp", trial_id=[f"t{i}" for i in range(8)], replicate=0,
                checkpoint=None).to_parquet(t / "study" / "results.parquet", index=False)
    _study(t / "study-no-ids", "study-no-ids")
    good.to_parquet(t / "study-no-ids" / "results.parquet", index=False)  # a report's table, not a study's
    _study(t / "study-bad-results", "study-bad-results")
    (t / "study-bad-results" / "results.parquet").write_bytes(_png())
    (t / "study-latin1").mkdir()
    (t / "study-latin1" / "study.json").write_bytes('{"name": "caf\u00e9"}'.encode("latin-1"))
    _study(t / "studies-full" / "other", "other", datasets=["grid25"])
    # CIFAR-10 roots: none of the files, and a test batch that carries code.
    (t / "empty").mkdir()
    cifar = t / "evil-cifar" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(cifar / name, "wb") as f:
            pickle.dump({b"data": _Evil(PWNED), b"labels": []}, f, protocol=2)


def snapshot(d: Path) -> dict[str, bytes | None]:
    """Every path under ``d``: file contents, None for directories (so a new empty directory shows)."""
    if not d.exists():
        return {}
    return {str(p.relative_to(d)): None if p.is_dir() else p.read_bytes() for p in sorted(d.rglob("*"))}


def _bench(args: list, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """``bench ARGS`` in its own session: a case that is wrongly accepted (a study starting Ray, say) is
    killed with everything it started when it runs past ``timeout``, and fails its test (exit -9)."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    p = subprocess.Popen([*BENCH, *map(str, args)], cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err += f"\n[killed after {timeout} s]"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@dataclass
class Outcome:
    proc: subprocess.CompletedProcess
    before: dict
    after: dict
    case_dir: Path


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("bad-inputs")
    template = root / "template"
    make_template(template)

    def one(name: str) -> Outcome:
        d = root / name
        shutil.copytree(template, d, symlinks=True)
        (d / "cwd").mkdir()
        env = {"GAN_BENCH_CACHE": str(d / "cache"), "TORCH_HOME": str(d / "torch-home"), "GAN_BENCH_DATA": str(d / "data"),
               "GAN_BENCH_INCEPTION_WEIGHTS": "", "RAY_ADDRESS": ""}
        before = snapshot(d)
        proc = _bench(CASES[name].args(d), d / "cwd", env, CASES[name].timeout)
        return Outcome(proc, before, snapshot(d), d)

    with ThreadPoolExecutor(3) as pool:
        return dict(zip(CASES, pool.map(one, CASES)))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(outcomes, name):
    o = outcomes[name]
    r = o.proc
    lines = r.stderr.splitlines()
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert len(lines) == 1 and lines[0].strip(), r.stderr
    assert r.stdout == "", r.stdout[-2000:]
    assert CASES[name].needle in lines[0], lines[0]
    assert lines[0].startswith("bench "), lines[0]
    changed = sorted(k for k in set(o.before) | set(o.after) if o.before.get(k, 0) != o.after.get(k, 0))
    assert not changed, f"written or changed: {changed}"
    assert not (o.case_dir / "cwd" / PWNED).exists()
