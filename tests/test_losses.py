"""Tests for the losses package: every formula against numbers worked out by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import losses
from bench.errors import UsageError
from losses.regularizers import (
    Regularizers,
    add_instance_noise,
    annealed_noise_std,
    r1_penalty,
)


def sp(t: float) -> float:
    """softplus by hand: log(1 + e^t)."""
    return math.log(1.0 + math.exp(t))


REAL = [1.0, -2.0]
FAKE = [0.5, -1.0]


def outs(values: list[float], shape: str) -> torch.Tensor:
    t = torch.tensor(values, dtype=torch.float64)
    return t if shape == "N" else t.reshape(-1, 1)


# d_loss(REAL, FAKE) and g_loss(FAKE, REAL), worked out by hand.
# mean(REAL) = -0.5, mean(FAKE) = -0.25.
HAND = {
    "ns": ((sp(-1.0) + sp(2.0)) / 2 + (sp(0.5) + sp(-1.0)) / 2,
           (sp(-0.5) + sp(1.0)) / 2),
    "mm": ((sp(-1.0) + sp(2.0)) / 2 + (sp(0.5) + sp(-1.0)) / 2,
           -(sp(0.5) + sp(-1.0)) / 2),
    "dragan": ((sp(-1.0) + sp(2.0)) / 2 + (sp(0.5) + sp(-1.0)) / 2,
               (sp(-0.5) + sp(1.0)) / 2),
    # 1/2 mean((r-1)^2) + 1/2 mean(f^2) = 1/2 * (0 + 9)/2 + 1/2 * (0.25 + 1)/2
    "ls": (0.5 * 4.5 + 0.5 * 0.625, 0.5 * (0.25 + 4.0) / 2),
    "wgan": (-0.25 - (-0.5), 0.25),
    "wgan-gp": (0.25, 0.25),
    # relu(1 - r) = [0, 3]; relu(1 + f) = [1.5, 0]
    "hinge": (1.5 + 0.75, 0.25),
    # r - f = [0.5, -1.0]
    "rsgan": ((sp(-0.5) + sp(1.0)) / 2, (sp(0.5) + sp(-1.0)) / 2),
    # r - mean f = [1.25, -1.75]; f - mean r = [1.0, -0.5]
    "ragan": ((sp(-1.25) + sp(1.75)) / 2 + (sp(1.0) + sp(-0.5)) / 2,
              (sp(-1.0) + sp(0.5)) / 2 + (sp(1.25) + sp(-1.75)) / 2),
}
ALL = ["began", "dragan", "hinge", "ls", "mm", "ns", "r3gan", "ragan", "rsgan", "wgan", "wgan-gp"]


# --- formulas ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["N", "N1"])
@pytest.mark.parametrize("name", sorted(HAND))
def test_d_and_g_loss_match_hand_values(name, shape):
    loss = losses.get(name)
    real, fake = outs(REAL, shape), outs(FAKE, shape)
    d_hand, g_hand = HAND[name]
    d = loss.d_loss(real, fake)
    g = loss.g_loss(fake, real)
    assert d.dim() == 0 and g.dim() == 0
    assert d.item() == pytest.approx(d_hand, rel=1e-12)
    assert g.item() == pytest.approx(g_hand, rel=1e-12)


@pytest.mark.parametrize("shape", ["N", "N1"])
def test_began_losses_use_k_t(shape):
    loss = losses.get("began")
    l_real, l_fake = outs([0.4, 0.2], shape), outs([0.1, 0.3], shape)
    assert loss.d_loss(l_real, l_fake).item() == pytest.approx(0.3, rel=1e-12)  # k_0 = 0
    loss.load_state_dict({"k_t": 0.5})
    assert loss.d_loss(l_real, l_fake).item() == pytest.approx(0.3 - 0.5 * 0.2, rel=1e-12)
    assert loss.g_loss(l_fake).item() == pytest.approx(0.2, rel=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_rejects_outputs_that_are_not_one_per_sample(name):
    with pytest.raises(ValueError, match=r"\[N\] or \[N, 1\]"):
        losses.get(name).d_loss(torch.zeros(4, 2), torch.zeros(4, 2))


def test_bce_losses_are_stable_for_huge_logits():
    ns = losses.get("ns")
    d = ns.d_loss(torch.tensor([200.0]), torch.tensor([-200.0]))
    g = ns.g_loss(torch.tensor([-200.0]))
    assert d.item() == pytest.approx(0.0, abs=1e-30)
    assert g.item() == pytest.approx(200.0)
    assert math.isfinite(losses.get("mm").g_loss(torch.tensor([200.0])).item())


def test_mm_is_saturating_and_ns_is_not():
    # D confidently rejects the fake: MM's G gradient vanishes, NS's does not.
    fake = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.get("mm").g_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(losses.get("ns").g_loss(fake), fake)
    assert abs(g_mm.item()) < 1e-4 < abs(g_ns.item())
    assert g_ns.item() == pytest.approx(-1.0 / (1.0 + math.exp(-10.0)))


# --- label smoothing --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mm", "ns", "dragan"])
def test_label_smoothing_changes_only_the_real_term(name):
    s = 0.1
    plain, smooth = losses.get(name), losses.get(name, label_smoothing=s)
    real, fake = outs(REAL, "N"), outs(FAKE, "N")
    real_term = ((1 - s) * sp(-1.0) + s * sp(1.0) + (1 - s) * sp(2.0) + s * sp(-2.0)) / 2
    fake_term = (sp(0.5) + sp(-1.0)) / 2
    assert smooth.d_loss(real, fake).item() == pytest.approx(real_term + fake_term, rel=1e-12)
    # softplus(r) - softplus(-r) = r, so smoothing adds exactly s * mean(D(x)).
    diff = smooth.d_loss(real, fake) - plain.d_loss(real, fake)
    assert diff.item() == pytest.approx(s * (-0.5), rel=1e-9)
    # G's loss and D's fake term are untouched.
    assert smooth.g_loss(fake).item() == plain.g_loss(fake).item()
    other_fake = outs([3.0, 0.0], "N")
    assert (smooth.d_loss(real, other_fake) - smooth.d_loss(real, fake)).item() == pytest.approx(
        (plain.d_loss(real, other_fake) - plain.d_loss(real, fake)).item(), rel=1e-12)


@pytest.mark.parametrize("name", ["mm", "ns", "dragan"])
def test_two_sided_label_smoothing_moves_only_the_fake_target(name):
    """Salimans et al. 2016's two-sided form: the fake target 0 becomes f, the real term stays."""
    s, f = 0.1, 0.2
    one, two = losses.get(name, label_smoothing=s), losses.get(name, label_smoothing=s, fake_label_smoothing=f)
    real, fake = outs(REAL, "N"), outs(FAKE, "N")
    real_term = ((1 - s) * sp(-1.0) + s * sp(1.0) + (1 - s) * sp(2.0) + s * sp(-2.0)) / 2
    fake_term = ((1 - f) * sp(0.5) + f * sp(-0.5) + (1 - f) * sp(-1.0) + f * sp(1.0)) / 2
    assert two.d_loss(real, fake).item() == pytest.approx(real_term + fake_term, rel=1e-12)
    # softplus(l) - softplus(-l) = l: the fake side changes by -f * mean(D(G(z)))
    assert (two.d_loss(real, fake) - one.d_loss(real, fake)).item() == pytest.approx(-f * (-0.25), rel=1e-9)
    assert two.g_loss(fake).item() == one.g_loss(fake).item()


@pytest.mark.parametrize("name", ["ls", "wgan", "wgan-gp", "hinge", "rsgan", "ragan", "began", "r3gan"])
@pytest.mark.parametrize("param", ["label_smoothing", "fake_label_smoothing"])
def test_label_smoothing_rejected_where_it_has_no_meaning(name, param):
    with pytest.raises(ValueError, match=param):
        losses.get(name, **{param: 0.1})


# --- gradient penalties with a linear critic D(x) = w.x: ||grad D|| = ||w|| everywhere ----------
W = [0.5, -1.0, 2.0, 0.25, 0.0, 1.5]  # ||w||^2 = 7.5625, ||w|| = 2.75


def linear_critic(image_shaped: bool) -> nn.Module:
    lin = nn.Linear(6, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([W], dtype=torch.float64))
    return nn.Sequential(nn.Flatten(), lin) if image_shaped else lin


def batch(image_shaped: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    return x.reshape(5, 1, 2, 3) if image_shaped else x


def weight(D: nn.Module) -> torch.Tensor:
    return D[1].weight if isinstance(D, nn.Sequential) else D.weight


@pytest.mark.parametrize("image_shaped", [False, True])
@pytest.mark.parametrize("name", ["wgan-gp", "dragan"])
def test_unit_gradient_penalty_on_linear_critic(name, image_shaped):
    lam = 10.0
    D = linear_critic(image_shaped)
    loss = losses.get(name, gp_lambda=lam)
    pen = loss.penalty(D, batch(image_shaped, 0), batch(image_shaped, 1))
    assert pen.item() == pytest.approx(lam * (2.75 - 1.0) ** 2, rel=1e-12)  # = 30.625
    pen.backward()
    expected = [2 * lam * (2.75 - 1.0) * w / 2.75 for w in W]
    assert weight(D).grad.flatten().tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("image_shaped", [False, True])
def test_r1_on_linear_critic(image_shaped):
    gamma = 3.0
    D = linear_critic(image_shaped)
    pen = r1_penalty(D, batch(image_shaped, 0), gamma)
    assert pen.item() == pytest.approx(gamma / 2 * 7.5625, rel=1e-12)
    pen.backward()
    assert weight(D).grad.flatten().tolist() == pytest.approx([gamma * w for w in W], rel=1e-12)
    D.zero_grad()
    real, fake = batch(image_shaped, 0), batch(image_shaped, 1)
    assert Regularizers(r1_gamma=gamma).d_penalty(D, real, fake).item() == pytest.approx(pen.item())
    assert Regularizers().d_penalty(D, real, fake) == 0.0
    # R2 is the same penalty on the generated batch, and adds to R1
    r2 = r1_penalty(D, fake, 2.0).item()
    assert Regularizers(r2_gamma=2.0).d_penalty(D, real, fake).item() == pytest.approx(r2, rel=1e-12)
    assert Regularizers(r1_gamma=gamma, r2_gamma=2.0).d_penalty(D, real, fake).item() == pytest.approx(pen.item() + r2, rel=1e-12)


class Recorder(nn.Module):
    """A non-linear D that remembers the inputs it was called on."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.flatten(1).pow(2).sum(1)


def test_wgan_gp_interpolates_with_one_eps_per_sample():
    real, fake = batch(True, 0), batch(True, 1)
    D = Recorder()
    pen = losses.get("wgan-gp").penalty(D, real, fake)
    (xhat,) = D.seen
    eps = (xhat - fake) / (real - fake)  # xhat = eps x + (1 - eps) x_fake
    per_sample = eps.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))
    assert ((per_sample >= 0) & (per_sample <= 1)).all()
    assert per_sample[:, 0].unique().numel() == real.shape[0]
    # gradient of sum x^2 is 2 xhat
    norms = (2 * xhat).flatten(1).norm(dim=1)
    assert pen.item() == pytest.approx(10.0 * ((norms - 1) ** 2).mean().item(), rel=1e-12)


def test_dragan_perturbs_real_data_only_within_half_a_std():
    real, fake = batch(True, 0), batch(True, 1)
    D = Recorder()
    losses.get("dragan").penalty(D, real, fake)
    (xhat,) = D.seen
    step = xhat - real  # alpha * 0.5 std(x) * u, u in [0, 1), alpha in [0, 1]
    assert (step >= 0).all()
    assert (step < 0.5 * real.std(correction=0)).all()
    assert step.abs().sum() > 0
    # The same draws from the global RNG, by hand: u per element, then alpha per sample.
    torch.manual_seed(7)
    losses.get("dragan").penalty(D, real, fake)
    torch.manual_seed(7)
    u = torch.rand_like(real)
    alpha = torch.rand(real.shape[0], 1, 1, 1, dtype=real.dtype)
    std = math.sqrt(sum((v - real.mean().item()) ** 2 for v in real.flatten().tolist()) / real.numel())
    assert torch.allclose(D.seen[-1], real + alpha * 0.5 * std * u, rtol=0, atol=1e-12)


def test_zero_lambda_means_no_penalty():
    D = linear_critic(False)
    assert losses.get("wgan-gp", gp_lambda=0).penalty(D, batch(False, 0), batch(False, 1)) == 0.0
    assert losses.get("dragan", gp_lambda=0).penalty(D, batch(False, 0), batch(False, 1)) == 0.0
    assert losses.get("ns").penalty(D, batch(False, 0), batch(False, 1)) == 0.0


# --- after_d_step and state ---------------------------------------------------------------------
def test_wgan_clips_every_d_parameter():
    D = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double()
    with torch.no_grad():
        for i, p in enumerate(D.parameters()):
            p.copy_(torch.linspace(-2.0, 2.0, p.numel()).reshape(p.shape) * (i + 1))
        D[0].weight[0, 0] = 0.003  # inside the box: must stay as it is
    before = D[0].weight[0, 0].item()
    loss = losses.get("wgan", clip=0.05)
    loss.after_d_step(D, torch.zeros(2), torch.zeros(2))
    for p in D.parameters():
        assert p.abs().max().item() <= 0.05
    assert D[0].weight[0, 0].item() == before
    assert D[1].weight.max().item() == pytest.approx(0.05)  # batch-norm scale is clipped too


def test_began_k_update_matches_hand_value_and_is_clipped():
    loss = losses.get("began", lambda_k=1e-3, gamma=0.75)
    assert loss.state_dict() == {"k_t": 0.0}
    loss.after_d_step(None, torch.tensor([0.4, 0.2]), torch.tensor([0.1, 0.3]))
    # k_1 = 0 + 1e-3 (0.75 * 0.3 - 0.2) = 2.5e-5; M = 0.3 + |0.225 - 0.2|
    assert loss.k_t == pytest.approx(2.5e-5, rel=1e-6)
    assert loss.log_values()["M"] == pytest.approx(0.325, rel=1e-6)
    assert loss.log_values()["k_t"] == loss.k_t

    big = losses.get("began", lambda_k=10.0, gamma=1.0)
    big.after_d_step(None, torch.tensor([1.0]), torch.tensor([0.0]))
    assert big.k_t == 1.0
    big.after_d_step(None, torch.tensor([0.0]), torch.tensor([1.0]))
    big.after_d_step(None, torch.tensor([0.0]), torch.tensor([1.0]))
    assert big.k_t == 0.0
    assert "M" not in losses.get("began").log_values()


def test_began_state_round_trips_bit_for_bit():
    loss = losses.get("began", lambda_k=0.0123, gamma=0.6)
    for real, fake in [(0.7, 0.1), (0.3, 0.25), (0.9, 0.05)]:
        loss.after_d_step(None, torch.tensor([real]), torch.tensor([fake]))
    state = loss.state_dict()
    assert all(type(v) is float for v in state.values())
    restored = losses.get("began", lambda_k=0.0123, gamma=0.6)
    restored.load_state_dict(json.loads(json.dumps(state)))
    assert restored.state_dict() == state and restored.k_t == loss.k_t
    real, fake = torch.tensor([0.5, 0.6]), torch.tensor([0.2, 0.1])
    assert torch.equal(restored.d_loss(real, fake), loss.d_loss(real, fake))
    with pytest.raises(ValueError):
        restored.load_state_dict({"k_t": 1.5})
    with pytest.raises(ValueError):
        restored.load_state_dict({})


def test_stateless_losses_reject_foreign_state():
    loss = losses.get("ns")
    assert loss.state_dict() == {}
    loss.load_state_dict({})
    with pytest.raises(ValueError):
        loss.load_state_dict({"k_t": 0.1})


# --- relativistic -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rsgan", "ragan"])
def test_relativistic_g_loss_uses_real_out(name):
    loss = losses.get(name)
    assert loss.g_uses_real
    fake = outs(FAKE, "N")
    assert loss.g_loss(fake, outs(REAL, "N")).item() != loss.g_loss(fake, outs([3.0, 4.0], "N")).item()
    with pytest.raises(ValueError, match="real_out"):
        loss.g_loss(fake)


def test_only_relativistic_losses_use_real_in_g():
    assert {n for n in losses.names() if losses.loss_class(n).g_uses_real} == {"rsgan", "ragan", "r3gan"}
    assert {n for n in losses.names() if losses.loss_class(n).d_head == "autoencoder"} == {"began"}


def test_rsgan_needs_paired_batches():
    with pytest.raises(ValueError, match="pairs"):
        losses.get("rsgan").d_loss(torch.zeros(3), torch.zeros(2))


# --- every loss in a real (tiny) training step -----------------------------------------------------
class AutoencoderD(nn.Module):
    """Per-sample L1 reconstruction error, like BEGAN's D head."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(4, 2), nn.Linear(2, 4)

    def forward(self, x):
        return (self.dec(torch.relu(self.enc(x))) - x).abs().mean(dim=1)


@pytest.mark.parametrize("name", ALL)
def test_one_training_step_of_every_loss(name):
    torch.manual_seed(0)
    loss = losses.get(name)
    G = nn.Linear(3, 4)
    D = AutoencoderD() if loss.d_head == "autoencoder" else nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    real, z = torch.randn(6, 4), torch.randn(6, 3)
    fake = G(z)
    real_out, fake_out = D(real), D(fake.detach())
    d = loss.d_loss(real_out, fake_out) + loss.penalty(D, real, fake.detach())
    d.backward()
    assert math.isfinite(d.item())
    assert all(p.grad is not None for p in D.parameters())
    assert G.weight.grad is None
    loss.after_d_step(D, real_out.detach(), fake_out.detach())
    g = loss.g_loss(D(fake), D(real) if loss.g_uses_real else None)
    g.backward()
    assert math.isfinite(g.item()) and G.weight.grad.abs().sum() > 0
    assert all(type(v) is float for v in loss.state_dict().values())
    assert all(type(v) is float for v in loss.log_values().values())


# --- registry -------------------------------------------------------------------------------------
def test_names_are_exactly_the_eleven_losses():
    assert losses.names() == ALL


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown loss 'x'; known: began, dragan, .*wgan-gp"):
        losses.get("x")
    with pytest.raises(UsageError):
        losses.loss_class("nope")


def test_unknown_parameter_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"'wgan'.*'gp_lambda'.*accepted: clip"):
        losses.get("wgan", gp_lambda=1.0)
    with pytest.raises(ValueError, match="'hinge' takes no parameters"):
        losses.get("hinge", clip=0.1)


@pytest.mark.parametrize("name, param, value, accepted", [
    ("wgan", "clip", 0.0, "(0, inf)"),
    ("wgan", "clip", -0.01, "(0, inf)"),
    ("wgan-gp", "gp_lambda", -1.0, "[0, inf)"),
    ("dragan", "gp_lambda", -1.0, "[0, inf)"),
    ("began", "lambda_k", -1e-3, "[0, inf)"),
    ("began", "gamma", 1.5, "[0, 1]"),
    ("began", "gamma", -0.1, "[0, 1]"),
    ("ns", "label_smoothing", 0.5, "[0, 0.5)"),
    ("mm", "label_smoothing", -0.1, "[0, 0.5)"),
    ("wgan-gp", "gp_lambda", float("nan"), "[0, inf)"),
    ("wgan-gp", "gp_lambda", "ten", "[0, inf)"),
])
def test_bad_values_name_the_parameter_and_range(name, param, value, accepted):
    with pytest.raises(ValueError) as err:
        losses.get(name, **{param: value})
    msg = str(err.value)
    assert param in msg and accepted in msg and "\n" not in msg


def test_defaults_and_overrides():
    assert losses.get("wgan").hp == {"clip": 0.01}
    assert losses.get("wgan-gp").hp == {"gp_lambda": 10.0}
    assert losses.get("dragan").hp == {"gp_lambda": 10.0, "label_smoothing": 0.0, "fake_label_smoothing": 0.0}
    assert losses.get("began").hp == {"lambda_k": 1e-3, "gamma": 0.75}
    assert losses.get("ns").hp == {"label_smoothing": 0.0, "fake_label_smoothing": 0.0}
    assert losses.get("r3gan").hp == {"gamma": 0.05, "gamma_final": 0.1}
    assert losses.get("hinge").hp == {}
    a = losses.get("wgan", clip=1)
    assert a.hp == {"clip": 1.0} and type(a.hp["clip"]) is float
    assert losses.loss_class("wgan").params == {"clip": 0.01}  # class defaults untouched
    assert isinstance(a, losses.Loss) and isinstance(a, losses.loss_class("wgan"))


def test_register_refuses_duplicates_and_incomplete_losses():
    with pytest.raises(ValueError, match="twice"):
        losses.register("ns")(type("Dup", (losses.Loss,), {}))
    with pytest.raises(ValueError, match="published"):
        losses.register("incomplete")(type("Incomplete", (losses.Loss,), {"published": {"lr": 1e-4}}))
    assert "incomplete" not in losses.names()


@pytest.mark.parametrize("name", ALL)
def test_every_loss_has_sane_published_defaults(name):
    pub = losses.loss_class(name).published
    assert set(pub) == {"lr", "beta1", "n_disc", "d_norm"}
    assert pub["lr"] > 0 and 0 <= pub["beta1"] < 1
    assert pub["n_disc"] in {1, 5}
    assert pub["d_norm"] in {"none", "batch", "layer", "spectral"}


# Lucic et al. 2018 sample 0 of every search (compare_gan v1 params.py), copied from REFERENCE.md.
LUCIC_SAMPLE0 = {
    "mm": {"lr": 5e-5, "beta1": 0.0, "n_disc": 1, "d_norm": "batch"},
    "ns": {"lr": 5e-5, "beta1": 0.0, "n_disc": 1, "d_norm": "batch"},
    "ls": {"lr": 2e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "batch"},
    "wgan": {"lr": 5e-5, "beta1": 0.5, "n_disc": 5, "d_norm": "batch"},
    "wgan-gp": {"lr": 1e-4, "beta1": 0.5, "n_disc": 5, "d_norm": "none"},
    "dragan": {"lr": 1e-4, "beta1": 0.5, "n_disc": 1, "d_norm": "batch"},
    "began": {"lr": 1e-4, "beta1": 0.5, "n_disc": 5, "d_norm": "none"},
}
LUCIC_LOSS_PARAMS = {"wgan": {"clip": 0.01}, "wgan-gp": {"gp_lambda": 10.0}, "dragan": {"gp_lambda": 10.0},
                     "began": {"lambda_k": 1e-3, "gamma": 0.75}}


@pytest.mark.parametrize("name", sorted(LUCIC_SAMPLE0))
def test_lucic_losses_publish_reference_sample0(name):
    assert losses.loss_class(name).published == LUCIC_SAMPLE0[name]
    for param, value in LUCIC_LOSS_PARAMS.get(name, {}).items():
        assert losses.loss_class(name).params[param] == value


# --- instance noise and Regularizers -------------------------------------------------------------------
def test_annealed_noise_std():
    assert annealed_noise_std(0.2, 0, 100) == 0.2
    assert annealed_noise_std(0.2, 50, 100) == pytest.approx(0.1)
    assert annealed_noise_std(0.2, 100, 100) == 0.0
    assert annealed_noise_std(0.2, 250, 100) == 0.0
    assert annealed_noise_std(0.2, 10**6, 0) == 0.2  # anneal_steps 0: constant noise
    assert annealed_noise_std(0.0, 0, 100) == 0.0


def test_no_noise_and_no_rng_draw_when_std_is_zero():
    x = torch.randn(4, 3)
    state = torch.get_rng_state()
    assert add_instance_noise(x, 0.0) is x
    assert Regularizers(noise_std=0.0).perturb(x, 0) is x
    assert Regularizers(noise_std=0.5, noise_anneal_steps=10).perturb(x, 10) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_instance_noise_uses_global_rng_and_has_the_right_scale():
    x = torch.zeros(200, 50)
    reg = Regularizers(noise_std=0.4, noise_anneal_steps=100)
    torch.manual_seed(3)
    a = reg.perturb(x, 50)
    torch.manual_seed(3)
    b = reg.perturb(x, 50)
    assert torch.equal(a, b)
    assert a.std().item() == pytest.approx(0.2, rel=0.05)


def test_noise_schedule_on_a_device_step_counter_matches_the_host_schedule():
    """A CUDA-graphed step reads the step from a device tensor: same sigma_t, same noise for the same RNG."""
    reg = Regularizers(noise_std=0.4, noise_anneal_steps=100)
    for step in (0, 37, 50, 100, 250):
        std = reg.noise_std_at(torch.tensor(step))
        assert isinstance(std, torch.Tensor) and std.item() == pytest.approx(reg.noise_std_at(step), abs=1e-7)
        x = torch.zeros(64, 8)
        torch.manual_seed(5)
        on_device = reg.perturb(x, torch.tensor(step))
        torch.manual_seed(5)
        expected = x + reg.noise_std_at(step) * torch.randn_like(x)
        assert torch.allclose(on_device, expected, atol=1e-7)
    # constant noise, or none, does not depend on the step: a plain float, nothing computed
    assert Regularizers(noise_std=0.3).noise_std_at(torch.tensor(9)) == 0.3
    x = torch.randn(3, 2)
    assert Regularizers().perturb(x, torch.tensor(9)) is x


def test_began_k_t_stays_on_the_outputs_device_and_updates_in_place():
    """k_t is a device tensor updated in place (what a CUDA graph capture needs), with float arithmetic."""
    loss = losses.get("began", lambda_k=0.1, gamma=0.5)
    loss.after_d_step(None, torch.tensor([0.8]), torch.tensor([0.1]))
    k = loss._k
    loss.after_d_step(None, torch.tensor([0.6]), torch.tensor([0.2]))
    assert loss._k is k and loss._k.dtype == torch.float64
    expected = min(max(0.0 + 0.1 * (0.5 * 0.8 - 0.1), 0.0), 1.0)
    expected = min(max(expected + 0.1 * (0.5 * 0.6 - float(torch.tensor(0.2))), 0.0), 1.0)
    assert loss.k_t == pytest.approx(expected, rel=1e-6)
    loss.after_d_step(None, torch.tensor([float("nan")]), torch.tensor([0.2]))  # a NaN step leaves k_t as it was
    assert loss.k_t == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("field, value", [("r1_gamma", -1.0), ("noise_std", -0.1),
                                          ("noise_anneal_steps", -5), ("noise_anneal_steps", 2.5),
                                          ("noise_std", float("nan"))])
def test_regularizers_validate(field, value):
    with pytest.raises(ValueError, match=field):
        Regularizers(**{field: value})


# --- R3GAN: RpGAN + R1 + R2 with a cosine-decayed gamma ---------------------------------------------
@pytest.mark.parametrize("image_shaped", [False, True])
def test_r3gan_penalty_is_gamma_over_two_times_r1_plus_r2(image_shaped):
    """With a linear critic ||grad D||^2 = ||w||^2 = 7.5625 at every point, so R1 = R2 = 7.5625 and the
    penalty is gamma_t / 2 * 15.125, gamma_t from the schedule at that progress."""
    loss = losses.get("r3gan", gamma=2.0, gamma_final=0.1)
    D = linear_critic(image_shaped)
    real, fake = batch(image_shaped, 0), batch(image_shaped, 1)
    for p, gamma_t in ((0.0, 2.0), (0.5, (2.0 + 0.2) / 2), (1.0, 0.2), (3.0, 0.2)):
        assert loss.penalty(D, real, fake, progress=p).item() == pytest.approx(gamma_t / 2 * 15.125, rel=1e-12)
    # the schedule on a device step counter (a CUDA-graph step) gives the same numbers
    assert float(loss.gamma_at(torch.tensor(0.25))) == pytest.approx(loss.gamma_at(0.25), rel=1e-6)
    assert loss.gamma_at(0.25) == pytest.approx(2.0 + (1 - (1 + math.cos(math.pi / 4)) / 2) * (0.2 - 2.0))
    assert losses.get("r3gan", gamma=0.0).penalty(D, real, fake, progress=0.5) == 0.0


def test_r3gan_objectives_are_rsgans():
    r3, rs = losses.get("r3gan"), losses.get("rsgan")
    real, fake = outs(REAL, "N"), outs(FAKE, "N")
    assert r3.d_loss(real, fake).item() == rs.d_loss(real, fake).item()
    assert r3.g_loss(fake, real).item() == rs.g_loss(fake, real).item()
    assert losses.loss_class("r3gan").uses_progress and not losses.loss_class("rsgan").uses_progress
