"""`resnet`: the SNGAN ResNets (Miyato et al. 2018, appendix B, CIFAR-10 models; after
Gulrajani et al. 2017), sized to square power-of-two images.

G: linear z -> ch x 4 x 4 -> UpBlock x log2(S/4) -> BN -> ReLU -> conv3x3 -> C -> tanh.
   UpBlock: BN, ReLU, nearest upsample x2, conv3x3, BN, ReLU, conv3x3; shortcut upsample, conv1x1.
D: OptimizedBlock (conv3x3, ReLU, conv3x3, avgpool; shortcut avgpool, conv1x1), DownBlocks
   ([norm], ReLU, conv3x3, [norm], ReLU, conv3x3, avgpool; shortcut conv1x1, avgpool) down to
   8x8 (4x4 for 8 px), then two blocks without pooling, ReLU, global sum pooling, linear 1.
   At 32 px this is exactly SNGAN's CIFAR D (down, down, same, same).
BEGAN D: encoder = D's blocks -> ReLU -> flatten -> linear 64 code; decoder = G's layers from
   the code, with D's norm in place of BN.
Width `ch` of G and D per resolution is WIDTH: 128 at 32 px as SNGAN's D (its G uses 256),
64 elsewhere to keep CPU cost down. Init as SNGAN's code: xavier_uniform, gain sqrt(2) in residual convs, 1 elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models import DataSpec
from models.layers import RELU_GAIN, incompatible, norm2d, xavier

WIDTH: dict[int, int] = {8: 64, 16: 64, 32: 128, 64: 64}


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class SumPool(nn.Module):
    """Global sum pooling over H and W: [N, C, H, W] -> [N, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))


def _conv(c_in: int, c_out: int, k: int = 3, gain: float = RELU_GAIN) -> nn.Conv2d:
    return xavier(nn.Conv2d(c_in, c_out, k, 1, k // 2), gain)


class UpBlock(nn.Module):
    """G block: doubles the resolution. `norm` is BN in G, D's norm in the BEGAN decoder."""

    def __init__(self, ch: int, norm: str = "batch"):
        super().__init__()
        self.n1, self.c1 = norm2d(norm, ch), _conv(ch, ch)
        self.n2, self.c2 = norm2d(norm, ch), _conv(ch, ch)
        self.sc = _conv(ch, ch, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(_upsample(F.relu(self.n1(x))))
        h = self.c2(F.relu(self.n2(h)))
        return h + self.sc(_upsample(x))


class DownBlock(nn.Module):
    """D block: pre-activation residual block, optionally halving the resolution (avgpool 2).
    `first` makes it SNGAN's OptimizedBlock: no activation before the first conv, shortcut
    pools before its 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, norm: str, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.n1 = nn.Identity() if first else norm2d(norm, c_in)
        self.c1, self.n2, self.c2 = _conv(c_in, c_out), norm2d(norm, c_out), _conv(c_out, c_out)
        self.sc = _conv(c_in, c_out, 1, gain=1.0) if (c_in != c_out or down) else nn.Identity()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x if self.first else F.relu(self.n1(x)))
        h = self._pool(self.c2(F.relu(self.n2(h))))
        return h + (self.sc(self._pool(x)) if self.first else self._pool(self.sc(x)))


class ResNet:
    """Square images of side 8, 16, 32 or 64."""

    def __init__(self, spec: DataSpec):
        c, h, w = spec.shape if spec.kind == "images" else (0, 0, 0)
        if h != w or h not in WIDTH:
            raise incompatible("resnet", "square images of side 8, 16, 32 or 64", spec)
        self.c, self.size, self.ch = c, h, WIDTH[h]
        self.n_up = (h // 4).bit_length() - 1  # 4x4 -> size
        self.end = min(h // 2, 8)  # D's final resolution

    def _blocks(self, norm: str) -> list[nn.Module]:
        ch, s = self.ch, self.size // 2
        blocks: list[nn.Module] = [DownBlock(self.c, ch, norm, first=True)]
        while s > self.end:
            blocks.append(DownBlock(ch, ch, norm))
            s //= 2
        return blocks + [DownBlock(ch, ch, norm, down=False) for _ in range(2)] + [nn.ReLU()]

    def _up(self, n_in: int, norm: str) -> nn.Module:
        ch = self.ch
        return nn.Sequential(
            xavier(nn.Linear(n_in, ch * 16)), nn.Unflatten(1, (ch, 4, 4)),
            *[UpBlock(ch, norm) for _ in range(self.n_up)],
            norm2d(norm, ch), nn.ReLU(), _conv(ch, self.c, gain=1.0), nn.Tanh(),
        )  # fmt: skip

    def generator(self, z_dim: int) -> nn.Module:
        return self._up(z_dim, "batch")

    def discriminator(self, norm: str) -> nn.Module:
        return nn.Sequential(*self._blocks(norm), SumPool(), xavier(nn.Linear(self.ch, 1)))

    def encoder(self, norm: str, code_dim: int) -> nn.Module:
        flat = self.ch * self.end**2
        return nn.Sequential(*self._blocks(norm), nn.Flatten(), xavier(nn.Linear(flat, code_dim)))

    def decoder(self, norm: str, code_dim: int) -> nn.Module:
        return self._up(code_dim, norm)

