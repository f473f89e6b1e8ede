"""A whole training step captured once as a CUDA graph and replayed (``bench train --cuda-graphs``).

A GAN step at Lucic's sizes (batch 64, 64 px) is hundreds of small kernels: on an H100 the GPU
finishes each one before the CPU has launched the next, so the step costs the host's launch time,
not the arithmetic. A CUDA graph records the kernels of one step (n_disc D steps and the G step:
forward, backward, penalties, optimizer steps, the loss's own update) and replays them with one
launch. "Whole network capture" in the PyTorch CUDA-graph notes; what it requires, and where this
harness provides it:

  - static shapes and addresses: the batch is drawn by indexing the device-resident dataset, so
    the same tensors are reused; parameters, gradients and optimizer state are updated in place
    (Adam ``capturable=True``, so its step count lives on the device);
  - no host synchronisation inside the step: losses leave the step as a device tensor (fetched
    once per log window, as without graphs); BEGAN's k_t lives on the device; the instance-noise
    schedule reads a device step counter that the graph itself advances;
  - randomness from the default CUDA generator (batches, z, penalty interpolation, noise): a
    replay draws fresh numbers and advances the generator as the eager step would;
  - a few eager steps first, on a side stream (cuDNN autotuning, lazy optimizer state), then the
    capture; autocast's weight-cast cache off.

The numbers are those of the eager step up to floating-point nondeterminism (as on any GPU); the
option is not part of a run's identity, so a run may resume with or without it.
"""
from __future__ import annotations

from typing import Callable

import torch

WARMUP_STEPS = 3  # eager steps before the capture (the PyTorch notes' recipe)


class GraphedStep:
    """Call ``fn(step)`` eagerly for the first ``warmup`` calls, then capture ``fn`` once and replay it.

    ``fn`` takes the step number (an int when eager, a device tensor counter when captured) and
    returns a device tensor; every call returns a fresh copy of it. Calls must come with consecutive
    step numbers (the captured graph advances its own counter)."""

    def __init__(self, fn: Callable[[int | torch.Tensor], torch.Tensor], device: torch.device,
                 warmup: int = WARMUP_STEPS) -> None:
        self.fn, self.device, self.warmup = fn, device, warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.counter: torch.Tensor | None = None
        self.out: torch.Tensor | None = None
        self.side = torch.cuda.Stream(device)

    def __call__(self, step: int) -> torch.Tensor:
        if self.calls < self.warmup:
            self.calls += 1
            return self._eager(step)
        if self.graph is None:
            self._capture(step)
        self.graph.replay()
        return self.out.clone()

    def _eager(self, step: int) -> torch.Tensor:
        self.side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.side):
            out = self.fn(step)
        torch.cuda.current_stream(self.device).wait_stream(self.side)
        return out

    def _capture(self, step: int) -> None:
        # Recording runs nothing: the step is executed by the replay that follows.
        self.counter = torch.tensor(step, device=self.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = self.fn(self.counter)
            self.counter += 1
