"""Plugins: losses, architectures, datasets and metrics of your own, without editing the package.

    bench run --plugin my_loss.py --dataset ring8 --losses ns,my-loss
    GAN_BENCH_PLUGINS=my_loss.py:my_data.py bench report runs/studies/s

A plugin is a Python file or an importable module that registers components with the package's own
registration calls: ``@losses.register("name")``, ``@models.register("name")``,
``@bench.datasets.register(name, kind=...)``, ``bench.metrics.register_metric(...)``. Installed packages can
publish plugins through entry points: group ``gan_bench.plugins`` (a module, imported like
``--plugin MODULE``), or ``gan_bench.losses`` / ``gan_bench.archs`` (a ``Loss`` subclass or an
architecture, registered under the entry point's name).

Provenance: a plugin is identified by its name and the sha256 of its source (for a module, of its
files); every training run records the plugins it was run with (``TrainConfig.plugins``), so a run
or study is only resumed under the same code. Travel: a study keeps each file plugin's source in
``study.json``; a Ray worker imports the plugin from that source (written under the cache
directory), so a cluster needs neither a shared filesystem nor an install step. Module plugins are
software like the package itself: they must be importable on every node (and are checked by hash).

A plugin that cannot be found, fails to import, registers a name twice or breaks a component's
contract raises ``PluginError``: one line naming the plugin, the line of its file and the problem.
Whatever it registered before failing is unregistered again.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError

ENV = "GAN_BENCH_PLUGINS"  # plugins separated by os.pathsep (":")
ENTRY_POINT_GROUPS = ("gan_bench.plugins", "gan_bench.losses", "gan_bench.archs")


class PluginError(UsageError):
    """A plugin that cannot be used; the message is one line: ``plugin NAME: problem``."""


@dataclass(frozen=True)
class Plugin:
    name: str            # a file plugin's file name (not its directory: moving it changes nothing), or a module's name
    sha256: str          # of the file's bytes; of a module's files (sorted by path) for a module
    source: str | None   # a file plugin's text (travels with a study); None for a module
    path: str | None     # where this process imported it from

    def record(self) -> dict[str, str]:
        """What a run's provenance keeps: name and hash."""
        return {"name": self.name, "sha256": self.sha256}

    def travel(self) -> dict[str, str]:
        """What a study keeps and a Ray worker needs: name, hash and, for a file, its source."""
        return {**self.record(), **({"source": self.source} if self.source is not None else {"module": self.name})}


_LOADED: dict[str, Plugin] = {}  # sha256 -> plugin loaded in this process


def loaded() -> list[Plugin]:
    """The plugins this process has loaded, in load order."""
    return list(_LOADED.values())


def records() -> list[dict[str, str]]:
    """Provenance of every loaded plugin (``TrainConfig.plugins``)."""
    return [p.record() for p in loaded()]


def travel() -> list[dict[str, str]]:
    """What a study stores (``Study.plugins``) so that its workers and ``bench resume`` load the same code."""
    return [p.travel() for p in loaded()]


# ---- loading ---------------------------------------------------------------------------------

def load(spec: str) -> Plugin:
    """Import the plugin ``spec`` (a path to a .py file, or a module name) once per process."""
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"plugin {spec!r}: give a .py file or a module name")
    path = Path(spec).expanduser()
    if spec.endswith(".py") or os.sep in spec or path.exists():
        return _load_file(spec, path)
    return _load_module(spec)


def load_all(specs: list[str]) -> list[Plugin]:
    return [load(s) for s in specs]


def from_env() -> list[str]:
    """The plugins named in ``$GAN_BENCH_PLUGINS``."""
    return [s for s in os.environ.get(ENV, "").split(os.pathsep) if s.strip()]


def load_entry_points() -> None:
    """Import what installed packages publish in the ``gan_bench.*`` entry-point groups."""
    from importlib.metadata import entry_points

    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            name = f"{ep.value} (entry point {group}:{ep.name})"
            if group == "gan_bench.plugins":
                _load_module(ep.value.partition(":")[0], shown=name)
                continue
            module = ep.value.partition(":")[0]
            with _registering(name, module):
                obj = ep.load()
                import losses
                import models

                register, known = {"gan_bench.losses": (losses.register, losses.names),
                                   "gan_bench.archs": (models.register, models.names)}[group]
                if ep.name not in known():
                    register(ep.name)(obj)
            _remember(Plugin(module, _module_hash(sys.modules[module]), None, getattr(sys.modules[module], "__file__", None)))


def ensure(travelled: list[dict[str, Any]]) -> None:
    """Make this process (a Ray worker, ``bench resume``) run with a study's plugins: import each one
    not loaded yet, a file plugin from its stored source. Refuses a plugin whose code differs."""
    for rec in travelled or []:
        name, sha = rec["name"], rec["sha256"]
        if sha in _LOADED:
            continue
        clash = next((p for p in _LOADED.values() if p.name == name), None)
        if clash is not None:
            raise PluginError(f"plugin {name}: its code changed since the study started (sha256 {sha[:12]} there, "
                              f"{clash.sha256[:12]} here); run the study with the plugin it was started with")
        if "source" in rec:
            _load_file(name, _stored_copy(name, sha, rec["source"]))
        else:
            got = _load_module(rec["module"])
            if got.sha256 != sha:
                raise PluginError(f"plugin {name}: the module here differs from the one the study was started with "
                                  f"(sha256 {got.sha256[:12]} here, {sha[:12]} there); install the same version")


def _load_file(name: str, path: Path) -> Plugin:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PluginError(f"plugin {name}: no such file (give a .py file or an importable module name)") from None
    except OSError as e:
        raise PluginError(f"plugin {name}: cannot read it: {e.strerror}") from None
    sha = hashlib.sha256(data).hexdigest()
    if sha in _LOADED:
        return _LOADED[sha]
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PluginError(f"plugin {name}: not a UTF-8 Python file") from None
    stem = re.sub(r"\W", "_", path.stem) or "plugin"
    module = f"gan_bench_plugin_{stem}_{sha[:8]}"  # two plugins with one file name stay apart
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {name}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    with _registering(name, str(path.resolve()), module):
        sys.modules[module] = mod  # dataclasses and pickling look their module up here
        spec.loader.exec_module(mod)
    return _remember(Plugin(path.name, sha, source, str(path.resolve())))


def _load_module(module: str, shown: str | None = None) -> Plugin:
    shown = shown or module
    if module in sys.modules:
        mod = sys.modules[module]
    else:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise PluginError(f"plugin {shown}: no such file or importable module")
        file = found.origin if found.origin and found.origin.endswith(".py") else ""
        with _registering(shown, file, module):
            mod = importlib.import_module(module)
    return _remember(Plugin(module, _module_hash(mod), None, getattr(mod, "__file__", None)))


def _remember(p: Plugin) -> Plugin:
    return _LOADED.setdefault(p.sha256, p)


def _module_hash(mod: Any) -> str:
    """sha256 over a module's file, or over every .py file of a package (sorted by relative path)."""
    file = getattr(mod, "__file__", None)
    h = hashlib.sha256()
    if not file:
        h.update(mod.__name__.encode())
        return h.hexdigest()
    root = Path(file)
    files = sorted(root.parent.rglob("*.py")) if root.name == "__init__.py" else [root]
    for f in files:
        h.update(str(f.relative_to(root.parent)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _stored_copy(name: str, sha: str, source: str) -> Path:
    """A study's plugin source as a file under the cache (so tracebacks show real lines)."""
    from bench.io import atomic_write_text

    cache = Path(os.environ.get("GAN_BENCH_CACHE") or "~/.cache/gan-bench").expanduser()
    path = cache / "plugins" / sha / Path(name).name
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, source)
    return path


# ---- one line for whatever goes wrong, and no half-registered plugin --------------------------

class _registering:
    """Context of importing one plugin: a failure becomes one PluginError line pointing at the
    plugin's own line, and every component it registered before failing is removed again."""

    def __init__(self, shown: str, file: str, module: str | None = None) -> None:
        self.shown, self.file, self.module = shown, file, module

    def __enter__(self) -> None:
        self.before = {k: set(table) for k, table in _tables().items()}

    def __exit__(self, kind, err, tb) -> bool:
        if err is None or isinstance(err, (KeyboardInterrupt, GeneratorExit)):  # Ctrl-C stays Ctrl-C
            return False
        for key, table in _tables().items():
            for name in set(table) - self.before.get(key, set(table)):
                del table[name]
        if self.module:
            sys.modules.pop(self.module, None)
        if isinstance(err, PluginError):
            raise err
        raise PluginError(f"plugin {self.shown}: {_describe(err, tb, self.file)}") from None


def _describe(err: BaseException, tb: Any, file: str) -> str:
    if isinstance(err, SyntaxError):
        return f"syntax error at line {err.lineno}: {err.msg}"
    line = None
    for frame in traceback.extract_tb(tb):
        if file and os.path.abspath(frame.filename) == os.path.abspath(file):
            line = frame.lineno
    where = f" at line {line}" if line else ""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, (ValueError, TypeError)) and ("registered twice" in text or "must" in text):
        return f"{text}{where}"
    return f"{type(err).__name__}{where}: {text}"


def _tables() -> dict[str, dict]:
    """Every registry a plugin can add to (name -> entry), for rolling back a failed plugin."""
    from bench.metrics import registry as metrics
    from losses import registry as loss_registry

    import models
    from bench.data import registry as data

    return {"losses": loss_registry._REGISTRY, "loss-origins": loss_registry._ORIGIN, "archs": models._ARCHS,
            "arch-origins": models._ORIGIN, "metrics": metrics._METRICS, "extractors": metrics._EXTRACTORS,
            "datasets": data._REGISTRY}
