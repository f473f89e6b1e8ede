"""`infogan`: the InfoGAN-style networks every model shares in Lucic et al. 2018 (compare_gan v1,
after Chen et al. 2016). Shapes for an input (C, H, W); all convs 4x4, stride 2, padding 1.

D: conv 64 -> lReLU(0.2) -> conv 128 -> [norm] -> lReLU -> FC 1024 -> [norm] -> lReLU -> FC 1.
G: FC 1024 -> BN -> ReLU -> FC 128*(H/4)*(W/4) -> BN -> ReLU -> deconv 64 -> BN -> ReLU
   -> deconv C -> tanh.
BEGAN D (compare_gan's BEGAN.py): encoder = D's conv trunk -> FC 64 code; decoder = [norm] ->
   lReLU -> FC 128*(H/4)*(W/4) -> [norm] -> lReLU -> deconv 64 -> [norm] -> lReLU -> deconv C -> tanh.

Lucic et al. end G with a sigmoid on [0, 1] data; tanh on [-1, 1] data is the same model up to
the affine map x -> 2x - 1. Init as compare_gan: weights N(0, 0.02), biases 0, BN weight 1.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from models import DataSpec
from models.layers import incompatible, init_normal_, norm1d, norm2d

FC = 1024


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


class InfoGAN:
    """Images whose height and width are divisible by 4 (28x28, 32x32, 64x64, ...)."""

    def __init__(self, spec: DataSpec):
        if spec.kind != "images" or spec.shape[1] % 4 or spec.shape[2] % 4:
            raise incompatible("infogan", "images with height and width divisible by 4", spec)
        self.c, h, w = spec.shape
        self.base = (128, h // 4, w // 4)  # feature map after the two stride-2 convs
        self.flat = 128 * (h // 4) * (w // 4)

    def _trunk(self, norm: str) -> list[nn.Module]:
        return [
            nn.Conv2d(self.c, 64, 4, 2, 1), _lrelu(),
            nn.Conv2d(64, 128, 4, 2, 1), norm2d(norm, 128), _lrelu(),
            nn.Flatten(),
        ]  # fmt: skip

    def _upsample(self, n_in: int, norm: str, act: Callable[[], nn.Module]) -> list[nn.Module]:
        """FC from n_in features to the base map, then two deconvs back to (C, H, W) and tanh."""
        return [
            nn.Linear(n_in, self.flat), norm1d(norm, self.flat), act(),
            nn.Unflatten(1, self.base),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), norm2d(norm, 64), act(),
            nn.ConvTranspose2d(64, self.c, 4, 2, 1), nn.Tanh(),
        ]  # fmt: skip

    def generator(self, z_dim: int) -> nn.Module:
        net = nn.Sequential(
            nn.Linear(z_dim, FC), nn.BatchNorm1d(FC), nn.ReLU(),
            *self._upsample(FC, "batch", nn.ReLU),
        )  # fmt: skip
        return init_normal_(net)

    def discriminator(self, norm: str) -> nn.Module:
        net = nn.Sequential(
            *self._trunk(norm),
            nn.Linear(self.flat, FC), norm1d(norm, FC), _lrelu(),
            nn.Linear(FC, 1),
        )  # fmt: skip
        return init_normal_(net)

    def encoder(self, norm: str, code_dim: int) -> nn.Module:
        return init_normal_(nn.Sequential(*self._trunk(norm), nn.Linear(self.flat, code_dim)))

    def decoder(self, norm: str, code_dim: int) -> nn.Module:
        net = nn.Sequential(
            norm1d(norm, code_dim), _lrelu(), *self._upsample(code_dim, norm, _lrelu)
        )
        return init_normal_(net)
