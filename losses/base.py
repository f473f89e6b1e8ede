"""The `Loss` base class every GAN loss derives from, plus two helpers the losses share.

A loss is a function of raw discriminator outputs (compare_gan style): the training loop runs D,
then asks the loss for ``d_loss(real_out, fake_out)`` and ``g_loss(fake_out, real_out)``. Anything
that needs D itself (gradient penalties) lives in ``penalty(D, real, fake)``; anything that happens
after a D optimizer step (weight clipping, BEGAN's k_t) lives in ``after_d_step``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from bench.errors import UsageError


@dataclass(frozen=True)
class Range:
    """An interval of accepted values for one hyperparameter, printed in interval notation."""

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v: float) -> bool:
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open or math.isinf(self.hi) else v <= self.hi
        return above and below

    def __str__(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open or math.isinf(self.hi) else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


NON_NEGATIVE = Range(0.0)
POSITIVE = Range(0.0, lo_open=True)
UNIT = Range(0.0, 1.0)
LABEL_SMOOTHING = Range(0.0, 0.5, hi_open=True)  # s = 0.5 would make the real target 0.5: no signal


def flat(out: Tensor) -> Tensor:
    """D outputs of shape [N] or [N, 1] as a [N] vector (one value per sample)."""
    if out.dim() == 1:
        return out
    if out.dim() == 2 and out.shape[1] == 1:
        return out.reshape(-1)
    raise ValueError(f"expected discriminator outputs of shape [N] or [N, 1], got {list(out.shape)}")


def input_gradient(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """grad_x sum_i D(x)_i, one gradient per sample, with the graph kept (create_graph=True) so a
    penalty built on it can be backpropagated into D's parameters. ``x`` is used as a fresh leaf."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad


def per_sample_norm(grad: Tensor) -> Tensor:
    """||g_i||_2 over all non-batch dims, shape [N]."""
    return torch.linalg.vector_norm(grad.flatten(1), dim=1)


class Loss:
    """Base class: a GAN loss chosen by name from the registry (see ``losses.get``).

    Class attributes a subclass sets:
      name         registry name (set when the registry loads the class)
      d_head       "logit": D outputs one real number per sample; "autoencoder" (BEGAN): D is an
                   autoencoder whose output is the per-sample reconstruction error
      g_uses_real  True when g_loss needs D(real) too (relativistic losses)
      params       the loss's own hyperparameters with their default values
      ranges       accepted interval for each entry of ``params``
      published    training defaults from the loss's paper (Lucic et al. 2018 sample 0 where the
                   loss is in that study): lr, beta1, n_disc, d_norm ("none"/"batch"/"layer"/"spectral")
    """

    name: ClassVar[str] = ""
    d_head: ClassVar[str] = "logit"
    g_uses_real: ClassVar[bool] = False
    uses_progress: ClassVar[bool] = False  # penalty() takes progress= (the fraction of training done)
    params: ClassVar[dict[str, float]] = {}
    ranges: ClassVar[dict[str, Range]] = {}
    published: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: float) -> None:
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            if not self.params:
                raise UsageError(f"loss '{self.name}' takes no parameters, got '{unknown[0]}'")
            accepted = ", ".join(sorted(self.params))
            raise UsageError(f"loss '{self.name}' has no parameter '{unknown[0]}'; accepted: {accepted}")
        hp: dict[str, float] = dict(self.params)
        for key, value in params.items():
            hp[key] = self._checked(key, value)
        self.hp = hp

    def _checked(self, key: str, value: Any) -> float:
        accepted = self.ranges[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"loss '{self.name}': {key} must be a number in {accepted}, got {value!r}")
        value = float(value)
        if math.isnan(value) or value not in accepted:
            raise UsageError(f"loss '{self.name}': {key} must be in {accepted}, got {value:g}")
        return value

    def __repr__(self) -> str:
        args = "".join(f", {k}={v:g}" for k, v in self.hp.items())
        return f"{type(self).__name__}('{self.name}'{args})"

    # --- the two objectives (scalars, means over the batch) ---------------------------------
    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    # --- hooks ---------------------------------------------------------------------------------
    def penalty(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | float:
        """Extra term added to the D loss (a graph reaching D's parameters), 0.0 if none. A loss
        with ``uses_progress = True`` gets ``progress=`` too: step / steps, a float in [0, 1] (a
        device tensor when the step is captured in a CUDA graph), for a schedule such as R3GAN's."""
        return 0.0

    def after_d_step(self, D: torch.nn.Module, real_out: Tensor, fake_out: Tensor) -> None:
        """Called after each D optimizer step with that step's (detached) outputs."""

    def state_dict(self) -> dict[str, float]:
        """Loss state that must survive a checkpoint (plain Python floats)."""
        return {}

    def load_state_dict(self, state: dict[str, float]) -> None:
        if state:
            raise ValueError(f"loss '{self.name}' has no state, got keys {sorted(state)}")

    def log_values(self) -> dict[str, float]:
        """Extra scalars worth logging (e.g. BEGAN's k_t and convergence measure)."""
        return {}
