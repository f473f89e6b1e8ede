"""Class-conditional G and D for labelled data: conditional batch norm in G, a projection
discriminator (Miyato & Koyama 2018, "cGANs with Projection Discriminator", ICLR).

- **Conditional batch norm** (de Vries et al. 2017; Miyato & Koyama 2018, Sec. 4): every batch norm
  of G normalises without its own affine parameters and then applies a per-class scale and shift,

      CBN(h, y) = gamma_y * (h - mu_B) / sqrt(var_B + eps) + beta_y,

  gamma_y and beta_y rows of two learned embeddings (initialised to 1 and 0: at the start every class
  gets the plain batch norm).
- **Projection discriminator** (Miyato & Koyama 2018, Eq. 3): with phi(x) the features D's final
  linear layer psi reads,

      D(x, y) = psi(phi(x)) + <V_y, phi(x)>,

  V a learned class embedding (Glorot-uniform initialised, as the authors' code; with ``--d-norm
  spectral`` it is spectrally normalised too, as their ``sn_embed``).

G and D keep the signatures the training loop uses, G(z) and D(x): the labels of the batch at hand
are set on a shared ``Labels`` holder (``bench.train.Trainee`` draws a labelled real batch at the
start of each step and generates the fakes for the same labels, so every D call of the step,
penalties and feature matching included, sees consistent labels). Outside training G is called
as G(z, y) (``sample_labels`` draws y from the training data's class frequencies, stored in G).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class Labels:
    """The labels of the batch G and D are computing on (int64 [N]); None outside a step."""

    def __init__(self) -> None:
        self.y: Tensor | None = None

    def get(self, n: int) -> Tensor:
        if self.y is None or self.y.shape[0] != n:
            got = "none" if self.y is None else f"{self.y.shape[0]}"
            raise RuntimeError(f"conditional net called on a batch of {n} with {got} labels set (call G(z, y))")
        return self.y


class ConditionalBatchNorm(nn.Module):
    """A batch norm without affine parameters, then gamma_y x + beta_y (per class y)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, n_classes: int, labels: Labels):
        super().__init__()
        self.bn = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=False)
        self.gamma = nn.Embedding(n_classes, bn.num_features)
        self.beta = nn.Embedding(n_classes, bn.num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)
        self.labels = labels

    def forward(self, h: Tensor) -> Tensor:
        y = self.labels.get(h.shape[0])
        shape = (h.shape[0], -1) + (1,) * (h.dim() - 2)
        return self.gamma(y).view(shape) * self.bn(h) + self.beta(y).view(shape)


class ConditionalG(nn.Module):
    """G with conditional batch norms; G(z, y), or G(z) inside a training step (labels set).
    ``class_probs``: the training data's class frequencies, where ``sample_labels`` draws from."""

    def __init__(self, G: nn.Module, n_classes: int, labels: Labels):
        super().__init__()
        if not _replace_bn_(G, n_classes, labels):
            raise ValueError("a conditional G puts the class into its batch norms, and this generator has none")
        self.net = G
        self.labels = labels
        self.n_classes = n_classes
        self.register_buffer("class_probs", torch.full((n_classes,), 1.0 / n_classes))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is not None:
            self.labels.y = y
        return self.net(z)


class ProjectionHead(nn.Module):
    """psi(h) + <V_y, h>: D's final layer psi with the class projection added (Miyato & Koyama Eq. 3)."""

    def __init__(self, head: nn.Module, features: int, n_classes: int, labels: Labels):
        super().__init__()
        self.head = head
        self.embed = nn.Embedding(n_classes, features)
        nn.init.xavier_uniform_(self.embed.weight)
        self.labels = labels

    def forward(self, h: Tensor) -> Tensor:
        y = self.labels.get(h.shape[0])
        return self.head(h) + (self.embed(y) * h).sum(dim=1, keepdim=True)


def make_conditional(G: nn.Module, D: nn.Module, n_classes: int, spectral: bool) -> tuple[nn.Module, nn.Module]:
    """(conditional G, D with a projection head), sharing one ``Labels``. D must be a logit D whose
    net ends in its final linear layer (every registered arch; the minibatch layers' Sequential too)."""
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"a conditional GAN needs labelled data with >= 2 classes, got {n_classes!r}")
    labels = Labels()
    net = getattr(D, "net", None)
    if not isinstance(net, nn.Sequential) or not len(net):
        raise ValueError("a projection discriminator needs a logit D (this loss's D is an autoencoder)")
    head = net[-1]
    last = head[-1] if isinstance(head, nn.Sequential) else head  # behind a minibatch layer: its widened head
    if not isinstance(last, nn.Linear) or last.out_features != 1:
        raise ValueError(f"a projection discriminator needs D to end in a Linear(F, 1), got {type(last).__name__}")
    # phi(x): what D's head receives (before a minibatch layer appends its statistics)
    features = last.in_features - (head[0].extra if isinstance(head, nn.Sequential) else 0)
    proj = ProjectionHead(head, features, n_classes, labels)
    if spectral:
        spectral_norm(proj.embed)
    net[-1] = proj
    return ConditionalG(G, n_classes, labels), D


def sample_labels(G: nn.Module, n: int, generator: torch.Generator | None = None) -> Tensor | None:
    """n labels from G's class frequencies (None for an unconditional G), on the CPU."""
    probs = getattr(G, "class_probs", None)
    if probs is None:
        return None
    return torch.multinomial(probs.detach().float().cpu(), n, replacement=True, generator=generator)


def _replace_bn_(module: nn.Module, n_classes: int, labels: Labels) -> int:
    n = 0
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, ConditionalBatchNorm(child, n_classes, labels))
            n += 1
        else:
            n += _replace_bn_(child, n_classes, labels)
    return n
