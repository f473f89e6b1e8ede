"""The training loop end to end: every loss through the real CLI, resume, divergence, bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import losses
from bench import checkpoint, health
from bench.callbacks import Callback
from bench.config import TrainConfig
from bench.train import train
from tests.conftest import BENCH, run_bench, run_cli, tree_snapshot


def _record(out: Path) -> dict:
    return json.loads((out / "record.json").read_text())


@pytest.mark.parametrize("loss", losses.names())
def test_every_loss_trains_on_ring8(tmp_path, loss):
    out = tmp_path / loss
    # the CLI in this process (bench.cli.main): a subprocess per loss would add its start-up, not coverage
    r = run_cli("train", "--dataset", "ring8", "--loss", loss, "--arch", "mlp", "--steps", "40",
                "--log-every", "10", "--ckpt-every", "20", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["status"] == "ok" and rec["step"] == 40
    assert (out / "config.json").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["loss"] == loss and cfg["lr"] == losses.get(loss).published["lr"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert all(map(torch.isfinite, torch.tensor([[r["d_loss"], r["g_loss"]] for r in rows]).flatten()))
    assert [p.name for p in checkpoint.list_checkpoints(out)] == ["step_00000020.pt", "step_00000040.pt"]


@pytest.mark.parametrize("loss,arch", [("ns", "infogan"), ("wgan-gp", "dcgan"), ("began", "infogan"), ("hinge", "resnet")])
def test_some_losses_train_on_digits(tmp_path, loss, arch):
    out = tmp_path / "run"
    r = run_cli("train", "--dataset", "digits", "--loss", loss, "--arch", arch, "--steps", "6",
                "--log-every", "3", "--ckpt-every", "6", "--n-disc", "1", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "ok"
    G, cfg = checkpoint.load_generator(out)
    x = G(torch.rand(5, cfg.z_dim) * 2 - 1)
    assert x.shape == (5, 1, 8, 8) and x.min() >= -1 and x.max() <= 1


def _final_state(out: Path) -> dict:
    ck = checkpoint.load(checkpoint.list_checkpoints(out)[-1])
    return {k: ck[k] for k in ("G", "D", "opt_g", "opt_d", "loss_state", "rng_cpu", "step")}


def _assert_same(a, b, path="") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    else:
        assert a == b, path


def _losses_of(out: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], *(r[k] for k in health.FIELDS)) for r in rows]  # losses and training health


@pytest.mark.parametrize("loss", ["began", "wgan-gp"])  # stateful loss (k_t) and a random penalty
def test_resume_in_process_is_bit_identical(tmp_path, loss):
    cfg = TrainConfig(dataset="ring8", loss=loss, arch="mlp", steps=60, log_every=10, ckpt_every=20,
                      noise_std=0.1, noise_anneal_steps=60, r1_gamma=1.0)
    train(cfg, tmp_path / "whole")
    first = TrainConfig(**{**cfg.to_dict(), "steps": 20})
    assert train(first, tmp_path / "pieces").step == 20
    assert train(cfg, tmp_path / "pieces").step == 60
    _assert_same(_final_state(tmp_path / "whole"), _final_state(tmp_path / "pieces"))
    assert _losses_of(tmp_path / "whole") == _losses_of(tmp_path / "pieces")


@pytest.mark.reliability
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    """Bit for bit holds by construction on one machine with the same settings; the thread count is
    one of them (a GEMM split over more threads sums in another order), so all three runs pin it."""
    args = ["train", "--dataset", "ring8", "--loss", "dragan", "--steps", "1500", "--log-every", "50",
            "--ckpt-every", "100", "--seed", "3"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert run_bench(*args, "--out", whole, env=env).returncode == 0
    proc = subprocess.Popen([*BENCH, *args, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step_00000200.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _record(killed)["status"] == "running"  # really interrupted mid-run
    assert run_bench(*args, "--out", killed, env=env).returncode == 0
    _assert_same(_final_state(whole), _final_state(killed))
    assert _losses_of(whole) == _losses_of(killed)
    assert _record(killed)["status"] == "ok"


@pytest.mark.reliability
def test_divergence_is_recorded_not_lost(tmp_path):
    out = tmp_path / "run"
    r = run_bench("train", "--dataset", "ring8", "--loss", "ls", "--lr", "1e12", "--beta1", "0", "--steps", "500",
                  "--log-every", "100", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["status"] == "diverged" and 1 <= rec["diverged_at"] <= 500
    assert _record(out)["status"] == "diverged"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["diverged_at"] == rec["diverged_at"]
    # Running it again does not train again: the divergence is the result.
    again = run_bench("train", "--dataset", "ring8", "--loss", "ls", "--lr", "1e12", "--beta1", "0", "--steps", "500",
                      "--log-every", "100", "--out", out, "--json")
    assert json.loads(again.stdout) == rec


# More cases (--loss nope, --steps 0, --lr abc, ...) in tests/test_bad_inputs.py.
BAD = [
    (["--arch", "nope"], "unknown arch 'nope'"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--lr", "0"], "lr must be a positive number"),
    (["--lr=-1e-3"], "lr must be a positive number"),
    (["--beta1", "1.5"], "beta1 must be in [0, 1)"),
    (["--norm", "group"], "unknown norm 'group'"),
    (["--arch", "infogan"], "infogan"),  # on 2-D points
    (["--loss-param", "clip=0.1"], "clip"),  # ns has no clip
    (["--loss", "wgan", "--loss-param", "clip=-1"], "clip"),
    (["--reg", "dropout=0.5"], "unknown regularizer 'dropout'"),
    (["--reg", "r1=-1"], "r1 gamma must be >= 0"),
    (["--dataset", "mnist", "--arch", "infogan", "--data-root", "/nonexistent"], "/nonexistent"),
    (["--device", "tpu"], "unknown device 'tpu'"),
]


@pytest.mark.parametrize("extra,needle", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, extra, needle):
    out = tmp_path / "run"
    r = run_cli("train", "--steps", "5", "--out", out, *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_out_dir_of_another_run_is_refused_untouched(tmp_path):
    out = tmp_path / "run"
    assert run_bench("train", "--steps", "10", "--log-every", "5", "--out", out).returncode == 0
    before = tree_snapshot(out)
    r = run_bench("train", "--steps", "10", "--loss", "hinge", "--out", out)
    assert r.returncode == 2 and "holds another run" in r.stderr and "loss" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert tree_snapshot(out) == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    r = run_bench("train", "--steps", "10", "--out", stranger)
    assert r.returncode == 2 and "not empty" in r.stderr
    assert tree_snapshot(stranger) == {"notes.txt": b"mine"}


def test_help_lists_every_choice():
    import models
    from bench import datasets

    top = run_bench("--help")
    assert top.returncode == 0 and "train" in top.stdout
    h = run_bench("train", "--help").stdout
    for name in [*losses.names(), *models.names(), *models.NORMS]:
        assert name in h, name
    listed = run_bench("list", "datasets").stdout  # dataset names need torch: `bench list`, not the parser
    for name in datasets.names():
        assert name in listed, name
    for reg in ("r1=", "noise=", "label_smoothing="):
        assert reg in h


def test_checkpoints_refuse_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, bad)
    with pytest.raises(ValueError, match="refusing to load"):
        checkpoint.load(bad)
    assert not (tmp_path / "pwned").exists()


def test_a_finished_run_can_be_extended_with_more_steps(tmp_path):
    out = tmp_path / "run"
    base = ["train", "--steps", "20", "--log-every", "10", "--ckpt-every", "10", "--out", out, "--json"]
    assert json.loads(run_bench(*base).stdout)["step"] == 20
    more = run_bench(*[a if a != "20" else "40" for a in base])
    assert more.returncode == 0, more.stderr
    assert json.loads(more.stdout)["step"] == 40
    assert [r[0] for r in _losses_of(out)] == [10, 20, 30, 40]


class Recorder(Callback):
    """A callback that writes down what it hears (and what the run directory held then)."""

    def __init__(self):
        self.events: list[tuple] = []

    def on_start(self, ev):
        self.events.append(("start", ev.step, ev.run.relative(ev.checkpoint), len(ev.scores), ev.G.training))

    def on_log(self, run, row):
        self.events.append(("log", row["step"]))

    def on_checkpoint(self, ev):
        on_disk = ev.run.scores()
        self.events.append(("checkpoint", ev.step, ev.checkpoint.exists(), ev.scores[-1]["step"],
                            ev.scores == on_disk, len(on_disk)))

    def on_diverged(self, run, row):
        self.events.append(("diverged", row["diverged_at"]))

    def on_end(self, run, result):
        self.events.append(("end", result.status, result.step, run.record().status))


def test_callbacks_hear_every_event_in_order_with_the_scores(tmp_path):
    """Start, log windows, checkpoints (written, with their scores row already appended: the scorer
    runs first and the event carries every row, so no callback re-reads scores.jsonl), end (after
    record.json); a resumed run starts at its checkpoint with the earlier rows; G trains after each."""
    cfg = TrainConfig(dataset="ring8", loss="ns", arch="mlp", steps=40, log_every=10, ckpt_every=20,
                      metrics=["w1"], eval_samples=200)
    first, rec = TrainConfig(**{**cfg.to_dict(), "steps": 20}), Recorder()
    train(first, tmp_path / "run", callbacks=[rec])
    assert rec.events == [("start", 0, None, 0, True), ("log", 10), ("log", 20), ("checkpoint", 20, True, 20, True, 1),
                          ("end", "ok", 20, "ok")]
    rec = Recorder()
    train(cfg, tmp_path / "run", callbacks=[rec])
    assert rec.events == [("start", 20, "checkpoints/step_00000020.pt", 1, True), ("log", 30), ("log", 40),
                          ("checkpoint", 40, True, 40, True, 2), ("end", "ok", 40, "ok")]
    rec = Recorder()  # a finished run called again trains nothing: only its end
    train(cfg, tmp_path / "run", callbacks=[rec])
    assert rec.events == [("end", "ok", 40, "ok")]

    class Dies(Callback):  # an exception in a callback stops the run; calling train again resumes it
        def on_checkpoint(self, ev):
            raise RuntimeError("node lost")

    with pytest.raises(RuntimeError, match="node lost"):
        train(cfg, tmp_path / "killed", callbacks=[Dies()])
    assert _record(tmp_path / "killed")["status"] == "running"
    assert train(cfg, tmp_path / "killed").step == 40
    _assert_same(_final_state(tmp_path / "run"), _final_state(tmp_path / "killed"))

    rec = Recorder()
    bad = TrainConfig(dataset="ring8", loss="ls", arch="mlp", lr=1e12, beta1=0.0, steps=200, log_every=50, ckpt_every=100)
    result = train(bad, tmp_path / "diverged", callbacks=[rec])
    assert result.status == "diverged"
    assert rec.events[-2:] == [("diverged", result.diverged_at), ("end", "diverged", result.step, "diverged")]
    assert ("log", result.step) not in rec.events


def test_summarize_scores_rows():
    """The Tune reporter's summary of a run's scores rows (pure): last values, best FID, the primary
    metric's best checkpoint in its orientation (ties: the earliest), NaN where nothing was scored."""
    import math

    from bench.runner import summarize

    def row(step, fid, w1, higher=False):
        return {"step": step, "checkpoint": f"checkpoints/step_{step:08d}.pt", "fid": fid, "w1": w1,
                "primary": {"metric": "w1", "value": w1, "lower_is_better": not higher},
                "provenance": {"extractor": "identity", "n_generated": 500}}

    s = summarize([row(10, 3.0, 0.5), row(20, 1.0, 0.2), row(30, "nan", 0.2), row(40, 2.0, 0.9)])
    assert (s["fid"], s["fid_best"], s["primary"], s["primary_best"], s["best_step"]) == (2.0, 1.0, 0.9, 0.2, 20)
    assert s["checkpoint_best"] == "checkpoints/step_00000020.pt" and s["primary_metric"] == "w1"
    assert (s["extractor"], s["n_samples"]) == ("identity", 500)
    up = summarize([row(10, 1.0, 0.5, True), row(20, 1.0, 0.7, True), row(30, 1.0, 0.6, True)])
    assert (up["primary_best"], up["best_step"]) == (0.7, 20)
    empty = summarize([])
    assert math.isnan(empty["primary"]) and empty["best_step"] is None
    diverged = summarize([row(10, "nan", "nan")])
    assert math.isnan(diverged["primary_best"]) and diverged["best_step"] is None
