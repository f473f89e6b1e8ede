"""A dataset of your own, as a plugin: 16 Gaussians on a ring, twice ring8's modes at the same spacing
of the ring (std 0.02, radius 2: neighbouring centres 0.78 apart, 13 std).

    bench run --plugin examples/circle16.py --dataset circle16 --losses ns,wgan-gp --budget 4 --seeds 5

Its registration carries everything the harness needs: the data kind (2-D points: the mlp arch, the
mixtures-2d space, W1 as the ranking metric and the point metrics are the kind's defaults), the
training length, and the mode definition (a mixture: a sample within 3 std of a centre is in its
mode), which makes `modes`, `hq_fraction` and `mode_kl` part of every score.
"""
import math

import torch

from bench import datasets

MODES, RADIUS, STD = 16, 2.0, 0.02


# steps: ring8's length, a guess here; measure your own with benchmarks/default_lengths.py
@datasets.register("circle16", kind="points", steps=2000, modes=datasets.Modes("mixture"),
                   summary="16 Gaussians (std 0.02) on a circle of radius 2 (a plugin: examples/circle16.py)")
def circle16(req: datasets.Request) -> datasets.Dataset:
    angle = torch.arange(MODES, dtype=torch.float64) * (2 * math.pi / MODES)
    centres = (RADIUS * torch.stack([angle.cos(), angle.sin()], 1)).float()
    return datasets.Dataset(name="circle16", kind="points", shape=(2,), split=req.split, centres=centres, std=STD)
