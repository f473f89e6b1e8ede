"""Training health (bench.health): the per-step fields against brute force, the window and run
summaries, mode hopping, and what a real run records (metrics.jsonl rows, results columns)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from bench import health
from bench.config import TrainConfig
from bench.metrics.modes import mixture_modes
from bench.train import train


def test_pairwise_auc_is_the_roc_auc_ties_included():
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 6, (64, 1), generator=g).float()  # few values: many ties
    fake = torch.randint(0, 6, (48, 1), generator=g).float() - 1
    labels = [1] * 64 + [0] * 48
    scores = torch.cat([real, fake]).flatten().tolist()
    assert float(health.pairwise_auc(real, fake)) == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    # BEGAN's D outputs a reconstruction error: real samples are the ones with the *lower* output
    assert float(health.pairwise_auc(-real, -fake, real_is_high=False)) == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert float(health.pairwise_auc(torch.ones(3), torch.ones(5))) == 0.5
    assert float(health.pairwise_auc(torch.ones(3), torch.zeros(5))) == 1.0


def test_grad_norm_is_the_norm_of_all_gradients_concatenated():
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    net[2].bias.requires_grad_(False)  # a parameter without a gradient is skipped
    net(torch.randn(7, 3)).pow(2).sum().backward()
    flat = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
    assert float(health.grad_norm(net.parameters())) == pytest.approx(float(flat.norm()), rel=1e-6)
    assert float(health.grad_norm([])) == 0.0


def test_window_means_minimum_and_saturated_fraction():
    rows = torch.tensor([
        # d_loss, g_loss, g_grad_norm, d_grad_norm, d_real, d_fake, d_auc
        [1.0, 2.0, 0.5, 1.0, 0.8, 0.2, 0.999],
        [3.0, 4.0, 0.1, 3.0, 0.6, 0.4, 0.70],
        [2.0, 0.0, 0.3, 2.0, 0.7, 0.3, 0.99],
        [2.0, 2.0, 0.3, 2.0, 0.7, 0.3, 0.50],
    ], dtype=torch.float64)
    w = health.window(list(rows))
    assert w == pytest.approx({"d_loss": 2.0, "g_loss": 2.0, "g_grad_norm": 0.3, "d_grad_norm": 2.0, "d_real": 0.7,
                               "d_fake": 0.3, "d_auc": (0.999 + 0.7 + 0.99 + 0.5) / 4, "g_grad_norm_min": 0.1,
                               "d_saturated": 0.5, "health_steps": 4})  # SATURATED = 0.99 counts
    # Unmeasured steps give their losses only: they count in the loss means, not in the health fields
    mixed = [rows[0], torch.tensor([5.0, 6.0], dtype=torch.float64), rows[1]]
    w = health.window(mixed)
    assert w == pytest.approx({"d_loss": 3.0, "g_loss": 4.0, "g_grad_norm": 0.3, "d_grad_norm": 2.0, "d_real": 0.7,
                               "d_fake": 0.3, "d_auc": (0.999 + 0.7) / 2, "g_grad_norm_min": 0.1,
                               "d_saturated": 0.5, "health_steps": 2})
    assert health.window([torch.tensor([1.0, 3.0])]) == {"d_loss": 1.0, "g_loss": 3.0}


def test_summary_weights_windows_by_their_steps_and_skips_rows_without_health():
    rows = [{"step": 50, "d_loss": 1.0, "g_loss": 1.0},  # a run from before health was recorded
            {"step": 100, "d_auc": 0.9, "g_grad_norm": 2.0, "g_grad_norm_min": 1.0, "d_saturated": 0.0},
            {"step": 400, "d_auc": 1.0, "g_grad_norm": 0.5, "g_grad_norm_min": 0.25, "d_saturated": 1.0},
            {"step": 500, "d_auc": "nan", "g_grad_norm": "nan"}]  # json_safe's NaN: skipped
    s = health.Summary(rows).columns()
    # steps 50..100 unsaturated, 100..400 saturated: 300 of 350 steps
    assert s == pytest.approx({"g_grad_norm": 0.5, "g_grad_norm_min": 0.25, "d_auc": 1.0, "d_saturated": 300 / 350})
    # sampled windows count their measured steps: 5 unsaturated, then 30 saturated
    sampled = [{**rows[1], "health_steps": 5}, {**rows[2], "health_steps": 30}]
    assert health.Summary(sampled).columns()["d_saturated"] == pytest.approx(30 / 35)
    assert all(math.isnan(v) for v in health.Summary([rows[0]]).columns().values())


def test_mode_hops_counts_modes_exchanged_not_gained_or_lost():
    m = lambda *modes: float(sum(1 << k for k in modes))  # noqa: E731
    # {0} -> {0,1} gains (0), -> {2,3} loses 0,1 and gains 2,3 (2), -> {3} loses (0), -> {4} swaps (1)
    assert health.mode_hops([m(0), m(0, 1), None, m(2, 3), float("nan"), m(3), m(4)]) == 3
    assert math.isnan(health.mode_hops([m(0)])) and math.isnan(health.mode_hops([None, None]))


def test_modes_mask_names_the_covered_modes():
    centres = torch.tensor([[float(k), 0.0] for k in range(30)])
    points = torch.cat([centres[[0, 3]].repeat(50, 1), torch.tensor([[100.0, 100.0]])])
    out = mixture_modes(points, centres, 0.01)
    assert out["modes"] == 2 and out["modes_mask"] == (1 << 0) | (1 << 3)
    assert mixture_modes(torch.zeros(10, 2), torch.zeros(53, 2) + torch.arange(53.0)[:, None], 0.01)["modes_mask"] is None


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_records_health_and_a_discriminator_that_wins_shows_saturated(tmp_path):
    """Every log row carries the fields; on ring8 the ns discriminator trained 5 steps per G step
    separates every batch within 400 steps (d_auc -> 1, d_saturated -> 1), while with 1 D step per G
    step it never does in 300 (measured: final d_saturated 0.95 against 0.0)."""
    five = TrainConfig(dataset="ring8", loss="ns", arch="mlp", steps=400, log_every=100, ckpt_every=400, n_disc=5)
    one = TrainConfig(**{**five.to_dict(), "steps": 300, "n_disc": 1})
    train(five, tmp_path / "five"), train(one, tmp_path / "one")
    for out in ("five", "one"):
        for r in _rows(tmp_path / out):
            assert set(health.FIELDS) | {"g_grad_norm_min", "d_saturated"} <= set(r)
            assert all(math.isfinite(r[k]) for k in health.FIELDS)
            assert 0 <= r["d_auc"] <= 1 and 0 <= r["d_saturated"] <= 1 and 0 < r["g_grad_norm_min"] <= r["g_grad_norm"]
    five_s, one_s = health.Summary(_rows(tmp_path / "five")).columns(), health.Summary(_rows(tmp_path / "one")).columns()
    assert _rows(tmp_path / "five")[-1]["d_saturated"] >= 0.8 and five_s["d_auc"] >= 0.99
    assert one_s["d_saturated"] == 0.0 and one_s["d_auc"] < 0.95


def test_health_sampled_every_k_steps_is_the_same_run_measured_at_those_steps(tmp_path):
    """health_every only chooses which steps are measured: the training, its losses and its
    checkpoint are bit-for-bit those of a run measured at every step, and a measured step's fields
    equal the every-step run's at that step."""
    every = TrainConfig(dataset="ring8", loss="ns", arch="mlp", steps=30, log_every=1, ckpt_every=30, health_every=1)
    sampled = TrainConfig(**{**every.to_dict(), "health_every": 7})
    train(every, tmp_path / "every"), train(sampled, tmp_path / "sampled")
    a, b = _rows(tmp_path / "every"), _rows(tmp_path / "sampled")
    assert [(r["d_loss"], r["g_loss"]) for r in a] == [(r["d_loss"], r["g_loss"]) for r in b]
    for ra, rb in zip(a, b):
        if (rb["step"] - 1) % 7 == 0:  # step s (0-based) is measured when s % 7 == 0
            assert rb["health_steps"] == 1 and all(rb[k] == ra[k] for k in health.FIELDS + ("d_saturated",))
        else:
            assert not set(health.FIELDS[2:]) & set(rb)
    ga = torch.load(tmp_path / "every/checkpoints/step_00000030.pt", weights_only=True)["G"]
    gb = torch.load(tmp_path / "sampled/checkpoints/step_00000030.pt", weights_only=True)["G"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
