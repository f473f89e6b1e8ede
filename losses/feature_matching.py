"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.1): the
generator matches the expected features of an intermediate layer f of D on real data,

    L_FM = || E_x f(x) - E_z f(G(z)) ||_2^2

(the batch means standing for the expectations; the paper's code, improved-gan's train_cifar_feature_matching.py,
averages the squares over the F features instead of summing them, a factor 1/F that the weight w
absorbs), instead of maximising D's output: G no longer
chases what the current D finds most real, which Salimans et al. found more stable. Here it is the
G objective alone (``fm_alone``), or added to the loss's own with a weight (``feature_matching``):

    L_G' = L_G + w L_FM        or        L_G' = w L_FM

f is the input of D's k-th weight layer from the end (``fm_layer`` = k; 1: the features D's final
linear layer reads), flattened per sample, where the weight layers are D's Linear and Conv modules
in the order D registers them (its forward order for every registered architecture). D is frozen
during G's step, so only G moves toward the real features.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from torch import Tensor, nn

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def weight_layers(D: nn.Module) -> list[nn.Module]:
    return [m for m in D.modules() if isinstance(m, WEIGHT_LAYERS)]


def feature_layer(D: nn.Module, k: int) -> nn.Module:
    """D's k-th weight layer from the end; ValueError naming how many there are."""
    layers = weight_layers(D)
    if not (isinstance(k, int) and 1 <= k <= len(layers)):
        raise ValueError(f"fm_layer must be in 1..{len(layers)} (D's weight layers from the end), got {k!r}")
    return layers[-k]


@contextmanager
def tap(layer: nn.Module) -> Iterator[list[Tensor]]:
    """While open, every forward of ``layer`` appends its input, flattened per sample, to the list."""
    seen: list[Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].flatten(1)))
    try:
        yield seen
    finally:
        handle.remove()


def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """|| mean_i f(x_i) - mean_j f(G(z_j)) ||^2 (real features detached: only G is moved)."""
    return (real_features.detach().mean(0) - fake_features.mean(0)).pow(2).sum()


def features_and_scores(D: Callable[[Tensor], Tensor], layer: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """D(x) and the input of ``layer`` during that forward."""
    with tap(layer) as seen:
        out = D(x)
    if len(seen) != 1:
        raise RuntimeError(f"feature matching: the chosen layer ran {len(seen)} times in one D forward (expected 1)")
    return out, seen[0]


def combine(g_loss: Tensor, fm: Tensor, weight: float, alone: bool) -> Tensor:
    """L_G + w L_FM, or w L_FM alone."""
    return weight * fm if alone else g_loss + weight * fm

