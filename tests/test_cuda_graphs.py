"""``bench train --cuda-graphs`` on a real GPU (skipped without one; CI has none).

Every loss, a penalty, instance noise on its schedule, R1, spectral norm, BEGAN's k_t: the graphed run
follows the eager run from the same seed (same RNG stream, same kernels; GPU arithmetic is not
bit-reproducible, so the comparison is of the first logged window, before rounding differences
compound), and a graphed run resumes from its checkpoint. Measured speed: benchmarks/overhead.py
--cuda-graphs (never timed here).
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from bench.config import TrainConfig
from bench.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CASES = [dict(loss=name) for name in ("ns", "mm", "ls", "wgan", "wgan-gp", "dragan", "began", "hinge", "rsgan", "ragan")]
CASES += [dict(loss="ns", noise_std=0.1, noise_anneal_steps=15), dict(loss="ns", r1_gamma=1.0),
          dict(loss="ns", d_norm="spectral"), dict(loss="began", n_disc=2, precision="fp32")]


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in CASES])
def test_graphed_step_follows_the_eager_step_and_resumes(tmp_path, case):
    cfg = {**dict(dataset="digits", arch="infogan", steps=30, log_every=10, ckpt_every=15, device="cuda",
                  precision="bf16", seed=1), **case}
    eager = train(TrainConfig(**cfg), tmp_path / "eager")
    graphed = train(TrainConfig(**cfg, cuda_graphs=True), tmp_path / "graphed")
    assert eager.status == graphed.status == "ok"
    e, g = _rows(tmp_path / "eager"), _rows(tmp_path / "graphed")
    keys = [k for k in e[0] if k not in ("step", "steps_per_s", "wall_s")]
    assert all(math.isfinite(r[k]) for r in g for k in keys)
    for k in keys:  # the first window: 10 steps of the same batches, z and penalties
        assert g[0][k] == pytest.approx(e[0][k], rel=2e-2, abs=2e-3), k
    part = tmp_path / "resumed"
    train(TrainConfig(**{**cfg, "steps": 15}, cuda_graphs=True), part)
    resumed = train(TrainConfig(**cfg, cuda_graphs=True), part)
    assert resumed.status == "ok" and resumed.step == 30
    assert [r["step"] for r in _rows(part)] == [10, 15, 20, 30]


def test_graphed_run_scores_its_checkpoints(tmp_path):
    r = train(TrainConfig(dataset="digits", arch="infogan", steps=20, log_every=10, ckpt_every=10, device="cuda",
                          metrics=["default"], cuda_graphs=True), tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    assert r.status == "ok" and [x["step"] for x in rows] == [10, 20] and all(math.isfinite(x["fid"]) for x in rows)
