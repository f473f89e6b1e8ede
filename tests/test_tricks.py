"""Tricks beside the losses (issue 15): TTUR's separate D learning rate, R2, two-sided label
smoothing and the r3gan preset, trained through the real CLI, recorded in config.json, refused
with one line where they do not apply, and old runs (stored before a setting existed) still resume."""
from __future__ import annotations

import json

import pytest

from bench import checkpoint
from bench.config import TrainConfig
from tests.conftest import run_cli, tree_snapshot


def _train(out, *args):
    return run_cli("train", "--steps", "20", "--log-every", "10", "--ckpt-every", "10", "--out", str(out), "--json", *args)


def test_ttur_gives_d_its_own_learning_rate(tmp_path):
    r = _train(tmp_path / "r", "--dataset", "ring8", "--loss", "ns", "--lr", "1e-4", "--lr-d", "4e-4")
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["lr"], cfg["lr_d"]) == (1e-4, 4e-4)
    ck = checkpoint.load(checkpoint.list_checkpoints(tmp_path / "r")[-1])
    assert [g["lr"] for g in ck["opt_g"]["param_groups"]] == [1e-4]
    assert [g["lr"] for g in ck["opt_d"]["param_groups"]] == [4e-4]
    # without --lr-d both nets take --lr (one learning rate, as before TTUR existed)
    assert TrainConfig(loss="ns", lr=3e-4).resolved().lr_d == 3e-4
    assert TrainConfig(loss="ns").resolved().lr_d == 5e-5  # the loss's published lr


@pytest.mark.parametrize("dataset, arch", [("ring8", "mlp"), ("digits", "infogan")])
@pytest.mark.parametrize("loss, extra", [
    ("ns", ["--reg", "r2=1.0"]),
    ("wgan-gp", ["--reg", "r1=0.5", "--reg", "r2=0.5"]),
    ("ns", ["--reg", "label_smoothing=0.1", "--reg", "fake_label_smoothing=0.1"]),
    ("dragan", ["--reg", "fake_label_smoothing=0.2"]),
    ("r3gan", ["--loss-param", "gamma=0.5"]),
])
def test_tricks_train_and_are_recorded(tmp_path, dataset, arch, loss, extra):
    r = _train(tmp_path / "r", "--dataset", dataset, "--arch", arch, "--loss", loss, "--n-disc", "1", *extra)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "ok"
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    for k, v in (a.split("=") for a in extra if "=" in a):
        stored = cfg["loss_params"].get(k, cfg.get({"r1": "r1_gamma", "r2": "r2_gamma"}.get(k, k)))
        assert stored == float(v), (k, cfg)


@pytest.mark.parametrize("loss, extra, needle", [
    ("wgan", ["--reg", "fake_label_smoothing=0.1"], "loss 'wgan' has no parameter 'fake_label_smoothing'"),
    ("ns", ["--reg", "fake_label_smoothing=0.5"], "fake_label_smoothing must be in [0, 0.5)"),
    ("ns", ["--lr-d", "0"], "lr_d (D's learning rate) must be a positive number"),
    ("ns", ["--reg", "r2=-1"], "r2 gamma must be >= 0"),
    ("r3gan", ["--loss-param", "gamma_final=2"], "gamma_final must be in [0, 1]"),
])
def test_tricks_refused_with_one_line_where_they_do_not_apply(tmp_path, loss, extra, needle):
    before = tree_snapshot(tmp_path)
    r = _train(tmp_path / "r", "--dataset", "ring8", "--loss", loss, *extra)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_snapshot(tmp_path) == before


def test_a_run_stored_before_the_new_settings_existed_resumes(tmp_path):
    """config.json files written before lr_d, r2_gamma and fake_label_smoothing existed lack them:
    such a run is the same run (one learning rate, no R2, no fake smoothing) and resumes."""
    out = tmp_path / "r"
    assert _train(out, "--dataset", "ring8", "--loss", "ns").returncode == 0
    cfg = json.loads((out / "config.json").read_text())
    for k in ("lr_d", "r2_gamma"):
        cfg.pop(k)
    cfg["loss_params"].pop("fake_label_smoothing")
    (out / "config.json").write_text(json.dumps(cfg))
    r = run_cli("train", "--dataset", "ring8", "--loss", "ns", "--steps", "30", "--log-every", "10",
                "--ckpt-every", "10", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["step"] == 30
    # a real difference is still refused
    r = run_cli("train", "--dataset", "ring8", "--loss", "ns", "--lr-d", "1e-3", "--steps", "40", "--out", str(out))
    assert r.returncode == 2 and "lr_d" in r.stderr
