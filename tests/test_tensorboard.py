"""bench tensorboard: a run's and a study's curves as TensorBoard event files, read back with
TensorBoard's own EventAccumulator (the study case is in test_study's small study)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import health
from bench.config import TrainConfig
from bench.tensorboard_export import MARKER, cell_name, scalars
from bench.train import train
from tests.conftest import run_bench, tree_snapshot


def read_events(run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar tag of one TensorBoard run directory: [(step, value, wall_time), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def runs_of(out: Path) -> list[str]:
    """The TensorBoard runs under an export: directories holding event files, as cell/trial_id."""
    return sorted(str(p.parent.relative_to(out)) for p in out.glob("*/*/events.out.tfevents.*"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_scalars_groups_tags_and_keeps_a_diverged_loss():
    metrics = [{"step": 10, "d_loss": 1.5, "g_loss": "nan", "d_auc": 0.75, "d_saturated": 0.0, "health_steps": 1,
                "steps_per_s": 30.0, "wall_s": 2.5, "k_t": 0.1, "diverged_at": 9}]
    scores = [{"step": 10, "checkpoint": "checkpoints/step_00000010.pt", "w1": 0.5, "modes": 3, "modes_mask": 7,
               "primary": {"metric": "w1", "value": 0.5, "lower_is_better": True}, "provenance": {"seed": 0}}]
    got = {tag: (step, value, wall) for tag, step, value, wall in scalars(metrics, scores)}
    assert set(got) == {"train/d_loss", "train/g_loss", "train/k_t", "health/d_auc", "health/d_saturated",
                        "speed/steps_per_s", "scores/w1", "scores/modes", "scores/primary"}
    assert math.isnan(got["train/g_loss"][1]) and got["health/d_auc"] == (10, 0.75, 2.5)
    assert got["scores/primary"] == (10, 0.5, 2.5) and got["scores/modes"][1] == 3.0
    assert cell_name({"dataset": "folder:/data/my faces", "loss": "ns", "arch": "dcgan"}) == "folder-my-faces-ns-dcgan"


def test_a_run_exports_every_logged_and_scored_value(tmp_path):
    cfg = TrainConfig(dataset="ring8", loss="ns", arch="mlp", steps=40, log_every=10, ckpt_every=20,
                      metrics=["default"], eval_samples=200, health_every=1)
    run = tmp_path / "run"
    train(cfg, run)
    r = run_bench("tensorboard", run)
    assert r.returncode == 0, r.stderr
    out = run / "tensorboard"
    assert f"tensorboard --logdir {out}" in r.stdout
    assert runs_of(out) == ["ring8-ns-mlp/run"]
    events = read_events(out / "ring8-ns-mlp" / "run")
    for row in _jsonl(run / "metrics.jsonl"):
        for k in ("d_loss", "g_loss"):
            assert (row["step"], pytest.approx(row[k], rel=1e-6), pytest.approx(row["wall_s"])) in events[f"train/{k}"]
        for k in health.FIELDS[2:] + ("g_grad_norm_min", "d_saturated"):
            assert (row["step"], pytest.approx(row[k], rel=1e-6), pytest.approx(row["wall_s"])) in events[f"health/{k}"]
    scores = _jsonl(run / "scores.jsonl")
    assert [s for s, _, _ in events["scores/primary"]] == [20, 40]
    assert [v for _, v, _ in events["scores/modes"]] == [float(s["modes"]) for s in scores]
    assert [v for _, v, _ in events["scores/w1"]] == pytest.approx([s["w1"] for s in scores], rel=1e-6)
    assert "scores/modes_mask" not in events
    # a second export replaces the first (no temporary directories left beside it)
    first = set(out.glob("*/*/events.out.tfevents.*"))
    r = run_bench("tensorboard", run, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["runs"] == 1
    assert runs_of(out) == ["ring8-ns-mlp/run"] and not first & set(out.glob("*/*/events.out.tfevents.*"))
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert json.loads((out / MARKER).read_text())["runs"] == ["ring8-ns-mlp/run"]


@pytest.mark.parametrize("case, needle", [
    ("missing", "no such study or run directory"),
    ("foreign", "is neither a study directory (study.json) nor a run directory (config.json)"),
    ("occupied", "holds other files and no previous export"),
    ("s3", "reads a local study directory"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case, needle):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("x")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "mine.txt").write_text("keep")
    args = {"missing": [tmp_path / "nope"], "foreign": [tmp_path / "foreign"],
            "occupied": [run, "--out", tmp_path / "occupied"], "s3": ["s3://bucket/study"]}[case]
    before = tree_snapshot(tmp_path)
    r = run_bench("tensorboard", *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert tree_snapshot(tmp_path) == before
