"""`dcgan`: the all-convolutional DCGAN of Radford et al. 2016, sized to the data.

The image is halved k times (4x4 stride-2 convs, padding 1) while height and width stay even
and at least 4 after halving, at most MAX_HALVINGS times: 8 -> k=1 (4x4 base), 16 -> 2,
28 -> 2 (7x7 base), 32 -> 3, 64 -> 4. Widths are 64 at the image end, doubling per layer.

D: conv C->64 -> lReLU(0.2) -> [conv 64*2^(i-1) -> 64*2^i -> [norm] -> lReLU] x (k-1)
   -> flatten -> linear 1  (norm on every conv but the first, as in the paper).
G: linear z -> 64*2^(k-1) x base -> BN -> ReLU -> [deconv halving the width -> BN -> ReLU] x (k-1)
   -> deconv -> C -> tanh  (G mirrors D).
BEGAN D: encoder = D's convs -> linear 64 code; decoder = G's layers from the code, with D's norm.
Init as in the paper: conv/linear weights N(0, 0.02), BN weights N(1, 0.02), biases 0.
Tanh output: images live in [-1, 1].
"""

from __future__ import annotations

from torch import nn

from models import DataSpec
from models.layers import incompatible, init_normal_, norm2d

BASE_CH = 64
MAX_HALVINGS = 4


def _init(net: nn.Module) -> nn.Module:
    return init_normal_(net, std=0.02, bn_weight_std=0.02)


class DCGAN:
    """Images with even height and width >= 8 (8, 16, 28, 32, 64, ...)."""

    def __init__(self, spec: DataSpec):
        h, w = spec.shape[1:] if spec.kind == "images" else (0, 0)
        k = 0
        while k < MAX_HALVINGS and h % 2 == 0 and w % 2 == 0 and h >= 8 and w >= 8:
            h, w, k = h // 2, w // 2, k + 1
        if k == 0:
            raise incompatible("dcgan", "images with even height and width of at least 8", spec)
        self.c = spec.shape[0]
        self.widths = [BASE_CH * 2**i for i in range(k)]  # image end -> base
        self.base = (self.widths[-1], h, w)
        self.flat = self.widths[-1] * h * w

    def _down(self, norm: str) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(self.c, BASE_CH, 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(self.widths, self.widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), norm2d(norm, c_out), nn.LeakyReLU(0.2)]
        return layers + [nn.Flatten()]

    def _up(self, n_in: int, norm: str) -> nn.Module:
        layers = [nn.Linear(n_in, self.flat), nn.Unflatten(1, self.base)]
        layers += [norm2d(norm, self.widths[-1]), nn.ReLU()]
        for c_in, c_out in zip(self.widths[:0:-1], self.widths[-2::-1]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), norm2d(norm, c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(BASE_CH, self.c, 4, 2, 1), nn.Tanh()]
        return _init(nn.Sequential(*layers))

    def generator(self, z_dim: int) -> nn.Module:
        return self._up(z_dim, "batch")

    def discriminator(self, norm: str) -> nn.Module:
        return _init(nn.Sequential(*self._down(norm), nn.Linear(self.flat, 1)))

    def encoder(self, norm: str, code_dim: int) -> nn.Module:
        return _init(nn.Sequential(*self._down(norm), nn.Linear(self.flat, code_dim)))

    def decoder(self, norm: str, code_dim: int) -> nn.Module:
        return self._up(code_dim, norm)
