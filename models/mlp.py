"""`mlp`: two-hidden-layer MLPs for low-dimensional point data (the 2-D mixtures of Gaussians
used in GAN mode-collapse studies, e.g. Metz et al. 2017, Unrolled GANs).

G: z -> 128 -> ReLU -> 128 -> ReLU -> d (linear output; points are unbounded). G has no BN here.
D: d -> 128 -> [norm] -> LeakyReLU(0.2) -> 128 -> [norm] -> LeakyReLU(0.2) -> 1.
BEGAN autoencoder D: d -> 128 -> [norm] -> LeakyReLU -> 64 code -> 128 -> [norm] -> LeakyReLU -> d.
PyTorch's default init.
"""

from __future__ import annotations

from torch import nn

from models import DataSpec
from models.layers import incompatible, norm1d

HIDDEN = 128


def _hidden(n_in: int, norm: str) -> list[nn.Module]:
    return [nn.Linear(n_in, HIDDEN), norm1d(norm, HIDDEN), nn.LeakyReLU(0.2)]


class MLP:
    """Points of shape (d,) (2 for the standard 2-D benchmarks)."""

    def __init__(self, spec: DataSpec):
        if spec.kind != "points":
            raise incompatible("mlp", "points of shape (d,), e.g. (2,)", spec)
        (self.dim,) = spec.shape

    def generator(self, z_dim: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(z_dim, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, self.dim),
        )  # fmt: skip

    def discriminator(self, norm: str) -> nn.Module:
        return nn.Sequential(*_hidden(self.dim, norm), *_hidden(HIDDEN, norm), nn.Linear(HIDDEN, 1))

    def encoder(self, norm: str, code_dim: int) -> nn.Module:
        return nn.Sequential(*_hidden(self.dim, norm), nn.Linear(HIDDEN, code_dim))

    def decoder(self, norm: str, code_dim: int) -> nn.Module:
        return nn.Sequential(*_hidden(code_dim, norm), nn.Linear(HIDDEN, self.dim))
