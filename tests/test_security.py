"""Security: no code runs from data, caches and results are plain data, reports escape data and leak no paths.

- A static scan (AST) of every project Python file: ``torch.load`` always with ``weights_only=True``,
  no unrestricted unpickling (pickle/dill/cloudpickle/joblib/marshal/shelve, ``np.load(allow_pickle=...)``,
  ``pd.read_pickle``, ``yaml.load``), no ``eval``/``exec``, no shell (``shell=True``, ``os.system``,
  ``os.popen``). The scanner is run on a snippet holding every violation, so it can fail.
- The CIFAR-10 reader's restricted unpickler (the one allowed unpickling) refuses a batch carrying code:
  tests/test_datasets.py::test_cifar10_malicious_pickle_refused (also marked ``reliability``).
- Checkpoints and every cache file load with ``weights_only=True`` (or are JSON/npz without pickles).
- ``bench report`` on a table whose strings are HTML/JS payloads: the raw payloads never reach a page,
  their escaped forms do; and no file of the report holds a local absolute path.
"""
from __future__ import annotations

import ast
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import run_bench

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "losses", "models", "sweeps", "reports", "benchmarks")


# ---- the static scan -----------------------------------------------------------------------------

# Calls that deserialize with pickle (or run code) whatever their arguments.
UNSAFE_CALLS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler",
    "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load", "marshal.load",
    "marshal.loads", "shelve.open", "pandas.read_pickle",
    "eval", "exec", "builtins.eval", "builtins.exec", "os.system", "os.popen",
}
# Allowed exceptions: (file, resolved call) -> why it is safe (each is also tested behaviourally).
ALLOWED = {
    ("bench/metrics/generator_file.py", "torch.export.load"):
        "check_archive() refuses any archive holding more than tensors and JSON before this call "
        "(tests/test_score_cli.py::test_generator_archives_with_pickled_payloads_are_refused)",
}
# Loaders that may unpickle and therefore need explicit review to be used at all.
REVIEW_CALLS = {"torch.export.load", "torch.jit.load", "torch.package.PackageImporter"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted module path, from the module's imports (``import numpy as np``, ``from x import y``)."""
    out: dict[str, str] = {"pd": "pandas", "np": "numpy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    return ".".join([head, *reversed(parts)])


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def scan_source(source: str, filename: str, allowed=ALLOWED) -> list[str]:
    """Every unsafe construct in ``source`` as 'file:line: what' (empty: clean)."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):  # a pickle.Unpickler subclass must restrict find_class
            bases = {_dotted(b, aliases) for b in node.bases}
            if bases & {"pickle.Unpickler", "_pickle.Unpickler"}:
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                if "find_class" not in methods:
                    flag(node, f"class {node.name} unpickles without overriding find_class")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        if (filename, name) in allowed:
            continue
        if name in UNSAFE_CALLS:
            flag(node, f"{name}(...)")
        elif name in REVIEW_CALLS:
            flag(node, f"{name}(...) may unpickle: not in the reviewed ALLOWED list")
        elif name == "torch.load" and not _is_const(_kw(node, "weights_only"), True):
            flag(node, "torch.load without weights_only=True")
        elif name == "numpy.load" and _kw(node, "allow_pickle") is not None and not _is_const(_kw(node, "allow_pickle"), False):
            flag(node, "numpy.load with allow_pickle")
        elif name == "yaml.load" or name == "yaml.unsafe_load" or name == "yaml.full_load":
            flag(node, f"{name} (use yaml.safe_load)")
        elif name.startswith("subprocess.") and _kw(node, "shell") is not None and not _is_const(_kw(node, "shell"), False):
            flag(node, f"{name}(..., shell=...)")
    return found


def project_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))]
    assert len(files) > 50 and any(p.name == "checkpoint.py" for p in files)
    return files


BAD_SNIPPET = '''
import pickle, subprocess, os, yaml, dill
import numpy as np
import torch
from pickle import loads as pl
from torch import load

class Loose(pickle.Unpickler):
    pass

torch.load("x.pt")
torch.load("x.pt", weights_only=False)
load("x.pt", map_location="cpu")
pickle.load(open("x", "rb"))
pl(b"")
pickle.Unpickler(open("x", "rb")).load()
dill.loads(b"")
np.load("x.npy", allow_pickle=True)
yaml.load("a: 1")
eval("1 + 1")
exec("x = 1")
subprocess.run("ls", shell=True)
os.system("ls")
os.popen("ls")
torch.export.load("g.pt2")
'''
GOOD_SNIPPET = '''
import pickle, subprocess, yaml
import numpy as np
import torch

class Strict(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(name)

torch.load("x.pt", map_location="cpu", weights_only=True)
np.load("x.npz")
np.load("x.npz", allow_pickle=False)
yaml.safe_load("a: 1")
subprocess.run(["ls"], check=True)
model.eval()
'''


def test_the_scanner_flags_every_unsafe_construct():
    found = scan_source(BAD_SNIPPET, "snippet.py")
    lines = sorted({int(f.split(":")[1]) for f in found})
    src = BAD_SNIPPET.splitlines()
    want = [i for i, line in enumerate(src, 1) if line and not line.startswith(("import", "from", "    pass"))]
    assert lines == want, "\n".join(found)
    assert scan_source(GOOD_SNIPPET, "snippet.py") == []


def test_project_code_loads_no_code_and_runs_no_shell():
    found = []
    for p in project_files():
        found += scan_source(p.read_text(encoding="utf-8"), str(p.relative_to(REPO)))
    assert found == [], "\n".join(found)
    # Each allowed exception is still needed where it was reviewed (a stale entry would hide a move).
    for (f, call) in ALLOWED:
        flagged = scan_source((REPO / f).read_text(encoding="utf-8"), f, allowed={})
        assert any(x.endswith(f"{call}(...) may unpickle: not in the reviewed ALLOWED list") for x in flagged), (f, call)
    # ... and the generator loader still checks the archive before torch.export.load opens it.
    src = (REPO / "bench/metrics/generator_file.py").read_text(encoding="utf-8")
    body = src[src.index("def load_generator_file"):]
    assert body.index("check_archive(path)") < body.index("torch.export.load(")


# ---- caches and results are plain data -----------------------------------------------------------


def test_checkpoints_and_caches_load_as_plain_data(tmp_path, monkeypatch):
    from bench import checkpoint, datasets
    from bench.config import TrainConfig
    from bench.metrics.score import Scorer
    from bench.train import train

    cache = tmp_path / "cache"
    monkeypatch.setenv("GAN_BENCH_CACHE", str(cache))
    run = tmp_path / "run"
    train(TrainConfig(dataset="ring8", steps=10, log_every=5, ckpt_every=5, metrics=["fid"], eval_samples=100,
                      device="cpu"), run)
    datasets.get("digits")  # materializes the dataset cache
    Scorer("ring8", metrics=["fid", "dc"], n=150)  # the reference cache (real-side features)
    cks = checkpoint.list_checkpoints(run)
    assert len(cks) == 2
    for ck in cks:
        assert set(torch.load(ck, weights_only=True)) >= {"G", "D", "opt_g", "opt_d", "config", "rng_cpu"}
    for name in ("config.json", "record.json"):
        json.loads((run / name).read_text())
    for name in ("metrics.jsonl", "scores.jsonl"):
        assert all(json.loads(line) for line in (run / name).read_text().splitlines())
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    kinds = {p.relative_to(cache).parts[0] for p in files}
    assert {"datasets", "reference"} <= kinds, files
    for p in files:
        if p.suffix == ".pt":
            torch.load(p, weights_only=True)
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".npz":
            np.load(p, allow_pickle=False)
        else:
            pytest.fail(f"cache file of an unexpected kind: {p}")


# ---- reports: escaped data, no local paths -------------------------------------------------------

# Where a string from the data reaches the page, and the payload planted there.
PAYLOADS = {
    "dataset": "<script>alert(1)</script>",
    "loss": '"><img src=x onerror=alert(2)>',
    "checkpoint_best": "<script>alert(3)</script>",        # a relative path: named in a note (unreadable)
    "metric": '"><img src=x onerror=alert(4)>',            # the metric column's name (--metric)
    "input": '"><img src=x onerror=alert(5)>',             # the results file's name (no '/' in a file name)
}
# Strings that never reach the page (the report does not show these columns): still never raw.
UNSHOWN = {"trial_id": "<script>alert(6)</script>", "node": '"><img src=x onerror=alert(7)>',
           "study": "<script>alert(8)</script>", "error": '<script>alert(9)</script>'}


def _escaped(s: str) -> str:
    return html.escape(s, quote=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """``bench report`` on a CSV (under a tmp dir) whose strings are HTML payloads and local paths."""
    base = tmp_path_factory.mktemp("report-security")
    lab = base / "lab"
    lab.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    folder = f"folder:{base / 'my-images'}"  # a dataset named by a local path
    for dataset in (PAYLOADS["dataset"], folder):
        for loss in ("ns", PAYLOADS["loss"], "hinge"):
            for phase, n in (("search", 4), ("seeds", 3)):
                for i in range(n):
                    rows.append({"study": UNSHOWN["study"], "dataset": dataset, "loss": loss, "arch": "mlp",
                                 "phase": phase, "trial_id": f"{UNSHOWN['trial_id']}-{len(rows)}",
                                 "config_id": i if phase == "search" else 0, "seed": len(rows), "status": "ok",
                                 PAYLOADS["metric"]: float(rng.gamma(2.0, 3.0)), "node": UNSHOWN["node"],
                                 "error": None, "checkpoint_best": None})
    df = pd.DataFrame(rows)
    df.loc[0, ["status", PAYLOADS["metric"], "error"]] = ["failed", np.nan, UNSHOWN["error"]]
    # Checkpoints that do not exist: a relative path with a payload, and an absolute local path.
    df.loc[df["loss"] == PAYLOADS["loss"], "checkpoint_best"] = PAYLOADS["checkpoint_best"]
    df.loc[df["loss"] == "hinge", "checkpoint_best"] = str(base / "trials" / "x" / "step_00000010.pt")
    table = lab / f"{PAYLOADS['input']}.csv"
    df.to_csv(table, index=False)
    out = lab / "report"
    # The metric column is a plugin's key (only a registered metric says which way is better)
    plugin = base / "payload_metric.py"
    plugin.write_text("from bench.metrics import register_metric\n"
                      f"register_metric('payload', lambda gen, ref, ctx: {{}}, needs='features', keys=({PAYLOADS['metric']!r},))\n")
    r = run_bench("--plugin", plugin, "report", table.absolute(), "--metric", PAYLOADS["metric"], "--resamples", "200",
                  "--out", out, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir()) if p.suffix in (".html", ".md", ".csv", ".json")}
    assert {"index.html", "leaderboard.md", "summary.csv", "verdicts.csv", "report.json"} <= set(texts)
    return base, out, texts


def test_report_html_escapes_every_data_string(report):
    _, _, texts = report
    pages = {k: v for k, v in texts.items() if k.endswith(".html")}
    for name, page in pages.items():
        for where, payload in {**PAYLOADS, **UNSHOWN}.items():
            assert payload not in page, (name, where)
        assert page.count("<script>") == 1  # the page's own image check, nothing else
    page = pages["index.html"]
    for where, payload in PAYLOADS.items():
        assert _escaped(payload) in page, f"the {where} payload does not reach the page: the test tests nothing"
    for where, payload in UNSHOWN.items():  # not shown at all (if they ever are, escape them and move them up)
        assert _escaped(payload) not in page, where
    md = texts["leaderboard.md"]
    for where, payload in {**PAYLOADS, **UNSHOWN}.items():
        assert payload not in md, ("leaderboard.md", where)  # Markdown passes raw HTML through


def test_report_files_hold_no_local_paths(report):
    base, out, texts = report
    home = str(Path.home())
    for name, text in texts.items():
        for path in (str(base), str(base.resolve()), "/tmp", "/work", str(REPO), home):
            assert path not in text, (name, path)
    doc = json.loads(texts["report.json"])
    assert doc["inputs"] == [f"{PAYLOADS['input']}.csv"]
    notes = " ".join(doc["notes"])
    assert "step_00000010.pt" in notes  # the absolute checkpoint is named by its file name only
    assert "folder:my-images" in doc["datasets"]
