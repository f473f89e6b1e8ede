"""Reference and virtual batch normalization for G (Salimans et al. 2016, "Improved Techniques for
Training GANs", Sec. 3.4): batch normalization makes each generated sample depend on the others of
its batch; these normalize with the statistics of a fixed *reference batch* instead.

    reference BN:  y = gamma (h - mu_ref) / sqrt(var_ref + eps) + beta
    virtual BN:    the statistics of the reference batch together with the sample itself,
                   mu_x = (R mu_ref + mu_own(x)) / (R + 1),  var_x = (R s_ref + s_own(x)) / (R + 1) - mu_x^2

with R the reference batch size, s the mean of squares, statistics per channel (over the batch and,
for conv features, the spatial positions; mu_own(x) and s_own(x) over x's own positions). The
reference batch z_ref is drawn once per run and stored in G's state (so checkpoints, resume and
scoring use the same one); every forward first runs z_ref through G, each norm layer taking its
statistics from it (the reference batch itself normalized by them, as in the paper), then the real
input. The statistics stay in the graph, so G's gradient flows through them (as in the paper's
code), and train and eval mode compute the same thing. It doubles G's forward cost.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from models import G_NORMS as KINDS  # noqa: E402,F401  (listed where importing needs no torch)
REF_BATCH = 64


class ReferenceNorm(nn.Module):
    """Replaces one BatchNorm1d/2d of G, keeping its affine weights."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, virtual: bool):
        super().__init__()
        self.virtual, self.eps = virtual, bn.eps
        self.weight, self.bias = bn.weight, bn.bias
        self.capturing = False
        self.ref: tuple[Tensor, Tensor] | None = None  # (mean, mean of squares) per channel

    def forward(self, h: Tensor) -> Tensor:
        per_channel = [0, *range(2, h.dim())]  # statistics per channel: over the batch and the positions
        if self.capturing:  # the reference batch: its own statistics, kept for the real input
            self.ref = (h.mean(per_channel), (h * h).mean(per_channel))
            mean, sq = self.ref
        elif self.ref is None:
            raise RuntimeError("reference norm used before its reference batch ran")
        elif self.virtual:  # the reference batch together with the sample itself, per sample
            positions = list(range(2, h.dim()))
            own_mean = h.mean(positions) if positions else h  # [N, C]
            own_sq = (h * h).mean(positions) if positions else h * h
            r = float(REF_BATCH)
            mean, sq = (r * self.ref[0] + own_mean) / (r + 1), (r * self.ref[1] + own_sq) / (r + 1)
        else:
            mean, sq = self.ref
        var = (sq - mean * mean).clamp(min=0.0)
        y = (h - _expand(mean, h)) / (_expand(var, h) + self.eps).sqrt()
        return y * _expand(self.weight, h) + _expand(self.bias, h)


def _expand(t: Tensor, like: Tensor) -> Tensor:
    """Per-channel [C] or per-sample-and-channel [N, C] values, shaped to broadcast against [N, C, ...]."""
    lead = [1, -1] if t.dim() == 1 else list(t.shape)
    return t.reshape(*lead, *[1] * (like.dim() - 2))


class ReferenceNormG(nn.Module):
    """G with every BatchNorm replaced by a ReferenceNorm, and its reference batch ``z_ref``."""

    def __init__(self, G: nn.Module, z_dim: int, virtual: bool):
        super().__init__()
        replaced = _replace_bn_(G, virtual)
        if not replaced:
            raise ValueError("this generator has no batch norm to replace (reference/virtual BN need one)")
        self.net = G
        self.register_buffer("z_ref", torch.zeros(REF_BATCH, z_dim))

    def forward(self, z: Tensor) -> Tensor:
        norms = [m for m in self.net.modules() if isinstance(m, ReferenceNorm)]
        for m in norms:
            m.capturing = True
        try:
            self.net(self.z_ref)
        finally:
            for m in norms:
                m.capturing = False
        return self.net(z)


def _replace_bn_(module: nn.Module, virtual: bool) -> int:
    n = 0
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, ReferenceNorm(child, virtual))
            n += 1
        else:
            n += _replace_bn_(child, virtual)
    return n
