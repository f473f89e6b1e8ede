"""``inception-v3-compat``: torch-fidelity's own InceptionV3 (the standard for FID, KID and IS).

It is torch-fidelity's ``FeatureExtractorInceptionV3`` under torch-fidelity's own registered name:
features ``'2048'`` (pool3: FID, KID, precision/recall, density/coverage) and ``'logits_unbiased'``
(IS). Images go in as uint8 at the dataset's resolution, grayscale tiled to 3 channels (Lucic et al.
2018); torch-fidelity resizes them to 299x299 with its TF1-compatible bilinear filter.

Nothing is ever downloaded. Weights (``WEIGHTS_FILE``, the TF Inception of Szegedy et al. 2016
converted by torch-fidelity) come from, in order: the ``weights`` argument (``--fe-weights``), the
environment variable ``GAN_BENCH_INCEPTION_WEIGHTS``, torch's hub cache
(``$TORCH_HOME/hub/checkpoints/WEIGHTS_FILE``). The file is first read with ``weights_only=True``: a
file holding anything but tensors is refused before torch-fidelity loads it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch_fidelity import FeatureExtractorInceptionV3
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from bench.errors import UsageError
from bench.metrics.extractor import Extractor, state_dict_sha256

NAME = "inception-v3-compat"  # registered by torch-fidelity itself
ENV = "GAN_BENCH_INCEPTION_WEIGHTS"
WEIGHTS_FILE = URL_INCEPTION_V3.rsplit("/", 1)[1]  # weights-inception-2015-12-05-6726825d.pth
RESIZE = "torch-fidelity-bilinear-299"


def hub_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def resolve_weights(weights: str | os.PathLike | None = None) -> Path:
    """The weights file to use; a one-line UsageError saying what to put where if there is none."""
    for given, what in ((weights, "--fe-weights"), (os.environ.get(ENV) or None, ENV)):
        if given is not None:
            p = Path(given).expanduser()
            if not p.is_file():
                raise UsageError(f"{what}: Inception weights file not found: {p}")
            return p
    p = hub_path()
    if p.is_file():
        return p
    raise UsageError(f"{NAME} needs torch-fidelity's Inception weights {WEIGHTS_FILE} (nothing is downloaded): "
                     f"put it at {p}, or pass --fe-weights PATH, or set {ENV}=PATH")


def build(weights: str | None = None, device="cpu") -> Extractor:
    path = resolve_weights(weights)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # refuses pickled code
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ValueError("not a state dict")
        del sd
        module = FeatureExtractorInceptionV3(NAME, ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path))
        sha = state_dict_sha256(module.state_dict())
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"cannot use {path} as Inception weights: {first[:200]}") from None
    return Extractor(NAME, module.to(device), "2048", "logits_unbiased", sha, RESIZE, rgb=True,
                     device=torch.device(device))


class _RandomInception(FeatureExtractorInceptionV3):
    def load_state_dict(self, state_dict, strict=True, assign=False):
        return super().load_state_dict(state_dict, strict=False)


def write_random_inception_weights(path: str | os.PathLike, seed: int = 0) -> Path:
    """Save randomly initialized Inception weights in torch-fidelity's format (tests, benchmarks).

    Convolutions get He-normal weights so activations neither vanish nor explode over 90 layers.
    The global RNG is left untouched.
    """
    with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        net = _RandomInception(NAME, ["2048"], feature_extractor_weights_path=str(empty))
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    torch.save(sd, path)
    return Path(path)
