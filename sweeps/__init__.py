"""Search spaces as data: ``sweeps/<name>.toml`` files and their validating loader.

A space file has ``[params]`` (hyperparameters of every loss: TrainConfig fields) and
``[loss.<name>]`` tables (parameters of that loss only, e.g. WGAN's clip). Each entry is one
distribution:

    lr = { dist = "loguniform", low = 1e-5, high = 1e-2 }   # 10^U[log10 low, log10 high]
    beta1 = { dist = "uniform", low = 0.0, high = 1.0 }
    n_disc = { dist = "choice", values = [1, 5] }
    beta2 = { dist = "fixed", value = 0.999 }

A user file may start with ``extends = "lucic-wide"`` to add or override entries of a built-in space.
YAML files (.yaml/.yml) with the same structure are accepted too.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UsageError

HERE = Path(__file__).parent
# Hyperparameters a space may search at the top level (TrainConfig fields), with their kind.
SEARCHABLE = {"lr": float, "lr_d": float, "beta1": float, "beta2": float, "n_disc": int, "d_norm": str,
              "batch_size": int, "z_dim": int, "r1_gamma": float, "r2_gamma": float, "noise_std": float,
              "d_minibatch": str, "feature_matching": float, "unrolled_steps": int, "g_norm": str,
              "conditional": bool}
DISTS = {"loguniform": ("low", "high"), "uniform": ("low", "high"), "choice": ("values",), "fixed": ("value",)}


@dataclass(frozen=True)
class Dist:
    """One hyperparameter's distribution."""

    kind: str
    low: float | None = None
    high: float | None = None
    values: tuple = ()

    @property
    def is_fixed(self) -> bool:
        """One possible value (``fixed``, or a choice of one): it holds for config 0 too."""
        return self.kind == "choice" and len(self.values) == 1

    def to_optuna(self):
        import optuna.distributions as od

        if self.kind in ("loguniform", "uniform"):
            return od.FloatDistribution(self.low, self.high, log=self.kind == "loguniform")
        return od.CategoricalDistribution(self.values)


@dataclass
class SearchSpace:
    name: str
    params: dict[str, Dist] = field(default_factory=dict)
    loss_params: dict[str, dict[str, Dist]] = field(default_factory=dict)  # loss -> name -> Dist

    def for_loss(self, loss: str) -> dict[str, Dist]:
        """The distributions a cell of ``loss`` samples: the shared ones and the loss's own."""
        return {**self.params, **{f"loss.{k}": d for k, d in self.loss_params.get(loss, {}).items()}}

    def to_dict(self) -> dict[str, Any]:
        def d(x: Dist) -> dict:
            return {k: v for k, v in x.__dict__.items() if v not in (None, ())}

        return {"name": self.name, "params": {k: d(v) for k, v in self.params.items()},
                "loss": {l: {k: d(v) for k, v in ps.items()} for l, ps in self.loss_params.items()}}


def builtin_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.toml"))


def load(name_or_path: str) -> SearchSpace:
    """Load a built-in space by name or a user's TOML/YAML file; UsageError names the bad key/range."""
    path = HERE / f"{name_or_path}.toml"
    if not path.is_file():
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(f"unknown space '{name_or_path}'; built-in: {', '.join(builtin_names())}, or a path to a .toml/.yaml file")
    raw = _read(path)
    where = path.name
    base = SearchSpace(name=path.stem)
    extends = raw.pop("extends", None)
    if extends is not None:
        if extends not in builtin_names():
            raise UsageError(f"{where}: extends '{extends}' is not a built-in space ({', '.join(builtin_names())})")
        base = load(extends)
        base.name = path.stem
    raw.pop("description", None)
    unknown = sorted(set(raw) - {"params", "loss"})
    if unknown:
        raise UsageError(f"{where}: unknown key '{unknown[0]}'; accepted top-level keys: extends, description, params, loss")
    for key, spec in _table(raw.get("params", {}), where, "params").items():
        if key not in SEARCHABLE:
            raise UsageError(f"{where}: params.{key} is not searchable; searchable: {', '.join(SEARCHABLE)}")
        base.params[key] = _dist(spec, f"{where}: params.{key}", SEARCHABLE[key])
    for loss, table in _table(raw.get("loss", {}), where, "loss").items():
        accepted = _loss_params(loss, where)
        for key, spec in _table(table, where, f"loss.{loss}").items():
            if key not in accepted:
                raise UsageError(f"{where}: loss.{loss}.{key} is not a parameter of {loss}; accepted: {', '.join(accepted) or 'none'}")
            base.loss_params.setdefault(loss, {})[key] = _dist(spec, f"{where}: loss.{loss}.{key}", float)
    return base


def _read(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise UsageError(f"cannot read space file {path}: {e.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise UsageError(f"{path}: malformed space file ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a space file is a table with [params] and [loss.<name>] sections")
    return data


def _table(x: Any, where: str, key: str) -> dict:
    if not isinstance(x, dict):
        raise UsageError(f"{where}: {key} must be a table")
    return x


def _loss_params(loss: str, where: str) -> list[str]:
    import losses

    if loss not in losses.names():
        raise UsageError(f"{where}: unknown loss '{loss}' in [loss.{loss}]; known: {', '.join(losses.names())}")
    return sorted(losses.loss_class(loss).params)


def _dist(spec: Any, where: str, kind: type) -> Dist:
    if not isinstance(spec, dict) or spec.get("dist") not in DISTS:
        raise UsageError(f"{where}: expected {{ dist = ... }} with dist one of {', '.join(DISTS)}")
    dist = spec["dist"]
    need = DISTS[dist]
    extra = sorted(set(spec) - {"dist", *need})
    missing = [k for k in need if k not in spec]
    if extra or missing:
        raise UsageError(f"{where}: {dist} takes {', '.join(need)}" + (f"; unknown key '{extra[0]}'" if extra else f"; missing '{missing[0]}'"))
    if dist in ("loguniform", "uniform"):
        lo, hi = spec["low"], spec["high"]
        if kind in (str, bool) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)):
            raise UsageError(f"{where}: low and high must be finite numbers" + (" (this parameter takes choice or fixed)" if kind in (str, bool) else ""))
        if not lo < hi:
            raise UsageError(f"{where}: low ({lo}) must be below high ({hi})")
        if dist == "loguniform" and lo <= 0:
            raise UsageError(f"{where}: loguniform needs low > 0, got {lo}")
        if kind is int:
            raise UsageError(f"{where}: an integer parameter takes choice or fixed, not {dist}")
        return Dist(dist, float(lo), float(hi))
    values = spec["values"] if dist == "choice" else [spec["value"]]
    if not isinstance(values, list) or not values:
        raise UsageError(f"{where}: choice needs a non-empty list of values")
    for v in values:
        ok = (isinstance(v, str) if kind is str else isinstance(v, bool) if kind is bool
              else isinstance(v, (int, float)) and not isinstance(v, bool))
        if not ok or (kind is int and (not isinstance(v, int) or v <= 0)):
            what = {str: "name", bool: "true or false", int: "positive integer"}.get(kind, "number")
            raise UsageError(f"{where}: value {v!r} is not a {what}")
    return Dist("choice", values=tuple(values))
