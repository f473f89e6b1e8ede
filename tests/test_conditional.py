"""Conditional GANs (issue 15): conditional batch norm in G, a projection discriminator (Miyato &
Koyama 2018), labelled batches in training, labels in scoring, and intra-class FID."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import models
from bench import checkpoint, datasets
from bench.config import TrainConfig
from bench.metrics import intra_fid
from bench.train import train
from models.conditional import ConditionalBatchNorm, Labels, ProjectionHead, sample_labels
from tests.conftest import run_cli, tree_snapshot


def test_conditional_batch_norm_is_a_per_class_scale_and_shift_of_batch_norm():
    torch.manual_seed(0)
    labels = Labels()
    cbn = ConditionalBatchNorm(nn.BatchNorm2d(3), 4, labels)
    h, y = torch.randn(8, 3, 5, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    labels.y = y
    plain = nn.BatchNorm2d(3, affine=False)(h)
    assert torch.allclose(cbn(h), plain, atol=1e-6)  # gamma = 1, beta = 0 at the start
    with torch.no_grad():
        cbn.gamma.weight.uniform_(0.5, 2)
        cbn.beta.weight.normal_()
    want = cbn.gamma.weight[y][:, :, None, None] * plain + cbn.beta.weight[y][:, :, None, None]
    assert torch.allclose(cbn(h), want, atol=1e-6)
    labels.y = y[:3]
    with pytest.raises(RuntimeError, match="batch of 8 with 3 labels"):
        cbn(h)


def test_projection_discriminator_adds_the_class_embedding_inner_product():
    torch.manual_seed(0)
    spec = datasets.get("digits").spec
    G, D = models.build("infogan", spec, 16, n_classes=10)
    plain = D.net[-1].head  # psi, D's original final layer
    seen = {}
    D.net[-1].register_forward_pre_hook(lambda m, args: seen.update(h=args[0]))
    x, y = torch.randn(6, *spec.shape), torch.arange(6)
    D.net[-1].labels.y = y
    out = D(x)
    h = seen["h"]
    want = plain(h).squeeze(1) + (D.net[-1].embed.weight[y] * h).sum(1)
    assert torch.allclose(out, want, atol=1e-5)
    assert G.labels is D.net[-1].labels  # one labelling for the step
    # G(z, y): the class reaches every batch norm; different classes give different samples
    z = torch.rand(4, 16) * 2 - 1
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm):
                m.gamma.weight.uniform_(0.5, 2)
        G.eval()
        a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_projection_sits_on_the_features_before_a_minibatch_layer_and_is_spectral_with_d():
    spec = datasets.get("digits").spec
    _, D = models.build("infogan", spec, 16, "spectral", d_minibatch="stddev", n_classes=10)
    proj = D.net[-1]
    assert isinstance(proj, ProjectionHead) and isinstance(proj.head, nn.Sequential)
    assert proj.embed.weight.shape[1] == proj.head[-1].in_features - 1  # phi(x): before the stddev feature
    assert hasattr(proj.embed, "parametrizations")  # sn_embed, as Miyato & Koyama's code


def test_labelled_batches_are_the_plain_draw_with_their_labels():
    from sklearn.datasets import load_digits

    ds = datasets.get("digits")
    torch.manual_seed(3)
    x = ds.sample(50)
    torch.manual_seed(3)
    x2, y = ds.sample_labelled(50)
    assert torch.equal(x, x2)
    target = torch.from_numpy(load_digits().target)
    idx = [int(((ds.images.float() / 127.5 - 1) == xi).all(dim=(1, 2, 3)).nonzero()[0]) for xi in x2[:5]]
    assert [int(target[i]) for i in idx] == y[:5].tolist()
    st = datasets.get("stacked-digits", count=500)
    from bench.data.synthetic import stacked_digits_labels

    assert st.classes == 1000 and torch.equal(st.labels, stacked_digits_labels("train", 500) @ torch.tensor([100, 10, 1]))
    assert datasets.get("ring8").labels is None and datasets.get("ring8").classes == 0


def test_intra_fid_is_the_mean_of_per_class_fids_from_torch_fidelity():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    g = torch.Generator().manual_seed(0)
    gf, rf = torch.randn(300, 8, generator=g), torch.randn(400, 8, generator=g) + 0.3
    gl, rl = torch.randint(3, (300,), generator=g), torch.randint(3, (400,), generator=g)
    gl[:5] = 3  # a class with too few generated samples is left out
    rl[:20] = 3
    got = intra_fid.per_class(gf, gl, rf, rl)
    assert sorted(got) == [0, 1, 2]
    assert intra_fid.per_class(torch.randn(300, 120), gl, torch.randn(400, 120), rl) == {}  # ~100 < 121 dims
    for c in range(3):
        want = fid_statistics_to_metric(fid_features_to_statistics(gf[gl == c]), fid_features_to_statistics(rf[rl == c]),
                                        verbose=False)["frechet_inception_distance"]
        assert got[c] == pytest.approx(want, rel=1e-9)


def test_a_conditional_run_trains_resumes_exactly_and_scores_by_class(tmp_path):
    cfg = TrainConfig(dataset="digits", arch="infogan", loss="ns", conditional=True, steps=12, batch_size=16,
                      z_dim=16, log_every=6, ckpt_every=6, seed=2, lr=2e-4, beta1=0.5, d_norm="none")
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert train(cfg, whole).status == "ok"
    import dataclasses

    train(dataclasses.replace(cfg, steps=6), part)
    train(cfg, part)  # resumed from step 6
    a, b = (checkpoint.load(checkpoint.list_checkpoints(p)[-1]) for p in (whole, part))
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k]), k
    assert json.loads((whole / "config.json").read_text())["conditional"] is True
    G, got = checkpoint.load_generator(whole)
    assert got.conditional and G.n_classes == 10
    ds = datasets.get("digits")
    freq = torch.bincount(ds.labels, minlength=10).double() / ds.n
    assert torch.allclose(G.class_probs.double(), freq)
    y = sample_labels(G, 2000, torch.Generator().manual_seed(0))
    assert abs(float((y == 0).float().mean()) - float(freq[0])) < 0.03
    r = run_cli("score", str(whole), "--metrics", "fid,intra_fid", "--json")  # 1,797 samples: ~180 a class
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["intra_fid_classes"] == 10 and math.isfinite(s["intra_fid"]) and s["intra_fid"] > 0
    r = run_cli("score", str(whole), "--metrics", "intra_fid", "--samples", "400", "--json")  # 40 < 65: none
    assert r.returncode == 0 and json.loads(r.stdout)["intra_fid_classes"] == 0, r.stderr


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "ring8", "--conditional"], "a conditional GAN needs class labels; ring8 has none"),
    (["--dataset", "digits", "--loss", "began", "--conditional"], "needs a logit discriminator for its projection"),
    (["--dataset", "digits", "--conditional", "--g-norm", "virtual"], "g_norm virtual replaces them"),
    (["--dataset", "digits", "--conditional", "--unrolled", "2"], "does not combine with unrolled GAN"),
    (["--dataset", "digits", "--conditional", "--compile"], "does not combine with --compile"),
    (["--dataset", "ring8", "--metrics", "intra_fid"], "metric intra_fid needs a labelled dataset"),
])
def test_conditional_refusals(tmp_path, args, needle):
    before = tree_snapshot(tmp_path)
    r = run_cli("train", "--steps", "4", "--out", str(tmp_path / "r"), *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_snapshot(tmp_path) == before


def _logit_losses() -> list[str]:
    import losses

    return [n for n in losses.names() if losses.loss_class(n).d_head == "logit"]


@pytest.mark.parametrize("loss", _logit_losses())
def test_every_logit_loss_trains_conditionally_with_penalties_and_feature_matching(tmp_path, loss):
    for dataset in ("digits", "stacked-digits"):
        r = run_cli("train", "--dataset", dataset, "--loss", loss, "--conditional", "--steps", "6", "--batch-size", "16",
                    "--log-every", "3", "--ckpt-every", "6", "--reg", "r1=1", "--reg", "fm=0.5", "--d-minibatch", "stddev",
                    "--out", str(tmp_path / dataset), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "ok"


def test_a_conditional_step_generates_its_fakes_for_the_real_batchs_labels():
    from bench.train import Trainee

    cfg = TrainConfig(dataset="digits", arch="infogan", loss="ns", conditional=True, batch_size=8, z_dim=16).resolved()
    t = Trainee.build(cfg, torch.device("cpu"))
    torch.manual_seed(5)
    real = t.real_batch(8)()
    torch.manual_seed(5)
    x, y = t.data.sample_labelled(8)
    assert torch.equal(real, x) and torch.equal(t.G.labels.y, y)
    t.step(1)  # a whole step runs with the labels of its own batches
    assert t.G.labels.y.shape == (8,)


def test_mnist_and_cifar_labels_are_read_from_their_files(tmp_path):
    import pickle

    import numpy as np

    from bench.errors import DataNotFound
    from tests.test_datasets import write_idx

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28)))
    ds = datasets.get("mnist", root=tmp_path)
    assert ds.classes == 10
    with pytest.raises(DataNotFound, match="class labels need train-labels-idx1-ubyte"):
        ds.labels
    y = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(np.array([2049, 6], dtype=">u4").tobytes() + y.tobytes())
    assert datasets.get("mnist", root=tmp_path).labels.tolist() == y.tolist()
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(np.array([2049, 7], dtype=">u4").tobytes() + y.tobytes())
    with pytest.raises(Exception, match="not an idx1-ubyte label file"):
        datasets.get("mnist", root=tmp_path).labels
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)]):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        (d / name).write_bytes(pickle.dumps({b"data": data, b"labels": [i, 9 - i]}, protocol=2))
    c = datasets.get("cifar10", root=tmp_path)
    assert c.labels.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
