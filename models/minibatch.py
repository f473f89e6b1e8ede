"""D options that let the discriminator compare a sample with the rest of its batch (the remedy
for mode collapse of Salimans et al. 2016, Sec. 3.2: a D that looks at one sample at a time cannot
tell that G puts every sample on the same point). Each is a layer placed before D's final linear
layer (every registered logit D ends in ``nn.Linear(F, 1)``), on the F features it receives; the
head then reads F + extra features, its new weights starting at 0 so that the initial D computes
what the plain D would.

``discrimination`` (minibatch discrimination, Salimans et al. 2016, Sec. 3.2): with a learned
tensor T in R^{F x B x C}, M_i = f(x_i) T in R^{B x C} and, for every kernel b,

    c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1),    o(x_i)_b = sum_{j != i} c_b(x_i, x_j)

the B numbers o(x_i) are appended to f(x_i). The paper writes the sum over all j; its code
(improved-gan, nn.py MinibatchLayer) leaves j = i out by adding 1e6 to the diagonal distances, as
here (the two differ by the constant c_b(x_i, x_i) = 1). B = 100 kernels of dimension C = 5, the
paper's code. D sees real and fake batches apart, as there.

``stddev`` (the minibatch standard-deviation layer, Karras et al. 2018, Sec. 3, its cheap variant):
the batch is split into groups of G = 4 samples (strided, n = g M + m, as in the paper's code); for
each group, the standard deviation of every feature over its G samples, averaged over the features,
is one number appended to each of the group's samples. Karras apply it to the 4x4 feature maps of
the last block; here it is applied to the flat features before the head (the same statistic, the
spatial positions being features), so that it works for every architecture.
"""
from __future__ import annotations

import torch
from torch import nn

from models import MINIBATCH as KINDS  # noqa: E402  (listed where importing needs no torch)
MBD_KERNELS, MBD_DIM = 100, 5  # Salimans et al.'s code (improved-gan, train_cifar_minibatch_discrimination.py)
GROUP = 4  # Karras et al. 2018 (progressive_growing_of_gans, networks.py: mbstd_group_size = 4)


class MinibatchStddev(nn.Module):
    extra = 1

    def __init__(self, features: int, group: int = GROUP):
        super().__init__()
        self.group = group

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, f = h.shape
        g = min(self.group, n)
        if n % g:  # a batch that does not split into groups: one group (the statistic stays defined)
            g = n
        y = h.reshape(g, n // g, f)
        y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt().mean(1)  # [n // g]: one number per group
        return torch.cat([h, y.repeat(g)[:, None]], dim=1)


class MinibatchDiscrimination(nn.Module):
    def __init__(self, features: int, kernels: int = MBD_KERNELS, dim: int = MBD_DIM):
        super().__init__()
        self.kernels, self.dim = kernels, dim
        self.extra = kernels
        self.T = nn.Parameter(torch.randn(features, kernels * dim) * 0.05)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        m = (h @ self.T).reshape(h.shape[0], self.kernels, self.dim)  # [n, B, C]
        l1 = (m[:, None] - m[None]).abs().sum(-1)  # [n, n, B]: ||M_i,b - M_j,b||_1
        return torch.cat([h, torch.exp(-l1).sum(1) - 1.0], dim=1)  # o(x_i)_b: j != i (exp(-0) = 1 left out)


LAYERS = {"stddev": MinibatchStddev, "discrimination": MinibatchDiscrimination}


def add_minibatch_layer_(net: nn.Sequential, kind: str) -> nn.Sequential:
    """Put the ``kind`` layer before ``net``'s final ``nn.Linear(F, 1)``, widening that head to
    F + extra inputs whose weights start at 0; ``net`` is changed in place and returned."""
    if kind == "none":
        return net
    if not isinstance(net, nn.Sequential) or not len(net):
        raise ValueError(f"minibatch {kind}: D must be an nn.Sequential ending in a Linear(F, 1), got {type(net).__name__}")
    head = net[-1]
    if not (isinstance(head, nn.Linear) and head.out_features == 1):
        raise ValueError(f"minibatch {kind}: D must end in a Linear(F, 1), got {type(head).__name__}")
    layer = LAYERS[kind](head.in_features)
    wide = nn.Linear(head.in_features + layer.extra, 1, bias=head.bias is not None)
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[:, : head.in_features] = head.weight
        if head.bias is not None:
            wide.bias.copy_(head.bias)
    net[-1] = nn.Sequential(layer, wide)
    return net
