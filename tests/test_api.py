"""The Python API (bench.api): the CLI's commands as functions with the CLI's defaults, in process."""
from __future__ import annotations

import json

import pytest

from bench import api
from bench.errors import UsageError
from tests.conftest import run_bench, run_cli

QUICK = dict(steps=60, eval_every=30, samples=500)


def test_options_are_the_parsers_defaults():
    """One defaults table: what the API fills in is what argparse would (read from the same parser)."""
    from bench.cli import build_parser

    for command, argv in (("run", ["run", "--budget", "1", "--dataset", "ring8"]), ("train", ["train", "--out", "x"]),
                          ("score", ["score", "x"]), ("report", ["report", "x"])):
        parsed = vars(build_parser().parse_args(argv))
        opts = api.options(command)
        assert opts and all(parsed[k] == v for k, v in opts.items() if k not in ("budget", "dataset", "out", "target", "inputs"))
    with pytest.raises(TypeError, match="unknown option.*budgt"):
        api.run_study(dataset="ring8", budgt=3)
    with pytest.raises(TypeError, match="needs budget"):
        api.run_study(dataset="ring8")
    # a repeatable flag takes a list, each item through the flag's type as argparse does
    args = api._args("train", {"out": "x", "reg": ["r1=0.5", "noise=0.1"], "loss_param": ["clip=0.1"]})
    assert args.reg == [("r1", 0.5), ("noise", 0.1)] and args.loss_param == [("clip", 0.1)]
    with pytest.raises(UsageError, match="--reg: invalid value 'r1'"):
        api._args("train", {"out": "x", "reg": ["r1"]})


def test_bad_input_raises_the_clis_message_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UsageError) as e:
        api.train(dataset="ring8", loss="nope", out=out)
    cli = run_cli("train", "--dataset", "ring8", "--loss", "nope", "--out", out)
    assert cli.returncode == 2 and cli.stderr.strip() == f"bench train: error: {e.value}"
    with pytest.raises(UsageError, match="unknown dataset 'ring9'"):
        api.run_study(dataset="ring9", budget=2, storage=tmp_path / "st")
    with pytest.raises(UsageError, match="--search: invalid choice 'grid'"):  # what argparse checks, checked too
        api.run_study(dataset="ring8", budget=2, search="grid", storage=tmp_path / "st")
    with pytest.raises(UsageError, match="--budget: invalid value 'x'"):
        api.run_study(dataset="ring8", budget="x", storage=tmp_path / "st")
    with pytest.raises(UsageError, match="no study results"):
        api.results(tmp_path / "nowhere")
    assert not out.exists() and not (tmp_path / "st").exists()


def test_a_study_its_results_report_and_scores_from_python(tmp_path):
    """run_study -> results -> report -> score in one process, each equal to the CLI's on the same files."""
    df = api.run_study(dataset="ring8", losses=["ns", "hinge"], budget=2, seeds=1, storage=tmp_path, name="s", **QUICK)
    study = tmp_path / "s"
    assert df.attrs["study"] == str(study)
    assert len(df) == 2 * 2 + 2 * 1 and (df["status"] == "ok").all() and (df["primary_metric"] == "w1").all()
    again = api.results(study)
    assert again["trial_id"].tolist() == df["trial_id"].tolist()
    assert len(api.resume_study(study)) == len(df)  # nothing left to run: the same table
    st = api.status(study)
    assert len(st) == 4 and (st["done"] == st["expected"]).all() and (st["metric"] == "w1").all()

    doc = api.report(study, resamples=200, no_samples=True)
    assert doc["out"] == str(study / "report") and (study / "report" / "index.html").is_file()
    cli = run_bench("report", study, "--resamples", "200", "--no-samples", "--out", tmp_path / "cli-report", "--json")
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert {k: v for k, v in doc.items() if k != "out"} == json.loads(cli.stdout)  # same analysis, same defaults

    run = study / "trials" / df["trial_id"].iloc[0]
    scores = api.score(run, metrics=["w1", "modes"], samples=500)
    cli = run_bench("score", run, "--metrics", "w1,modes", "--samples", "500", "--json")
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert scores == json.loads(cli.stdout)
    assert scores["primary"]["metric"] == "w1" and 0 <= scores["modes"] <= 8
    tb = api.tensorboard(study)
    assert tb["out"] == str(study / "tensorboard") and tb["runs"] == len(df) and tb["cells"] == 2
