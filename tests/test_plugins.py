"""Plugins (bench.plugins): components from outside the package, through the package's own registries;
and a CLI that starts without torch and ends quietly when its reader leaves."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import losses
import models
from bench import plugins
from bench.data import registry as datasets
from bench.metrics import registry as metrics

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fgan_kl.py"
BENCH = str(Path(sys.executable).parent / "bench")


def bench(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, **kw)


@pytest.fixture(autouse=True)
def _restore_registries():
    """Plugins loaded in this process register for real: take their components out again after each
    test, so that other test files in this worker see only the package's own."""
    before = {k: dict(t) for k, t in plugins._tables().items()}
    loaded, modules = dict(plugins._LOADED), set(sys.modules)
    yield
    for k, t in plugins._tables().items():
        t.clear()
        t.update(before[k])
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    for m in set(sys.modules) - modules:
        if m.startswith("gan_bench_plugin_"):
            del sys.modules[m]


def test_the_parser_is_built_without_torch_or_the_scientific_stack():
    code = ("import sys; from bench.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'optuna', 'ray', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_registries_list_names_without_importing_components():
    code = ("import sys, losses, models; n = losses.names(), models.names(); "
            "print(len(n[0]), len(n[1]), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["11", "4", "False"]


def test_every_builtin_loss_and_arch_loads_and_passes_its_contract():
    for name in losses.names():
        cls = losses.loss_class(name)
        assert cls.name == name and losses.origin(name).startswith("losses.")
    for name in models.names():
        models.check(name, models.builder(name))


def test_a_plugin_loss_is_registered_hashed_and_loaded_once():
    p = plugins.load(str(EXAMPLE))
    assert p.name == "fgan_kl.py" and p.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert plugins.load(str(EXAMPLE)) is p  # idempotent: a second --plugin of the same file is a no-op
    assert "fgan-kl" in losses.names() and {"name": p.name, "sha256": p.sha256} in plugins.records()
    import torch

    loss = losses.get("fgan-kl")
    real, fake = torch.zeros(4), torch.zeros(4)
    # v = 0 everywhere: L_D = -0 + e^-1, L_G = 0 (Nowozin et al. 2016, KL row of Table 6)
    assert loss.d_loss(real, fake).item() == pytest.approx(float(torch.exp(torch.tensor(-1.0))))
    assert loss.g_loss(fake).item() == 0.0


# Each source follows 6 lines that register a good loss first (so the line numbers below are 6 more).
BROKEN = {
    "missing import": ("import losses\nimport no_such_module_here\n", "ModuleNotFoundError at line 8"),
    "syntax": ("x = (\n", "syntax error at line 1"),
    "raises": ("import losses\n\n\nraise RuntimeError('boom')\n", "RuntimeError at line 10: boom"),
    "duplicate": ("import losses\n@losses.register('ns')\nclass X(losses.Loss):\n    pass\n",
                  "loss 'ns' is registered twice"),
    "contract": ("import losses\n@losses.register('half-{n}')\nclass X(losses.Loss):\n    published = {{'lr': 1}}\n",
                 "published must have keys"),
    "no objectives": ("import losses\n@losses.register('empty-{n}')\nclass X(losses.Loss):\n"
                      "    published = {{'lr': 1e-4, 'beta1': 0.5, 'n_disc': 1, 'd_norm': 'none'}}\n",
                      "must define d_loss"),
    "arch contract": ("import models\n@models.register('flat-{n}')\nclass A:\n    def generator(self, z): pass\n",
                      "must define discriminator, encoder, decoder"),
    "dataset contract": ("from bench.data import registry as D\nD.register('img-{n}', 'm:f', kind='images')\n",
                         "image dataset 'img-dataset-contract' must declare its native resolution"),
    "dataset duplicate": ("from bench.data import registry as D\nD.register('ring8', 'm:f', kind='points')\n",
                          "dataset 'ring8' registered twice"),
    "dataset field": ("from bench.data import registry as D\nD.register('good-{n}', 'm:f', kind='points')\n"
                      "D.register('bad-{n}', 'm:f', kind='points', epocs=3)\n", "unknown fields ['epocs']"),
    "metric key clash": ("from bench.metrics import register_metric\nregister_metric('ok-{n}', 'm:f', needs='samples', "
                         "keys=('mine-{n}',))\nregister_metric('fid2-{n}', 'm:f', needs='features', keys=('fid',))\n",
                         "key 'fid' is already produced by metric 'fid'"),
    "metric orientation": ("from bench.metrics import register_metric\nregister_metric('two-{n}', 'm:f', needs='samples', "
                           "keys=('a-{n}',), higher_is_better=('a-{n}',), descriptive=('a-{n}',))\n",
                           "descriptive names keys it does not produce, or higher-better ones"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plugin_is_one_line_and_registers_nothing(tmp_path, case):
    source, expected = BROKEN[case]
    path = tmp_path / f"broken_{case.replace(' ', '_')}.py"
    # a good registration before the failure must be rolled back with the rest
    path.write_text("import losses\n@losses.register('first-{n}')\nclass Ok(losses.Loss):\n"
                    "    published = {{'lr': 1e-4, 'beta1': 0.5, 'n_disc': 1, 'd_norm': 'none'}}\n"
                    "    def d_loss(self, r, f): return r.mean()\n    def g_loss(self, f, r=None): return f.mean()\n"
                    .format(n=case.replace(" ", "-")) + source.format(n=case.replace(" ", "-"))
                    if case not in ("syntax",) else source)
    registered = lambda: (losses.names(), models.names(), datasets.names(), metrics.metric_names())  # noqa: E731
    before = registered()
    with pytest.raises(plugins.PluginError) as e:
        plugins.load(str(path))
    msg = str(e.value)
    assert msg.startswith(f"plugin {path}: ") and expected in msg and "\n" not in msg
    assert registered() == before
    assert not any(m.startswith(f"gan_bench_plugin_{path.stem}") for m in sys.modules)


def test_the_cli_refuses_a_broken_plugin_with_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import losses\n\nraise ValueError('no')\n")
    for args, env in ((["--plugin", bad, "list"], None), (["list", f"--plugin={bad}"], None),
                      (["list"], {plugins.ENV: str(bad)}), (["--plugin", tmp_path / "absent.py", "list"], None),
                      (["--plugin", "no_such.module", "list"], None)):
        r = bench(*args, env=env)
        assert r.returncode == 2 and r.stdout == "", (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("bench: error: plugin "), r.stderr
        assert "Traceback" not in r.stderr


def test_plugins_from_the_flag_the_environment_and_entry_points(tmp_path):
    # an installed package's entry point (a .dist-info on the path is what pip leaves behind)
    pkg = tmp_path / "site" / "mylosses"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(EXAMPLE.read_text().replace('@losses.register("fgan-kl")\n', ""))
    dist = tmp_path / "site" / "mylosses-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylosses\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[gan_bench.losses]\nkl-from-ep = mylosses:FGanKL\n")
    env = {"PYTHONPATH": str(tmp_path / "site")}
    r = bench("list", "losses", env=env)
    assert r.returncode == 0 and "kl-from-ep" in r.stdout and "fgan-kl" not in r.stdout, r.stderr
    r = bench("list", "losses", env={plugins.ENV: str(EXAMPLE)})
    assert r.returncode == 0 and "fgan-kl" in r.stdout
    r = bench("--plugin", EXAMPLE, "list", "plugins")
    assert r.returncode == 0 and "fgan_kl.py sha256 " + hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()[:12] in r.stdout


def test_a_study_keeps_its_plugin_source_and_a_worker_loads_it_without_the_file(tmp_path):
    # what a Ray worker on another node does: import the plugin from the study's stored source
    src = tmp_path / "gone.py"
    src.write_text(EXAMPLE.read_text().replace('"fgan-kl"', '"kl-travelled"'))
    code = textwrap.dedent(f"""
        import json, sys
        from bench import plugins
        p = plugins.load({str(src)!r})
        print(json.dumps(plugins.travel()))
    """)
    travelled = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    src.unlink()  # the worker's node never had the file
    code = textwrap.dedent(f"""
        import json, losses
        from bench import plugins
        plugins.ensure(json.loads({travelled!r}))
        plugins.ensure(json.loads({travelled!r}))  # once per process
        print(losses.loss_class("kl-travelled").published["lr"], plugins.loaded()[0].path)
    """)
    env = {**os.environ, "GAN_BENCH_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    sha = json.loads(travelled)[0]["sha256"]
    assert out == ["0.0002", str(tmp_path / "cache" / "plugins" / sha / "gone.py")]
    # the same name with other code is refused: a study resumes only under the code it started with
    (tmp_path / "gone.py").write_text("# other code\n")
    code = textwrap.dedent(f"""
        import json
        from bench import plugins
        plugins.load({str(tmp_path / 'gone.py')!r})
        plugins.ensure(json.loads({travelled!r}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "its code changed since the study started" in r.stderr


def test_bench_train_records_the_plugin_and_refuses_to_resume_under_other_code(tmp_path):
    plugin = tmp_path / "kl.py"
    plugin.write_text(EXAMPLE.read_text())
    out = tmp_path / "run"
    args = ["--plugin", plugin, "train", "--loss", "fgan-kl", "--steps", "20", "--batch-size", "64", "--out", out]
    r = bench(*args)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["plugins"] == [{"name": "kl.py", "sha256": hashlib.sha256(plugin.read_bytes()).hexdigest()}]
    plugin.write_text(EXAMPLE.read_text() + "# edited\n")
    before = sorted(p.name for p in out.rglob("*"))
    r = bench(*args[:-2], "--steps", "40", "--out", out)
    assert r.returncode == 2 and "holds another run (differs in plugins" in r.stderr
    assert sorted(p.name for p in out.rglob("*")) == before


def test_a_printing_command_ends_quietly_when_its_reader_leaves():
    # `bench list | head -c 0`: the pipe is closed before bench writes
    p = subprocess.Popen([BENCH, "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0 and err == "", err


DATASET_PLUGIN, METRIC_PLUGIN = ROOT / "examples" / "circle16.py", ROOT / "examples" / "energy_distance.py"


def test_the_energy_distance_example_is_the_energy_distance():
    # in a fresh process: the plugin's registration must not leak into the other tests' registries
    code = textwrap.dedent(f"""
        import sys, torch
        from scipy import stats
        from bench import plugins
        from bench.metrics import registry
        plugins.load({str(METRIC_PLUGIN)!r})
        mod = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == {str(METRIC_PLUGIN.resolve())!r})
        g = torch.Generator().manual_seed(0)
        u, v = torch.randn(300, generator=g, dtype=torch.float64), 0.5 + 2 * torch.randn(200, generator=g, dtype=torch.float64)
        flat = lambda a: torch.stack([a, torch.zeros_like(a)], 1)  # 1-D data as 2-D points
        print(mod.energy_distance(flat(u), flat(v)), stats.energy_distance(u, v) ** 2, mod.energy_distance(flat(u), flat(u)),
              registry.lower_is_better("energy"), "energy" in registry.result_columns())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    # in 1-D, 2 E|X-Y| - E|X-X'| - E|Y-Y'| = 2 int (F - G)^2 = scipy's energy_distance squared
    assert float(out[0]) == pytest.approx(float(out[1]), rel=1e-9) and float(out[0]) > 0.1
    assert abs(float(out[2])) < 1e-12 and out[3:] == ["True", "True"]


def test_a_plugin_dataset_and_metric_through_a_study_and_its_report(tmp_path):
    """The acceptance of issue 17: a new dataset and a new metric, one plugin file each, used by
    `bench run` (through Ray) and `bench report` without any change to the package."""
    both = ["--plugin", DATASET_PLUGIN, "--plugin", METRIC_PLUGIN]
    r = bench(*both, "run", "--dataset", "circle16", "--losses", "ns,hinge", "--budget", "1", "--seeds", "2",
              "--steps", "30", "--metrics", "default,energy", "--samples", "300", "--storage", tmp_path, "--name", "s")
    assert r.returncode == 0, r.stderr
    study = tmp_path / "s"
    from bench.results import read

    t = read(study)
    assert len(t) == 6 and set(t["dataset"]) == {"circle16"} and set(t["status"]) == {"ok"}
    assert set(t["primary_metric"]) == {"w1"}  # the kind's default, from the dataset's registration
    assert t["energy"].notna().all() and (t["energy"] > 0).all()  # the metric plugin's column
    assert set(t["modes"]) <= set(range(17))  # its mode definition: a mixture of 16
    cfg = json.loads(next(study.glob("trials/*/config.json")).read_text())
    assert [p["name"] for p in cfg["plugins"]] == ["circle16.py", "energy_distance.py"]
    scores = [json.loads(line) for line in next(study.glob("trials/*/scores.jsonl")).read_text().splitlines()]
    assert scores[-1]["modes_total"] == 16 and scores[-1]["provenance"]["energy_samples"] == 300
    # without the metric's plugin the report cannot know which way is better: refused, naming the plugins
    before = sorted(p.relative_to(study) for p in study.rglob("*"))
    r = bench("report", study, "--metric", "energy", "--resamples", "100", "--no-samples")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "no registered metric produces 'energy'" in r.stderr and "circle16.py, energy_distance.py" in r.stderr
    assert sorted(p.relative_to(study) for p in study.rglob("*")) == before
    r = bench(*both, "report", study, "--metric", "energy", "--resamples", "100")
    assert r.returncode == 0, r.stderr
    doc = json.loads((study / "report" / "report.json").read_text())
    assert doc["metric"] == "energy" and doc["lower_is_better"] is True and doc["metric_known"] is True
    assert doc["datasets"] == ["circle16"] and {v["verdict"] for v in doc["verdicts"]} == {"inconclusive"}
    assert (study / "report" / "samples-00-circle16.png").stat().st_size > 0


# ---- generated plugins (hypothesis): each loads whole, or is refused with one line and rolled back ----

GOOD = {  # statements that register one valid component named from {n} (a class named from {i})
    "loss": "import losses\n@losses.register('gl-{n}')\nclass L{i}(losses.Loss):\n"
            "    published = {{'lr': 1e-4, 'beta1': 0.5, 'n_disc': 1, 'd_norm': 'none'}}\n"
            "    def d_loss(self, r, f): return r.mean()\n    def g_loss(self, f, r=None): return f.mean()\n",
    "arch": "import models\n@models.register('ga-{n}')\nclass A{i}:\n    def generator(self, spec, z_dim): pass\n"
            "    def discriminator(self, spec, norm, head): pass\n    def encoder(self, spec, norm): pass\n"
            "    def decoder(self, spec): pass\n",
    "dataset": "from bench import datasets\ndatasets.register('gd-{n}', 'm:f', kind='points', steps=10)\n",
    "metric": "from bench.metrics import register_metric\n"
              "register_metric('gm-{n}', 'm:f', needs='samples', keys=('gk-{n}',), higher_is_better=('gk-{n}',))\n",
}
BAD = [  # statements that must make the whole plugin fail
    "raise RuntimeError('boom')\n", "raise SystemExit(3)\n", "import no_such_module_anywhere\n", "x = (\n",
    "1 / 0\n", "import losses\n@losses.register('ns')\nclass D(losses.Loss):\n    pass\n",
    "import losses\n@losses.register('bad name')\nclass B(losses.Loss):\n    pass\n",
    "import models\n@models.register('half-arch')\nclass H:\n    pass\n",
    "from bench import datasets\ndatasets.register('ring8', 'm:f', kind='points')\n",
    "from bench import datasets\ndatasets.register('img', 'm:f', kind='images')\n",
    "from bench import datasets\ndatasets.register('k', 'm:f', kind='sounds')\n",
    "from bench.metrics import register_metric\nregister_metric('w1x', 'm:f', needs='features', keys=('w1',))\n",
    "from bench.metrics import register_metric\nregister_metric('nx', 'm:f', needs='pixels', keys=('nx',))\n",
]
_examples = iter(range(10**9))


def _registered() -> tuple:
    return (tuple(losses.names()), tuple(models.names()), tuple(datasets.names()), tuple(metrics.metric_names()))


def test_generated_plugins_load_whole_or_are_refused_whole(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    statement = st.one_of(st.sampled_from(sorted(GOOD)).map(lambda k: ("good", k)),
                          st.sampled_from(BAD).map(lambda s: ("bad", s)))

    @settings(deadline=None, derandomize=True, database=None, max_examples=60,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(statement, min_size=1, max_size=5))
    def check(stmts):
        n = next(_examples)
        d = tmp_path_factory.mktemp("plugin")
        path = d / f"gen_{n}.py"
        path.write_text("".join(GOOD[k].format(n=f"{n}-{i}", i=f"{n}_{i}") if kind == "good" else k
                                for i, (kind, k) in enumerate(stmts)))
        before = _registered()
        if all(kind == "good" for kind, _ in stmts):
            plugins.load(str(path))
            added = {k: [f"{p}-{n}-{i}" for i, (_, kk) in enumerate(stmts) if kk == k]
                     for k, p in (("loss", "gl"), ("arch", "ga"), ("dataset", "gd"), ("metric", "gm"))}
            assert set(added["loss"]) <= set(losses.names()) and set(added["arch"]) <= set(models.names())
            assert set(added["dataset"]) <= set(datasets.names()) and set(added["metric"]) <= set(metrics.metric_names())
            for name in added["loss"]:
                losses.get(name)  # the loss's contract holds: it builds
        else:
            with pytest.raises(plugins.PluginError) as e:
                plugins.load(str(path))
            msg = str(e.value)
            assert msg.startswith(f"plugin {path}: ") and "\n" not in msg and "Traceback" not in msg
            assert _registered() == before  # the good statements before the bad one are rolled back
            assert not any(m.startswith(f"gan_bench_plugin_gen_{n}_") for m in sys.modules)
        assert sorted(p.name for p in d.iterdir()) == [path.name]  # nothing written beside it

    check()


def test_a_generated_broken_plugin_through_the_cli_is_one_line_exit_2(tmp_path):
    """The same refusal through a real `bench` process: an exit, a syntax error, a contract broken."""
    for i, stmt in enumerate(s for s in BAD if "SystemExit" in s or s == "x = (\n" or "half-arch" in s):
        path = tmp_path / f"bad_{i}.py"
        path.write_text(GOOD["loss"].format(n=f"cli-{i}", i=i) + stmt)
        before = sorted(p.name for p in tmp_path.iterdir())
        r = bench("--plugin", path, "list", "losses")
        assert r.returncode == 2 and r.stdout == "", (stmt, r.stdout, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"bench: error: plugin {path}: "), (stmt, r.stderr)
        assert sorted(p.name for p in tmp_path.iterdir()) == before
