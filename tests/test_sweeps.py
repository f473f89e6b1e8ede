"""Search spaces as data, and the deterministic expansion of a study into trials."""
from __future__ import annotations

import math

import pytest

import losses
import sweeps
from bench.errors import UsageError
from bench.study import Cell, Study, derive_seed, make_trial, sample_configs


def _study(**kw) -> Study:
    kw.setdefault("space", sweeps.load("lucic-wide").to_dict())
    return Study(name="t", datasets=["ring8"], losses=["ns", "wgan", "began"], **kw)


def test_builtin_spaces_reproduce_lucic_ranges():
    wide, narrow = sweeps.load("lucic-wide"), sweeps.load("lucic-narrow")
    assert (wide.params["lr"].kind, wide.params["lr"].low, wide.params["lr"].high) == ("loguniform", 1e-5, 1e-2)
    assert (wide.params["beta1"].low, wide.params["beta1"].high) == (0.0, 1.0)
    assert wide.params["n_disc"].values == (1, 5)
    assert set(wide.params["d_norm"].values) == {"batch", "none"}
    assert (wide.loss_params["wgan"]["clip"].low, wide.loss_params["wgan"]["clip"].high) == (1e-3, 1.0)
    assert (wide.loss_params["wgan-gp"]["gp_lambda"].low, wide.loss_params["wgan-gp"]["gp_lambda"].high) == (0.1, 100.0)
    assert (wide.loss_params["began"]["lambda_k"].low, wide.loss_params["began"]["lambda_k"].high) == (1e-4, 1e-2)
    assert (narrow.params["lr"].low, narrow.params["lr"].high) == (1e-4, 1e-3)
    assert narrow.params["beta1"].values == (0.5,) and narrow.params["n_disc"].values == (1,)
    assert narrow.loss_params["began"]["lambda_k"].values == (1e-3,)
    assert (narrow.loss_params["began"]["gamma"].low, narrow.loss_params["began"]["gamma"].high) == (0.6, 0.9)
    # Per-loss parameters apply only to their loss.
    assert "loss.clip" in wide.for_loss("wgan") and "loss.clip" not in wide.for_loss("ns")


def test_samples_lie_in_their_ranges_and_are_deterministic():
    study = _study()
    cell = Cell("ring8", "wgan", "mlp")
    a = sample_configs(study, cell, 50)
    assert a == sample_configs(study, cell, 50)  # same study seed and cell -> same configs
    assert a[0] == {}  # config 0: published defaults
    assert sample_configs(study, cell, 10) == a[:10]  # a prefix does not depend on the budget
    for hp in a[1:]:
        assert 1e-5 <= hp["lr"] <= 1e-2 and 0 <= hp["beta1"] <= 1 and hp["n_disc"] in (1, 5)
        assert 1e-3 <= hp["loss.clip"] <= 1
    # log-uniform: about half the samples below the geometric midpoint
    lows = sum(hp["lr"] < math.sqrt(1e-5 * 1e-2) for hp in a[1:])
    assert 10 < lows < 40
    other = sample_configs(_study(seed=1), cell, 50)
    assert other != a


def test_config_zero_is_published_defaults_and_seeds_are_derived():
    study = _study()
    for loss in ("ns", "wgan", "began"):
        t = make_trial(study, Cell("ring8", loss, "mlp"), "search", 0, 0, {}, 100)
        pub = losses.loss_class(loss).published
        assert (t.config["lr"], t.config["beta1"], t.config["n_disc"], t.config["d_norm"]) == \
            (pub["lr"], pub["beta1"], pub["n_disc"], pub["d_norm"])
        assert t.config["loss_params"] == losses.get(loss).hp
        assert t.config["seed"] == derive_seed(0, f"ring8/{loss}/mlp", "search", 0, 0, "train")
    a = make_trial(study, Cell("ring8", "ns", "mlp"), "seeds", 3, 0, {}, 100)
    b = make_trial(study, Cell("ring8", "ns", "mlp"), "seeds", 3, 1, {}, 100)
    assert a.config["seed"] != b.config["seed"] and a.trial_id != b.trial_id


def test_fixed_entries_hold_for_config_zero_too():
    """config 0 is the published defaults of what is searched; a fixed entry is not searched."""
    study = _study(space=sweeps.load("mixtures-2d").to_dict())
    for loss in ("ns", "wgan"):
        cell = Cell("ring8", loss, "mlp")
        configs = sample_configs(study, cell, 5)
        assert configs[0] == {"beta1": 0.5, "batch_size": 256, "d_norm": "none"}
        t = make_trial(study, cell, "search", 0, 0, configs[0], 100)
        pub = losses.loss_class(loss).published
        assert (t.config["lr"], t.config["n_disc"]) == (pub["lr"], pub["n_disc"])  # searched / not in the space
        assert (t.config["beta1"], t.config["batch_size"], t.config["d_norm"]) == (0.5, 256, "none")
        for hp in configs[1:]:
            assert 2e-4 <= hp["lr"] <= 3e-3 and hp["batch_size"] == 256 and hp["d_norm"] == "none"


def test_default_space_by_data_kind_in_a_fresh_interpreter():
    """2-D data gets mixtures-2d, images lucic-wide, a mix neither; in a fresh interpreter, where
    nothing but bench.study has been imported (the dataset registry must fill itself)."""
    import subprocess
    import sys

    code = ("from bench.study import default_space\n"
            "print(default_space(['ring8', 'grid25']), default_space(['digits', 'mnist']))\n"
            "try:\n    default_space(['ring8', 'digits'])\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == "mixtures-2d lucic-wide"
    assert second == ("UsageError these datasets have different default search spaces (ring8: mixtures-2d, "
                      "digits: lucic-wide); give --space")


@pytest.mark.parametrize("text,needle", [
    ("[params]\nlr = { dist = 'loguniform', low = 0.0, high = 1e-2 }", "loguniform needs low > 0"),
    ("[params]\nlr = { dist = 'uniform', low = 1.0, high = 0.5 }", "must be below high"),
    ("[params]\nmomentum = { dist = 'uniform', low = 0.0, high = 1.0 }", "params.momentum is not searchable"),
    ("[params]\nlr = { dist = 'gauss', low = 0.0, high = 1.0 }", "dist one of"),
    ("[params]\nn_disc = { dist = 'choice', values = [] }", "non-empty"),
    ("[params]\nn_disc = { dist = 'uniform', low = 1, high = 5 }", "integer parameter"),
    ("[loss.wgan]\ngp_lambda = { dist = 'fixed', value = 1.0 }", "loss.wgan.gp_lambda is not a parameter of wgan"),
    ("[loss.nope]\nx = { dist = 'fixed', value = 1.0 }", "unknown loss 'nope'"),
    ("colour = 'red'", "unknown key 'colour'"),
    ("[params\nlr = 1", "malformed space file"),
    ("extends = 'lucic-huge'", "not a built-in space"),
])
def test_bad_space_files_name_the_bad_key(tmp_path, text, needle):
    f = tmp_path / "space.toml"
    f.write_text(text)
    with pytest.raises(UsageError, match=needle.replace("[", r"\[")):
        sweeps.load(str(f))


def test_user_file_extends_and_overrides(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text("extends = 'lucic-wide'\n[params]\nlr = { dist = 'fixed', value = 3e-4 }\n"
                 "r1_gamma = { dist = 'loguniform', low = 0.1, high = 10.0 }\n")
    sp = sweeps.load(str(f))
    assert sp.params["lr"].values == (3e-4,) and "r1_gamma" in sp.params and "beta1" in sp.params
    y = tmp_path / "mine.yaml"
    y.write_text("params:\n  lr: {dist: loguniform, low: 1.0e-4, high: 1.0e-3}\n")
    assert sweeps.load(str(y)).params["lr"].low == 1e-4
    with pytest.raises(UsageError, match="unknown space 'nope'"):
        sweeps.load("nope")
