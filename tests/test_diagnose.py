"""bench diagnose: Arjovsky & Bottou's gradient experiment and the JS/W1 picture (issue 16)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import losses
from bench.diagnose import divergences, gradients
from tests.conftest import run_bench, run_cli, tree_snapshot


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory):
    """A ring8 generator early in training (200 ns steps, seed 0): far from the data, as in
    Arjovsky & Bottou's experiment, so a D trained against it can approach optimality."""
    out = tmp_path_factory.mktemp("diagnose") / "run"
    r = run_cli("train", "--dataset", "ring8", "--loss", "ns", "--steps", "200", "--seed", "0", "--device", "cpu",
                "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def test_measurement_steps():
    assert gradients.measurement_steps(2000) == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]
    assert gradients.measurement_steps(7) == [0, 1, 2, 5, 7]
    assert gradients.measurement_steps(1) == [0, 1]
    assert gradients.measurement_steps(10) == [0, 1, 2, 5, 10]


def test_mm_gradient_vanishes_as_d_improves_and_ns_does_not(ring8_run):
    """The acceptance test: through the CLI, mm's generator gradient falls >= 10x over the D steps
    (Arjovsky & Bottou, Theorem 2.4), ns's does not fall and its spread grows (Theorem 2.6)."""
    r = run_bench("diagnose", ring8_run, "--losses", "mm,ns", "--d-steps", "2000", "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    mm, ns = out["losses"]["mm"], out["losses"]["ns"]
    for rec in (mm, ns):
        assert rec["d_steps"][0] == 0 and rec["d_steps"][-1] == 2000
        assert len(rec["d_steps"]) == len(rec["g_grad_norm_mean"]) == len(rec["g_grad_norm_std"]) == len(rec["d_loss"])
        assert all(math.isfinite(v) and v > 0 for v in rec["g_grad_norm_mean"])
    m = mm["g_grad_norm_mean"]
    assert m[-1] <= m[0] / 10 and m[-1] <= max(m) / 100, m
    n = ns["g_grad_norm_mean"]
    assert n[-1] >= n[0] and ns["g_grad_norm_std"][-1] > ns["g_grad_norm_std"][0], n
    # the same D steps for both (the same BCE D objective from the same seed): D's losses agree
    assert mm["d_loss"][1:] == pytest.approx(ns["d_loss"][1:], rel=1e-6)
    p = out["provenance"]
    assert p["trained_with"] == {"dataset": "ring8", "loss": "ns", "arch": "mlp", "seed": 0} and p["checkpoint_step"] == 200
    assert p["settings"]["lr"] == 1e-3 and p["settings"]["d_norm"] == "none" and len(p["checkpoint_sha256"]) == 64
    written = ring8_run / "diagnose"
    assert json.loads((written / "diagnose.json").read_text())["losses"]["mm"] == mm
    assert (written / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_registered_loss_is_measured_or_skipped_with_its_reason(ring8_run):
    out = gradients.curves(ring8_run, losses.names(), gradients.Settings(d_steps=5, batches=2))
    assert set(out["losses"]) | set(out["skipped"]) == set(losses.names())
    assert not out["skipped"], out["skipped"]  # the MLP has a logit and an autoencoder head: every loss fits
    for name, rec in out["losses"].items():
        assert rec["d_steps"] == [0, 1, 2, 5] and all(math.isfinite(v) for v in rec["g_grad_norm_mean"]), name


def _js_on_a_grid(theta: float, s: float) -> float:
    """Brute force: the two densities on a fine grid, JS of the discretised distributions (scipy)."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    x = np.linspace(-12 * s, theta + 12 * s, 400_001)
    p, q = stats.norm(0, s).pdf(x), stats.norm(theta, s).pdf(x)
    return float(jensenshannon(p, q) ** 2)  # scipy returns the square root of JS, in nats


@pytest.mark.parametrize("theta", [0.01, 0.05, 0.2, 0.5, 1.0])
def test_js_equals_brute_force(theta):
    assert divergences.js_gaussians(theta, 0.1) == pytest.approx(_js_on_a_grid(theta, 0.1), abs=1e-7)


def test_js_saturates_at_log2_while_w1_grows_linearly():
    d = divergences.curves(np.linspace(0, 1.0, 11), 0.1)
    assert d["js"][0] == 0.0 and 0 < math.log(2) - d["js"][-1] < 1e-5
    assert all(a < b for a, b in zip(d["js"], d["js"][1:]))  # increasing...
    assert abs(d["d_js"][-1]) < 1e-4 and d["d_w1"][-1] == 1.0  # ...but flat where the supports part; W1 is not
    assert d["w1"] == pytest.approx(d["theta"]) and d["kl"][5] == pytest.approx(0.5 ** 2 / (2 * 0.01))


def test_w1_of_the_pulled_apart_gaussians_against_exact_transport():
    """W1 = |theta| checked with POT's exact solver on samples (the sampling error is O(s / sqrt(n)))."""
    import ot

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, (1000, 2)), rng.normal(0, 0.1, (1000, 2))
    for theta in (0.3, 1.0):
        w = ot.emd2(ot.unif(1000), ot.unif(1000), ot.dist(a, b + [theta, 0], metric="euclidean"))
        assert w == pytest.approx(divergences.curves([theta])["w1"][0], abs=0.03)


def test_divergences_alone_through_the_cli(tmp_path):
    r = run_cli("diagnose", "--divergences", "--out", tmp_path / "d", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"divergences", "out"} and len(out["divergences"]["theta"]) == 51
    assert (tmp_path / "d" / "divergences.png").is_file() and (tmp_path / "d" / "diagnose.json").is_file()


BAD = [
    ([], "give CHECKPOINT_OR_RUN, or --divergences"),
    (["{run}", "--losses", "mm,nope"], "unknown loss 'nope'"),
    (["{run}", "--d-steps", "0"], "--d-steps must be a positive integer"),
    (["{run}", "--norm", "group"], "unknown --norm 'group'"),
    (["{run}", "--batches", "1"], "--batches must be >= 2"),
    (["{run}", "--lr", "nan"], "--lr must be a positive number"),
    (["{tmp}/absent.pt"], "checkpoint not found"),
    (["{tmp}"], "holds no checkpoints"),
    (["--divergences", "--sigma", "0"], "--sigma must be a positive number"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) or "nothing" for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, ring8_run, args, needle):
    before = tree_snapshot(ring8_run)
    r = run_cli("diagnose", *[a.format(run=ring8_run, tmp=tmp_path) for a in args], "--out", tmp_path / "out")
    assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists() and tree_snapshot(ring8_run) == before


def test_the_api_is_the_command(ring8_run, tmp_path):
    from bench import api

    out = api.diagnose(ring8_run, losses=["wgan"], d_steps=2, batches=2, out=tmp_path / "a")
    assert list(out["losses"]) == ["wgan"] and out["losses"]["wgan"]["d_steps"] == [0, 1, 2]
    assert out["provenance"]["settings"]["batches"] == 2 and (tmp_path / "a" / "gradients.png").is_file()
