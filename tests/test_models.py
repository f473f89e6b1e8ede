"""models/: shapes, ranges, gradients, norms, heads, init and the error messages of build()."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import models
from models import HEADS, NORMS, DataSpec, build, names

Z = 16
POINTS = DataSpec("points", (2,))
IMAGES = {s: DataSpec("images", s) for s in [(1, 8, 8), (1, 16, 16), (1, 28, 28), (3, 32, 32), (3, 64, 64)]}
SUPPORTED = {
    "mlp": [POINTS],
    "infogan": list(IMAGES.values()),
    "dcgan": list(IMAGES.values()),
    "resnet": [s for s in IMAGES.values() if s.shape[1] != 28],
}
WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
# One cheap spec per arch for the tests that need only one.
SMALL = {"mlp": POINTS, "infogan": IMAGES[1, 16, 16], "dcgan": IMAGES[1, 16, 16], "resnet": IMAGES[1, 8, 8]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Many small forward/backward passes: one intra-op thread is faster than two fighting
    over a busy 2-core machine (measured: 39 s vs 70 s for this file)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sample(spec: DataSpec, n: int) -> torch.Tensor:
    return torch.rand(n, *spec.shape) * 2 - 1


def test_registry_and_constants():
    assert names() == ["dcgan", "infogan", "mlp", "resnet"]
    assert NORMS == ("none", "batch", "layer", "spectral")
    assert HEADS == ("logit", "autoencoder")
    complete = type("Complete", (), {m: lambda self, *a: None for m in ("generator", "discriminator", "encoder", "decoder")})
    with pytest.raises(ValueError, match="twice"):
        models.register("mlp")(complete)
    with pytest.raises(TypeError, match="must define encoder, decoder"):
        models.register("half")(type("Half", (), {"generator": complete.generator, "discriminator": complete.generator}))
    assert "half" not in names()


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(
    "arch,spec",
    [(a, s) for a, specs in SUPPORTED.items() for s in specs],
    ids=lambda v: "x".join(map(str, v.shape)) if isinstance(v, DataSpec) else v,
)
def test_shapes_range_and_gradients(arch, spec, norm, head):
    torch.manual_seed(0)
    g, d = build(arch, spec, Z, d_norm=norm, d_head=head)
    n = 2
    x_fake = g(torch.rand(n, Z) * 2 - 1)
    assert x_fake.shape == (n, *spec.shape)
    if spec.kind == "images":
        assert x_fake.min() >= -1 and x_fake.max() <= 1
    scores = d(torch.cat([_sample(spec, n), x_fake]))
    assert scores.shape == (2 * n,)
    assert torch.isfinite(scores).all()
    if head == "autoencoder":
        assert (scores >= 0).all()
    scores.sum().backward()
    for name, p in [*d.named_parameters(), *g.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    norm_types = {type(m) for m in d.modules() if isinstance(m, NORM_LAYERS)}
    if norm in ("none", "spectral"):
        assert not norm_types
    if norm == "layer":
        assert norm_types <= {nn.GroupNorm, nn.LayerNorm}
    g.eval()
    with torch.no_grad():
        assert g(torch.zeros(1, Z)).shape == (1, *spec.shape)


def _spectral_matrix(m: nn.Module) -> torch.Tensor:
    """The effective weight as the matrix spectral_norm normalizes (its `dim` moved first)."""
    dim = m.parametrizations.weight[0].dim
    w = m.weight
    return w.movedim(dim, 0).flatten(1)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("arch", ["mlp", "infogan", "dcgan", "resnet"])
def test_spectral_norm_on_every_layer(arch, head):
    torch.manual_seed(0)
    spec = SMALL[arch]
    _, d = build(arch, spec, Z, d_norm="spectral", d_head=head)
    weighted = [m for m in d.modules() if isinstance(m, WEIGHTED)]
    assert weighted and all(parametrize.is_parametrized(m, "weight") for m in weighted)
    assert not any(isinstance(m, NORM_LAYERS) for m in d.modules())
    d.train()
    with torch.no_grad():
        for _ in range(5):  # each training forward runs one more power iteration
            d(_sample(spec, 4))
        for m in weighted:
            sigma = torch.linalg.matrix_norm(_spectral_matrix(m), ord=2)
            assert sigma <= 1.05, (m, sigma)


@pytest.mark.parametrize(
    "arch,spec,needs",
    [
        ("infogan", POINTS, "infogan needs images with height and width divisible by 4"),
        ("infogan", DataSpec("images", (1, 30, 30)), "infogan needs images with height and width divisible by 4"),
        ("mlp", IMAGES[1, 28, 28], "mlp needs points"),
        ("dcgan", POINTS, "dcgan needs images with even height and width of at least 8"),
        ("dcgan", DataSpec("images", (1, 6, 6)), "dcgan needs images with even height and width of at least 8"),
        ("dcgan", DataSpec("images", (1, 9, 9)), "dcgan needs images with even height and width of at least 8"),
        ("resnet", IMAGES[1, 28, 28], "resnet needs square images of side 8, 16, 32 or 64"),
        ("resnet", DataSpec("images", (3, 32, 64)), "resnet needs square images of side 8, 16, 32 or 64"),
    ],
)
def test_incompatible_data_is_one_line_naming_what_is_accepted(arch, spec, needs):
    with pytest.raises(ValueError) as err:
        build(arch, spec, Z)
    msg = str(err.value)
    assert msg.startswith(needs) and f"got {spec.kind} of shape {spec.shape}" in msg
    assert "\n" not in msg


def test_unknown_names_are_listed():
    with pytest.raises(ValueError, match=r"^unknown arch 'x'; known: dcgan, infogan, mlp, resnet$"):
        build("x", POINTS, Z)
    with pytest.raises(ValueError, match=r"^unknown d_norm 'x'; known: none, batch, layer, spectral$"):
        build("mlp", POINTS, Z, d_norm="x")
    with pytest.raises(ValueError, match=r"^unknown d_head 'x'; known: logit, autoencoder$"):
        build("mlp", POINTS, Z, d_head="x")
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="z_dim"):
            build("mlp", POINTS, bad)


def test_dataspec_validates():
    assert DataSpec("images", [1, 28, 28]).shape == (1, 28, 28)
    for kind, shape in [("video", (2,)), ("points", (1, 2)), ("images", (28, 28)), ("images", (0, 8, 8))]:
        with pytest.raises(ValueError):
            DataSpec(kind, shape)


@pytest.mark.parametrize("arch", ["infogan", "dcgan"])
@pytest.mark.parametrize("head", HEADS)
def test_normal_init_std(arch, head):
    torch.manual_seed(0)
    g, d = build(arch, IMAGES[3, 32, 32], Z, d_norm="batch", d_head=head)
    for net in (g, d):
        for m in net.modules():
            if isinstance(m, WEIGHTED):
                assert abs(m.weight.std().item() - 0.02) < 0.002, m
                assert abs(m.weight.mean().item()) < 0.002, m
                assert not m.bias.any()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                bn_std = m.weight.std().item()
                assert abs(m.weight.mean().item() - 1) < 0.01
                assert (bn_std == 0) if arch == "infogan" else (0.01 < bn_std < 0.03)
                assert not m.bias.any()


def test_resnet_xavier_init():
    torch.manual_seed(0)
    g, _ = build("resnet", IMAGES[3, 32, 32], Z)
    block = g[2]
    for conv, gain in [(block.c1, 2**0.5), (block.sc, 1.0)]:
        fan_in, fan_out = conv.weight[0].numel(), conv.weight[:, 0].numel()
        expected = gain * (2 / (fan_in + fan_out)) ** 0.5
        assert abs(conv.weight.std().item() / expected - 1) < 0.05
        assert not conv.bias.any()


@pytest.mark.parametrize("arch", ["mlp", "infogan", "dcgan", "resnet"])
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_autoencoder_score_is_mean_abs_reconstruction_error(arch, norm):
    torch.manual_seed(0)
    spec = SMALL[arch]
    _, d = build(arch, spec, Z, d_norm=norm, d_head="autoencoder")
    d.eval()
    x = _sample(spec, 5)
    with torch.no_grad():
        code = d.encoder(x)
        expected = (x - d.decoder(code)).abs().reshape(5, -1).mean(dim=1)
        got = d(x)
    assert code.shape == (5, models.CODE_DIM)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("norm", ["none", "spectral"])
@pytest.mark.parametrize("arch", ["mlp", "infogan", "dcgan", "resnet"])
def test_same_seed_same_weights(arch, norm):
    def weights():
        torch.manual_seed(0)
        g, d = build(arch, SMALL[arch], Z, d_norm=norm)
        return {**g.state_dict(), **{f"d.{k}": v for k, v in d.state_dict().items()}}

    a, b = weights(), weights()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(1)
    g, _ = build(arch, SMALL[arch], Z)
    assert not torch.equal(next(g.parameters()), a[next(iter(a))])
