"""Tricks beside the losses (issue 15): TTUR's separate D learning rate, R2, two-sided label
smoothing and the r3gan preset, trained through the real CLI, recorded in config.json, refused
with one line where they do not apply, and old runs (stored before a setting existed) still resume."""
from __future__ import annotations

import json
import math

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


# ---- minibatch layers (models.minibatch) and feature matching (losses.feature_matching) ----------

def test_minibatch_stddev_is_each_strided_groups_feature_std_averaged():
    import torch

    from models.minibatch import MinibatchStddev

    h = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = MinibatchStddev(5)(h)
    assert out.shape == (8, 6) and torch.equal(out[:, :5], h)
    for m in range(2):  # groups of 4, strided: samples m, m + 2, m + 4, m + 6
        idx = [g * 2 + m for g in range(4)]
        want = h[idx].std(0, correction=0).mean()
        assert torch.allclose(out[idx, 5], want.expand(4), rtol=1e-6)
    assert MinibatchStddev(5)(h[:6]).shape == (6, 6)  # 6 does not split into groups of 4: one group


def test_minibatch_discrimination_equals_the_papers_sums():
    import torch

    from models.minibatch import MinibatchDiscrimination

    torch.manual_seed(0)
    layer = MinibatchDiscrimination(4, kernels=3, dim=2).double()
    h = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        out = layer(h)
        M = (h @ layer.T).reshape(5, 3, 2)
    for i in range(5):
        for b in range(3):
            o = sum(math.exp(-float((M[i, b] - M[j, b]).abs().sum())) for j in range(5) if j != i)
            assert float(out[i, 4 + b]) == pytest.approx(o, rel=1e-12)


@pytest.mark.parametrize("kind", ["stddev", "discrimination"])
@pytest.mark.parametrize("arch, spec", [("mlp", ("points", (2,))), ("infogan", ("images", (1, 8, 8))),
                                        ("dcgan", ("images", (1, 8, 8))), ("resnet", ("images", (1, 8, 8)))])
def test_a_minibatch_layer_starts_as_the_plain_d(kind, arch, spec):
    """The widened head copies the plain head's weights and gives the new features weight 0."""
    import torch

    import models
    from models.minibatch import add_minibatch_layer_

    torch.manual_seed(0)
    _, D = models.build(arch, models.DataSpec(*spec), 16, "none")
    x = torch.randn(8, *spec[1])
    plain = D(x)
    add_minibatch_layer_(D.net, kind)
    assert torch.allclose(D(x), plain, atol=1e-6)
    assert sum(p.numel() for p in D.net[-1].parameters()) > D.net[-1][1].in_features  # the layer is in D


def test_feature_matching_objective_against_a_hand_computation():
    """fm_alone: G's objective is w ||mean f(x) - mean f(G(z))||^2 with f the input of D's last linear
    layer, the real and fake batches those the step draws (same RNG), computed here by hand."""
    import torch

    from bench.train import Trainee

    cfg = TrainConfig(dataset="ring8", loss="ns", arch="mlp", feature_matching=2.0, fm_alone=True, d_norm="none").resolved()
    t = Trainee.build(cfg, torch.device("cpu"))
    t.D.requires_grad_(False)
    torch.manual_seed(7)
    got = t.g_objective(0)
    torch.manual_seed(7)
    from bench.train import sample_z

    fake = t.G(sample_z(cfg.batch_size, cfg, torch.device("cpu")))
    real = t.data.sample(cfg.batch_size)
    f = t.D.net[:-1]  # everything before the final Linear(F, 1)
    want = 2.0 * (f(real).mean(0) - f(fake).mean(0)).pow(2).sum()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    # added to the loss's own objective, the difference is exactly the weighted feature-matching term
    t2 = Trainee.build(TrainConfig(**{**cfg.to_dict(), "fm_alone": False}).resolved(), torch.device("cpu"))
    t2.D.requires_grad_(False)
    torch.manual_seed(7)
    plain = t2.loss.g_loss(t2.D(t2.G(sample_z(cfg.batch_size, cfg, torch.device("cpu")))))
    torch.manual_seed(7)
    assert float(t2.g_objective(0).detach()) == pytest.approx(float((plain + want).detach()), rel=1e-5)


@pytest.mark.parametrize("dataset, arch", [("ring8", "mlp"), ("digits", "infogan"), ("digits", "resnet")])
@pytest.mark.parametrize("extra", [["--d-minibatch", "stddev"], ["--d-minibatch", "discrimination"],
                                   ["--reg", "fm=1.0"], ["--reg", "fm=0.5", "--reg", "fm_layer=2", "--reg", "fm_alone=1"]])
def test_d_options_and_feature_matching_train(tmp_path, dataset, arch, extra):
    for loss in ("ns", "wgan-gp"):
        r = _train(tmp_path / loss, "--dataset", dataset, "--arch", arch, "--loss", loss, "--n-disc", "1", *extra)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "ok"
    cfg = json.loads((tmp_path / "ns" / "config.json").read_text())
    if "--d-minibatch" in extra:
        assert cfg["d_minibatch"] == extra[1]
    else:
        assert cfg["feature_matching"] > 0 and cfg["fm_alone"] == ("fm_alone=1" in extra)


# ---- unrolled GAN (losses.unrolled) -----------------------------------------------------------------

def _adam_with_state(net, lr=1e-2):
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.9))
    for s in range(2):  # two real steps: moments and step count that are not the initial ones
        opt.zero_grad()
        net(torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(s))).pow(2).sum().backward()
        opt.step()
    return opt


def test_unrolled_adam_step_is_torchs_adam_step():
    import copy

    import torch

    from losses.unrolled import adam_step

    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1).double()
    opt = _adam_with_state(net)
    x = torch.randn(6, 2, dtype=torch.float64)
    real = dict(net.named_parameters())
    grads = dict(zip(real, torch.autograd.grad(net(x).pow(3).mean(), list(real.values()))))
    new, moments = adam_step({n: p.detach() for n, p in real.items()}, grads, opt, real, None)
    twin, twin_opt = copy.deepcopy(net), None
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2, betas=(0.5, 0.9))
    twin_opt.load_state_dict(opt.state_dict())
    twin_opt.zero_grad()
    twin(x).pow(3).mean().backward()
    twin_opt.step()
    for n, p in twin.named_parameters():
        assert torch.allclose(new[n], p.detach(), rtol=1e-12, atol=1e-15), n
        assert moments[n][2] == 3.0  # the step count continues D's own


def test_unrolled_gradient_matches_finite_differences_through_the_unrolled_steps():
    """G's gradient of L_G(theta_G, theta_D^K) against central differences of the whole unrolled
    computation (float64, fixed batches): the gradient really flows through the K Adam steps, and
    differs from the gradient against the current D (K = 0)."""
    import torch

    import losses
    from losses.unrolled import unrolled_d

    torch.manual_seed(0)
    G, D = torch.nn.Linear(3, 2).double(), torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    opt = _adam_with_state(D)
    loss = losses.get("ns")
    z = [torch.randn(8, 3, dtype=torch.float64) for _ in range(4)]
    real = [torch.randn(8, 2, dtype=torch.float64) for _ in range(3)]

    def objective(k):
        it = iter(range(3))

        def d_loss(fn):
            i = next(it)
            return loss.d_loss(fn(real[i]).squeeze(1), fn(G(z[i])).squeeze(1))

        D_k = unrolled_d(D, opt, k, d_loss)
        return loss.g_loss(D_k(G(z[3])).squeeze(1))

    for k in (0, 3):
        w = G.weight
        (grad,) = torch.autograd.grad(objective(k), [w])
        fd = torch.zeros_like(w)
        for idx in [(0, 0), (1, 2)]:
            with torch.no_grad():
                w[idx] += 1e-6
            up = float(objective(k).detach())
            with torch.no_grad():
                w[idx] -= 2e-6
            down = float(objective(k).detach())
            with torch.no_grad():
                w[idx] += 1e-6
            fd[idx] = (up - down) / 2e-6
            assert float(grad[idx]) == pytest.approx(float(fd[idx]), rel=1e-5, abs=1e-9)
        if k == 0:
            g0 = grad.clone()
    assert not torch.allclose(grad, g0)  # the unrolled gradient is another gradient
    # the real D is untouched by unrolling
    before = [p.clone() for p in D.parameters()]
    objective(3)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


@pytest.mark.parametrize("dataset, arch, loss", [("ring8", "mlp", "ns"), ("ring8", "mlp", "hinge"),
                                                 ("digits", "infogan", "ns"), ("digits", "dcgan", "rsgan")])
def test_unrolled_trains_and_leaves_ds_own_update_unchanged(tmp_path, dataset, arch, loss):
    """At step 1 D's update comes first: D's whole state (parameters, BatchNorm statistics,
    spectral-norm vectors) equals the plain run's; G's differs (it saw D unrolled)."""
    import torch

    args = ["--dataset", dataset, "--arch", arch, "--loss", loss, "--n-disc", "1"]
    for name, extra in (("plain", []), ("unrolled", ["--unrolled", "2"])):
        r = run_cli("train", "--steps", "1", "--log-every", "1", "--ckpt-every", "1", "--out", str(tmp_path / name), *args, *extra)
        assert r.returncode == 0, r.stderr
    a, b = (checkpoint.load(checkpoint.list_checkpoints(tmp_path / n)[-1]) for n in ("plain", "unrolled"))
    assert all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])
    assert not all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert json.loads((tmp_path / "unrolled" / "config.json").read_text())["unrolled_steps"] == 2
    r = _train(tmp_path / "longer", *args, "--unrolled", "3")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok", r.stderr


# ---- reference and virtual batch norm for G (models.reference_norm) ---------------------------------

@pytest.mark.parametrize("conv", [False, True])
def test_virtual_and_reference_bn_against_batchnorm_on_the_combined_batch(conv):
    """Virtual BN of sample x = training-mode batch norm of (reference batch + x), read at x;
    reference BN = the reference batch's statistics alone."""
    import torch
    from torch import nn

    from models.reference_norm import REF_BATCH, ReferenceNorm

    torch.manual_seed(0)
    bn = (nn.BatchNorm2d(3) if conv else nn.BatchNorm1d(3)).double()
    nn.init.normal_(bn.weight), nn.init.normal_(bn.bias)
    shape = (3, 4, 4) if conv else (3,)
    ref, x = torch.randn(REF_BATCH, *shape, dtype=torch.float64), torch.randn(5, *shape, dtype=torch.float64)
    for virtual in (True, False):
        rn = ReferenceNorm(bn, virtual)
        rn.capturing = True
        rn(ref)
        rn.capturing = False
        out = rn(x)
        for i in range(5):
            plain = nn.BatchNorm2d(3) if conv else nn.BatchNorm1d(3)
            plain = plain.double().train()
            plain.weight, plain.bias = bn.weight, bn.bias
            if virtual:
                want = plain(torch.cat([ref, x[i:i + 1]]))[-1]
            else:
                normed = (x[i] - _bn_stat(ref, "mean")) / (_bn_stat(ref, "var") + bn.eps).sqrt()
                want = normed * _chan(bn.weight, x[i]) + _chan(bn.bias, x[i])
            assert torch.allclose(out[i], want, atol=1e-10)


def _bn_stat(t, what):
    """A batch's per-channel mean or (biased) variance, shaped like one sample."""
    dims = [0, *range(2, t.dim())]
    v = t.mean(dims) if what == "mean" else t.var(dims, unbiased=False)
    return v.reshape(-1, *[1] * (t.dim() - 2))


def _chan(p, like):
    return p.reshape(-1, *[1] * (like.dim() - 1))


@pytest.mark.parametrize("g_norm", ["reference", "virtual"])
def test_reference_batch_is_stored_so_resume_and_scoring_are_exact(tmp_path, g_norm):
    import torch

    args = ["--dataset", "digits", "--arch", "infogan", "--loss", "ns", "--g-norm", g_norm, "--log-every", "5"]
    assert run_cli("train", *args, "--steps", "20", "--ckpt-every", "10", "--out", str(tmp_path / "once")).returncode == 0
    assert run_cli("train", *args, "--steps", "10", "--ckpt-every", "10", "--out", str(tmp_path / "twice")).returncode == 0
    assert run_cli("train", *args, "--steps", "20", "--ckpt-every", "10", "--out", str(tmp_path / "twice")).returncode == 0
    a, b = (checkpoint.load(checkpoint.list_checkpoints(tmp_path / n)[-1]) for n in ("once", "twice"))
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"]) and "z_ref" in a["G"]
    G, cfg = checkpoint.load_generator(tmp_path / "once")  # built with the run's g_norm, its z_ref loaded
    assert cfg.g_norm == g_norm and torch.equal(G.z_ref, a["G"]["z_ref"])
    z = torch.rand(4, cfg.z_dim) * 2 - 1
    with torch.no_grad():  # eval and train mode compute the same (no running statistics)
        assert torch.allclose(G.eval()(z), G.train()(z))
    r = _train(tmp_path / "mlp", "--dataset", "ring8", "--g-norm", g_norm)
    assert r.returncode == 2 and "has no batch norm to replace" in r.stderr


# Every trick refused where it does not apply: one line on stderr, exit 2, nothing written.
REFUSED = [
    ("wgan", ["--reg", "fake_label_smoothing=0.1"], "loss 'wgan' has no parameter 'fake_label_smoothing'"),
    ("ns", ["--reg", "fake_label_smoothing=0.5"], "fake_label_smoothing must be in [0, 0.5)"),
    ("ns", ["--lr-d", "0"], "lr_d (D's learning rate) must be a positive number"),
    ("ns", ["--reg", "r2=-1"], "r2 gamma must be >= 0"),
    ("r3gan", ["--loss-param", "gamma_final=2"], "gamma_final must be in [0, 1]"),
    ("began", ["--d-minibatch", "stddev"], "d_minibatch stddev needs a logit discriminator"),
    ("began", ["--reg", "fm=1"], "feature matching needs a logit discriminator"),
    ("ns", ["--reg", "fm=1", "--reg", "fm_layer=9"], "fm_layer must be in 1..3"),
    ("ns", ["--reg", "fm_alone=1"], "give it a weight"),
    ("ns", ["--reg", "fm=1", "--compile"], "run without --compile"),
    ("ns", ["--reg", "fm_layer=1.5"], "fm_layer must be an integer"),
    ("ns", ["--d-minibatch", "big"], "invalid choice: 'big'"),
    ("wgan", ["--unrolled", "2"], "wgan's D step also has"),
    ("began", ["--unrolled", "2"], "began's D step also has"),
    ("ns", ["--unrolled", "2", "--reg", "r1=1"], "does not combine with R1"),
    ("ns", ["--unrolled", "2", "--compile"], "does not combine with --compile"),
    ("ns", ["--unrolled", "-1"], "unrolled_steps must be an integer >= 0"),
    ("ns", ["--g-norm", "reference"], "arch 'mlp': this generator has no batch norm to replace"),
]


@pytest.mark.parametrize("loss, extra, needle", REFUSED)
def test_tricks_refused_with_one_line_where_they_do_not_apply(tmp_path, loss, extra, needle):
    before = tree_snapshot(tmp_path)
    r = _train(tmp_path / "r", "--dataset", "ring8", "--loss", loss, *extra)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_snapshot(tmp_path) == before
