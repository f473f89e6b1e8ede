"""A metric of your own, as a plugin: the energy distance of Szekely & Rizzo (2013),

    E(P, Q) = 2 E||X - Y|| - E||X - X'|| - E||Y - Y'||,   X, X' ~ P and Y, Y' ~ Q independent,

between the empirical distributions of the first n generated and real feature vectors (the V-statistic:
every pair, the zero diagonal included; n = min(2,000, both sides)). E is zero only for equal
distributions, so it sees modes; lower is better. In 1-D it is twice the squared L2 distance of the
CDFs: scipy.stats.energy_distance(u, v) ** 2 (tests/test_plugins.py checks that).

    bench run --plugin examples/energy_distance.py --dataset ring8 --losses ns,hinge --metrics default,energy
    bench report --plugin examples/energy_distance.py STUDY --metric energy
"""
import torch

from bench.metrics import register_metric

N = 2000


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double(), y.double()
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def energy(gen, ref, ctx) -> dict:
    n = min(N, len(gen.features), len(ref.features))
    ctx.provenance.update(energy_samples=n)
    return {"energy": energy_distance(gen.features[:n], ref.features[:n])}


# needs="features": gen.features and the real side's ref.features, through the dataset's extractor
register_metric("energy", energy, needs="features", keys=("energy",))
