"""``bench list [WHAT]``: the registered components (the package's and the loaded plugins'), with what
each one takes: a loss's parameters, ranges and published defaults, a metric's keys and orientation."""
from __future__ import annotations

import argparse

WHAT = ("losses", "tricks", "archs", "datasets", "metrics", "extractors", "spaces", "plugins")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="the registered losses, tricks, archs, datasets, metrics, extractors, spaces and plugins",
                       description="List what can be named on the command line, including what --plugin registered.")
    p.add_argument("what", nargs="?", choices=WHAT, help="one kind of component (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for what in [args.what] if args.what else WHAT:
        print(f"{what}:")
        for line in LISTERS[what]():
            print(f"  {line}")
    return 0


def _losses() -> list[str]:
    import losses

    out = []
    for name in losses.names():
        cls = losses.loss_class(name)
        params = ", ".join(f"{k}={v:g} in {cls.ranges[k]}" for k, v in cls.params.items()) or "no parameters"
        pub = ", ".join(f"{k} {v}" for k, v in cls.published.items())
        out.append(f"{name:<10} {params}; published: {pub}; from {losses.origin(name)}")
    return out


def _archs() -> list[str]:
    import models

    return [f"{name:<10} from {models._ORIGIN[name]}" for name in models.names()]


def _datasets() -> list[str]:
    from bench.data import registry

    out = []
    for name in registry.names():
        d = registry.describe(name)
        res = "" if d.kind == "points" else (f", {d.resolution} px (" + (
            "{}-{}".format(*d.resolution_range) if d.resolution_range else "/".join(map(str, d.resolutions))) + ")")
        modes = f", modes by {d.modes.by}" if d.modes else ""
        out.append(f"{name:<16} {d.kind}{res}; {d.length}; metrics {','.join(registry.default_metrics(name))}"
                   f"{modes} ({d.samples:,} samples, {d.extractor}), ranked by {d.primary}; arch {d.arch}, space {d.space}"
                   + (f" - {d.summary}" if d.summary else ""))
    return out


def _metrics() -> list[str]:
    from bench.metrics import registry

    out = []
    for name in registry.metric_names():
        e = registry.metric_entry(name)
        keys = ", ".join(f"{k} ({'not a score' if e.orientation(k) == 'none' else e.orientation(k) + ' is better'})"
                         for k in e.keys)
        out.append(f"{name:<6} {keys}")
    return out


def _extractors() -> list[str]:
    from bench.metrics import registry

    return registry.extractor_names()


def _spaces() -> list[str]:
    import sweeps

    return sweeps.builtin_names() + ["(or a TOML/YAML file: --space FILE)"]


def _tricks() -> list[str]:
    from bench import tricks

    return [f"{t.usage():<28} {t.paper}; sets {', '.join(t.settings(t.default if t.value else None)) or 'nothing'}"
            for t in tricks.TRICKS.values()] + ["(bench run --tricks A,B+C: + joins tricks into one cell)"]


def _plugins() -> list[str]:
    from bench import plugins

    return [f"{p.name} sha256 {p.sha256[:12]} ({p.path})" for p in plugins.loaded()] or ["(none loaded)"]


LISTERS = {"losses": _losses, "tricks": _tricks, "archs": _archs, "datasets": _datasets, "metrics": _metrics,
           "extractors": _extractors, "spaces": _spaces, "plugins": _plugins}
