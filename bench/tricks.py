"""Tricks as a study factor: each a named set of TrainConfig settings, crossed with the losses.

    bench run --losses ns --tricks none,feature-matching,unrolled=5,label-smoothing=0.1

makes one cell per (dataset, loss, arch, trick), each with its own budget of search configurations
and its own seeds phase, so ``bench report --factor trick --baseline none`` asks Kurach et al. 2019's
question ("A Large-Scale Study on Regularization and Normalization in GANs", ICML 2019): does any
trick consistently help the baseline? A trick fixes its settings in every configuration of its cell
(they are taken out of the search space there); everything else is searched as for the loss alone.

A trick is written ``name`` or ``name=value``; several joined by ``+`` act together
(``r1=10+minibatch-stddev``). Settings are TrainConfig fields, and ``loss.<param>`` for a loss's
own parameter (the spelling search spaces use). Whether a trick applies to a loss is decided where
the setting is checked (``TrainConfig.resolved`` and ``bench.train.build_nets``), so a study that
crosses a trick with a loss it does not fit is refused with that check's one line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import UsageError

NONE = "none"
JOIN = "+"


@dataclass(frozen=True)
class Trick:
    name: str
    paper: str
    settings: Callable[[Any], dict[str, Any]]  # value (None for a trick without one) -> settings
    value: str | None = None  # what the value means ("alpha", "K", ...); None: the trick takes none
    default: float | None = None  # the value when the trick is named without one; None: a value is needed
    integer: bool = False

    def usage(self) -> str:
        if self.value is None:
            return self.name
        return f"{self.name}[={self.value}]" if self.default is not None else f"{self.name}={self.value}"


TRICKS: dict[str, Trick] = {t.name: t for t in (
    Trick(NONE, "the loss alone", lambda v: {}),
    Trick("label-smoothing", "one-sided label smoothing, real target 1 - alpha (Salimans et al. 2016)",
          lambda a: {"loss.label_smoothing": a}, "alpha", 0.1),
    Trick("two-sided-smoothing", "real target 1 - alpha, fake target alpha (Salimans et al. 2016)",
          lambda a: {"loss.label_smoothing": a, "loss.fake_label_smoothing": a}, "alpha", 0.1),
    Trick("instance-noise", "N(0, s^2) on D's inputs, annealed to 0 (Arjovsky & Bottou 2017; Sonderby et al. 2017)",
          lambda s: {"noise_std": s}, "s", 0.1),
    Trick("r1", "gamma/2 E_data ||grad D||^2 (Mescheder et al. 2018)", lambda g: {"r1_gamma": g}, "gamma"),
    Trick("r2", "gamma/2 E_G ||grad D||^2 (Mescheder et al. 2018)", lambda g: {"r2_gamma": g}, "gamma"),
    Trick("feature-matching", "G minimises ||E f(x) - E f(G(z))||^2 alone (Salimans et al. 2016)",
          lambda v: {"feature_matching": 1.0, "fm_alone": True}),
    Trick("feature-matching-aux", "w ||E f(x) - E f(G(z))||^2 added to the loss's G objective",
          lambda w: {"feature_matching": w}, "w", 1.0),
    Trick("minibatch-discrimination", "minibatch features before D's head (Salimans et al. 2016)",
          lambda v: {"d_minibatch": "discrimination"}),
    Trick("minibatch-stddev", "the batch's feature stddev before D's head (Karras et al. 2018)",
          lambda v: {"d_minibatch": "stddev"}),
    Trick("unrolled", "G's update through K unrolled D steps (Metz et al. 2017)",
          lambda k: {"unrolled_steps": k}, "K", 5, integer=True),
    Trick("reference-bn", "G's batch norm from a fixed reference batch (Salimans et al. 2016)",
          lambda v: {"g_norm": "reference"}),
    Trick("virtual-bn", "G's batch norm from the reference batch plus the sample (Salimans et al. 2016)",
          lambda v: {"g_norm": "virtual"}),
    Trick("conditional", "class-conditional G (conditional batch norm) and projection D (Miyato & Koyama 2018)",
          lambda v: {"conditional": True}),
    Trick("spectral-norm", "spectral normalization of D's weights (Miyato et al. 2018)",
          lambda v: {"d_norm": "spectral"}),
)}


def known() -> str:
    return ", ".join(t.usage() for t in TRICKS.values())


def _one(text: str) -> tuple[str, Any]:
    """One trick's (name, value), validated; the value is None for a trick that takes none."""
    name, eq, raw = text.strip().partition("=")
    trick = TRICKS.get(name)
    if trick is None:
        raise UsageError(f"unknown trick '{name}'; known: {known()} (join several with {JOIN})")
    if trick.value is None:
        if eq:
            raise UsageError(f"trick '{name}' takes no value, got '{text}'")
        return name, None
    if not eq:
        if trick.default is None:
            raise UsageError(f"trick '{name}' needs a value: {trick.usage()}")
        return name, int(trick.default) if trick.integer else float(trick.default)
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"trick '{name}': {trick.value} must be a number, got '{raw}'") from None
    if not math.isfinite(value) or (trick.integer and value != int(value)):
        raise UsageError(f"trick '{name}': {trick.value} must be {'an integer' if trick.integer else 'finite'}, got '{raw}'")
    return name, int(value) if trick.integer else value


def parse(text: str) -> str:
    """The canonical spelling of a trick (``unrolled=5``, ``r1=10+minibatch-stddev``, ``none``); the
    value given or the default, written the same way whatever way it was typed (``unrolled`` and
    ``unrolled=5.0`` are the same cell). UsageError names what is wrong and what is accepted."""
    parts = [_one(p) for p in text.split(JOIN)]
    if len(parts) > 1 and any(n == NONE for n, _ in parts):
        raise UsageError(f"trick '{text}': none cannot be combined with another trick")
    names = [n for n, _ in parts]
    if len(set(names)) < len(names):
        raise UsageError(f"trick '{text}' names a trick twice")
    _check_disjoint(parts, text)
    return JOIN.join(n if v is None else f"{n}={v:g}" for n, v in parts)


def _check_disjoint(parts: list[tuple[str, Any]], text: str) -> None:
    seen: dict[str, str] = {}
    for name, value in parts:
        for key in TRICKS[name].settings(value):
            if key in seen:
                raise UsageError(f"trick '{text}': {seen[key]} and {name} both set {key}; combine tricks that set different things")
            seen[key] = name


def settings(trick: str) -> dict[str, Any]:
    """The settings a (canonical) trick fixes: TrainConfig fields and ``loss.<param>`` entries."""
    out: dict[str, Any] = {}
    for part in trick.split(JOIN):
        name, value = _one(part)
        out.update(TRICKS[name].settings(value))
    return out


def slug(trick: str) -> str:
    """The trick as it appears in trial ids and directory names (no '=' or '+')."""
    return trick.replace("=", "_").replace(JOIN, "--")
