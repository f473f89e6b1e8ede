"""Training health: how D and G are doing at every step, recorded without a per-step host sync.

A measured step (``bench.train.Trainee.step``) returns, on the device, one row of ``FIELDS``:

    d_loss, g_loss   the two objectives (D's at its last step of the n_disc)
    g_grad_norm      ||grad_theta L_G|| over all of G's parameters, before G's Adam step: the gradient
                     the loss gives G (it vanishes for the minimax loss once D wins: Arjovsky &
                     Bottou 2017, Theorem 2.4; ``bench diagnose`` measures it against D's optimality)
    d_grad_norm      ||grad_phi L_D|| over D's parameters at its last step (penalties included)
    d_real, d_fake   D's mean raw output on the real and the fake batch of its last step (each loss's
                     own scale: logits, critic values, BEGAN's reconstruction errors)
    d_auc            the fraction of (real, fake) pairs of that step that D orders correctly, the
                     real one scored as more real: P(D(x) > D(G(z))), or < for BEGAN's autoencoder,
                     whose output is an error. Threshold-free, so it means the same for every loss
                     (a critic or a relativistic D has no "real" threshold); 0.5 is chance, 1 a D
                     that separates the batch perfectly.

The fields are measured at every ``health_every``-th step (TrainConfig, default 10; every step
under CUDA graphs): on a CPU each of the ~30 small ops of a measurement costs a host dispatch, ~8%
of a ring8 MLP step, and a sample of the steps estimates a window's means and saturated fraction
as well. Measuring never changes the training (no random draw, no parameter touched), so runs with
any ``health_every`` are the same run. The other steps return (d_loss, g_loss) alone.

The loop fetches the window's outputs with its one host sync per log window; ``window`` turns them
into the metrics.jsonl row: means, the smallest G gradient, and ``d_saturated``, the fraction of
the window's measured steps with d_auc >= SATURATED (D separates the batch: where the minimax
gradient vanishes and mode collapse starts), and ``health_steps``, how many steps were measured.
``Summary`` turns a run's rows into its results columns.

Mode hopping (a generator that leaves one mode for another instead of covering both) shows in the
checkpoints' scores: ``mode_hops`` counts the modes exchanged between consecutive checkpoints.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # the driver reads Summary and COLUMNS without loading torch
    import torch

FIELDS = ("d_loss", "g_loss", "g_grad_norm", "d_grad_norm", "d_real", "d_fake", "d_auc")
SATURATED = 0.99  # d_auc at or above this: D saturated at that step
# Results-table columns (one per trial), documented in the README's column table
COLUMNS = ("g_grad_norm", "g_grad_norm_min", "d_auc", "d_saturated")


def grad_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """||grad|| over the parameters that have one, on their device (no host sync)."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


def pairwise_auc(real_out: torch.Tensor, fake_out: torch.Tensor, real_is_high: bool = True) -> torch.Tensor:
    """P(D(x) > D(G(z))) + P(D(x) = D(G(z))) / 2 over every (real, fake) pair of the batch: the mean of
    sign(D(x) - D(G(z))) mapped from [-1, 1] to [0, 1] (one broadcast op: this runs every step)."""
    r, f = real_out.detach().reshape(-1, 1), fake_out.detach().reshape(1, -1)
    diff = r - f if real_is_high else f - r
    return 0.5 + 0.5 * diff.sign().float().mean()


def window(steps: Sequence[torch.Tensor]) -> dict[str, float]:
    """The metrics.jsonl fields of one log window from its steps' outputs (on the host, oldest first):
    each is (d_loss, g_loss), or all of FIELDS at a measured step. The losses are averaged over every
    step; the health fields over the measured ones (none measured: no health fields), with the
    smallest G gradient and ``d_saturated``, the fraction of measured steps with d_auc >= SATURATED."""
    import torch

    out = dict(zip(FIELDS[:2], torch.stack([v[:2] for v in steps]).mean(0).tolist()))
    measured = [v for v in steps if v.shape[0] == len(FIELDS)]
    if not measured:
        return out
    values = torch.stack(measured)
    out.update(zip(FIELDS[2:], values[:, 2:].mean(0).tolist()))
    out["g_grad_norm_min"] = float(values[:, FIELDS.index("g_grad_norm")].min())
    out["d_saturated"] = float((values[:, FIELDS.index("d_auc")] >= SATURATED).double().mean())
    out["health_steps"] = len(measured)
    return out


class Summary:
    """A run's health columns from its metrics.jsonl rows (oldest first), kept as rows arrive:
    ``g_grad_norm`` and ``d_auc`` of the last window, the smallest G gradient of any window, and
    the fraction of all measured steps at which D was saturated. Rows from before health was recorded
    (no ``d_auc``) are skipped; a run without any gives NaN."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()):
        self.last: dict[str, Any] = {}
        self.g_min, self.saturated_steps, self.steps, self.prev_step = math.inf, 0.0, 0, None
        for r in rows:
            self.add(r)

    def add(self, row: dict[str, Any]) -> None:
        step = row.get("step")
        n = step - self.prev_step if isinstance(step, int) and self.prev_step is not None else step
        if isinstance(step, int):
            self.prev_step = step
        if not isinstance(row.get("d_auc"), (int, float)) or not isinstance(n, int):
            return
        self.last = row
        g = row.get("g_grad_norm_min")
        if isinstance(g, (int, float)) and math.isfinite(g):
            self.g_min = min(self.g_min, g)
        n = row.get("health_steps", n)  # the window's measured steps (rows from before sampling: all of them)
        self.saturated_steps += float(row.get("d_saturated", 0.0)) * n
        self.steps += n

    def columns(self) -> dict[str, float]:
        def num(k: str) -> float:
            v = self.last.get(k)
            return float(v) if isinstance(v, (int, float)) else math.nan

        return {"g_grad_norm": num("g_grad_norm"), "g_grad_norm_min": self.g_min if self.steps else math.nan,
                "d_auc": num("d_auc"), "d_saturated": self.saturated_steps / self.steps if self.steps else math.nan}


def mode_hops(masks: Iterable[Any]) -> float:
    """Modes exchanged over a run's scored checkpoints (oldest first), from their ``modes_mask``
    (bit k: mode k covered; ``bench.metrics.modes``):

        mode_hops = sum_t min(|C_t minus C_t+1|, |C_t+1 minus C_t|)

    a mode lost while another is gained counts once; pure gains (learning more modes) and pure losses
    (collapsing) do not count. Checkpoints without a mask (failed scores) are skipped; NaN when fewer
    than two checkpoints have one (datasets with more than 52 modes have none)."""
    kept = [int(m) for m in masks if isinstance(m, (int, float)) and math.isfinite(m)]
    if len(kept) < 2:
        return math.nan
    return float(sum(min((a & ~b).bit_count(), (b & ~a).bit_count()) for a, b in zip(kept, kept[1:])))
