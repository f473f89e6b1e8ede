"""The study driver's pure parts, without Ray: ledger rows, the search strategies' batches, the seeds
phase's choice and the status table. (The end-to-end path through Ray is tests/test_study.py.)"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from bench import run_study
from bench.results import COLUMNS, Ledger
from bench.runner import PROPOSED, make_row
from bench.study_dir import TRIALS
from bench.study import SEARCHES, Study, cells


def _study(**kw) -> Study:
    import sweeps

    return Study(**{"name": "u", "datasets": ["ring8"], "losses": ["ns", "hinge"], "budget": 3, "seeds": 2,
                    "space": sweeps.load("mixtures-2d").to_dict(), "steps": 60, "eval_every": 30, "metrics": ["w1"],
                    "eval_samples": 200, **kw})


def _result(spec, w1_best: float, status: str = "ok", step: int = 60) -> dict:
    """What a trial's last Tune report holds (bench.runner.TuneReporter.metrics)."""
    return {"step": step, "status": status, "primary_metric": "w1", "primary": w1_best + 0.1, "primary_best": w1_best,
            "w1": w1_best + 0.1, "fid_best": math.nan, "best_step": 30, "checkpoint": f"{TRIALS}/{spec.trial_id}/c.pt",
            "checkpoint_best": "checkpoints/step_00000030.pt", "node": "n", "started_at": 1.0, "ended_at": 2.0,
            "wall_s": 1.0, "extractor": "identity", "n_samples": 200}


def test_every_search_name_has_a_strategy():
    assert set(run_study.SEARCH) == set(SEARCHES)


def test_a_row_is_the_spec_and_its_last_report():
    study = _study()
    info = run_study.data_info(study)
    spec = run_study.search_trials(study, info)[1]
    row = make_row("u", spec, _result(spec, 0.3), "ok")
    assert set(COLUMNS) <= set(row)
    assert (row["trial_id"], row["config_id"], row["phase"], row["seed"]) == (spec.trial_id, 1, "search", spec.config["seed"])
    assert (row["primary_best"], row["checkpoint_best"]) == (0.3, f"{TRIALS}/{spec.trial_id}/checkpoints/step_00000030.pt")
    assert not row["early_stopped"] and all(row[f"hp_{k}"] == v for k, v in spec.hp.items())
    cut = make_row("u", spec, _result(spec, 0.3, step=30), "ok")  # ASHA stopped it halfway: early_stopped
    assert cut["early_stopped"] and not make_row("u", spec, _result(spec, 0.3, step=30), "failed", "boom")["early_stopped"]
    empty = make_row("u", spec, {}, "failed", "worker died")  # a trial that never reported is still a row
    assert empty["error"] == "worker died" and math.isnan(empty["primary_best"]) and empty["checkpoint_best"] is None


def test_random_search_yields_what_the_ledger_lacks_and_seeds_take_each_cells_best(tmp_path):
    study = _study()
    info = run_study.data_info(study)
    ledger = Ledger(tmp_path)
    (batch,) = run_study.random_search(study, info, ledger)
    assert len(batch.specs) == 2 * 3 and sorted({s.config_id for s in batch.specs}) == [0, 1, 2]
    best = {"ns": 2, "hinge": 0}
    for i, spec in enumerate(batch.specs[:-1]):  # the last one (hinge config 2) is not recorded yet
        score = 0.1 if spec.config_id == best[spec.loss] else 0.5 + i / 10
        ledger.add(make_row("u", spec, _result(spec, score), "ok"))
    (again,) = run_study.random_search(study, info, ledger)
    assert [s.trial_id for s in again.specs] == [batch.specs[-1].trial_id]  # resume: exactly the missing one
    # seeds: only a cell whose search phase is complete, its best config by the primary metric, new seeds
    seeds = run_study.seed_trials(study, info, ledger.frame())
    assert {(s.loss, s.config_id) for s in seeds} == {("ns", 2)} and len(seeds) == 2
    searched = next(s for s in batch.specs if (s.loss, s.config_id) == ("ns", 2))
    assert all(s.config["lr"] == searched.config["lr"] and s.config["seed"] != searched.config["seed"] for s in seeds)
    ledger.add(make_row("u", batch.specs[-1], _result(batch.specs[-1], math.nan, "diverged"), "diverged"))
    seeds = run_study.seed_trials(study, info, ledger.frame())
    assert {(s.loss, s.config_id) for s in seeds} == {("ns", 2), ("hinge", 0)}  # a diverged config is never best


def test_best_config_ties_take_the_lowest_id_and_nothing_scored_is_none():
    rows = pd.DataFrame([{"config_id": 2, "primary_best": 0.2, "primary_metric": "w1"},
                         {"config_id": 1, "primary_best": 0.2, "primary_metric": "w1"},
                         {"config_id": 0, "primary_best": 0.9, "primary_metric": "w1"}])
    assert run_study.best_config(rows) == 1
    assert run_study.best_config(rows.assign(primary_best=math.nan)) is None


def test_tpe_search_starts_with_every_cells_published_config_then_proposes_the_rest(tmp_path):
    study = _study(search="tpe", losses=["wgan"])
    info = run_study.data_info(study)
    ledger = Ledger(tmp_path)
    batches = run_study.tpe_search(study, info, ledger)
    first = next(batches)
    assert [s.config_id for s in first.specs] == [0] and first.searcher is None
    ledger.add(make_row("u", first.specs[0], _result(first.specs[0], 0.4), "ok"))
    proposal = next(batches)  # computed after config 0 is recorded: it sees the ledger as it is then
    assert proposal.num_samples == 2 and proposal.searcher is not None and not proposal.specs
    assert proposal.proposal["cell"] == ["ring8", "wgan", "mlp", "none"] and proposal.proposal["steps"] == 60
    with pytest.raises(StopIteration):
        next(batches)
    from bench.runner import spec_of

    spec = spec_of({"tpe": proposal.proposal, "lr": 1e-4, "beta1": 0.5, "loss__clip": 0.05})
    assert spec.config_id == PROPOSED and spec.trial_id.startswith("ring8-wgan-mlp-search-t")
    assert spec.config["lr"] == 1e-4 and spec.config["loss_params"]["clip"] == 0.05


def test_status_table_counts_each_cell_and_phase(tmp_path):
    study = _study()
    info = run_study.data_info(study)
    ledger = Ledger(tmp_path)
    for spec in run_study.search_trials(study, info):
        if spec.loss == "ns":
            status = "diverged" if spec.config_id == 2 else "ok"
            ledger.add(make_row("u", spec, _result(spec, 0.2 + spec.config_id), status))
    st = run_study.cell_status(study, ledger.frame())
    assert [(r.cell, r.phase, r.done, r.expected) for r in st.itertuples()] == [
        (c.key, p, 3 if c.loss == "ns" and p == "search" else 0, 3 if p == "search" else 2)
        for c in cells(study) for p in ("search", "seeds")]
    ns = st[(st["cell"] == "ring8/ns/mlp") & (st["phase"] == "search")].iloc[0]
    assert (ns["ok"], ns["diverged"], ns["metric"], ns["best"]) == (2, 1, "w1", 0.2)


def test_tpe_batches_are_bounded_by_tuner_trials_and_warm_started_each_time(tmp_path, monkeypatch):
    """A cell's TPE proposals come in batches of at most TUNER_TRIALS (one Tuner each), each batch's
    searcher built from the ledger as it is then (the same warm start as a resume)."""
    from bench import runner

    monkeypatch.setattr(runner, "TUNER_TRIALS", 2)
    study = _study(search="tpe", losses=["wgan"], budget=6)
    info = run_study.data_info(study)
    ledger = Ledger(tmp_path)
    batches = run_study.tpe_search(study, info, ledger)
    first = next(batches)
    ledger.add(make_row("u", first.specs[0], _result(first.specs[0], 0.4), "ok"))
    sizes = []
    for batch in batches:
        sizes.append(batch.num_samples)
        for _ in range(batch.num_samples):  # what the driver records for the batch's proposals
            spec = runner.spec_of({"tpe": batch.proposal, "lr": 1e-3, "beta1": 0.5, "batch_size": 256, "d_norm": "none",
                                   "loss__clip": 0.05})
            spec.config_id = ledger.next_config_id(spec.cell)
            spec.trial_id = spec.trial_id.replace("-t", f"-x{spec.config_id}-")
            ledger.add(make_row("u", spec, _result(spec, 0.3), "ok"))
    assert sizes == [2, 2, 1] and len(ledger) == 6


def test_a_long_list_of_trials_runs_as_tuners_of_tuner_trials(monkeypatch):
    """5 trials with TUNER_TRIALS = 2: three Tuners of 2, 2 and 1, in order (the Tuners themselves run
    one after another on one Ray as the TPE batches of tests/test_study.py do)."""
    from bench import runner

    monkeypatch.setattr(runner, "TUNER_TRIALS", 2)
    fitted: list[list[str]] = []
    monkeypatch.setattr(runner, "_fit", lambda driver, trials: fitted.append([s.trial_id for s in trials.specs]))
    study = _study()
    specs = run_study.search_trials(study, run_study.data_info(study))[:5]
    runner.run_trials(None, runner.Trials(specs, "asha"))
    assert fitted == [[s.trial_id for s in specs[i:i + 2]] for i in (0, 2, 4)]
