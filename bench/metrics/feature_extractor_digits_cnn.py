"""``digits-cnn``: a small classifier of scikit-learn's 8x8 digits, trained here on first use.

Architecture: conv3x3(1->16) ReLU, conv3x3(16->32) ReLU, maxpool 2, FC 512->64 ReLU (feature
``'penultimate'``, 64-d: FID, KID, precision/recall, density/coverage), FC 64->10 (``'logits'``: IS,
class coverage). Inputs: uint8 [N, C, H, W]; channels are averaged to gray, images of another size are
resized to 8x8 (bilinear, antialiased), then scaled to [-1, 1] like the training data.
``digits-cnn-channels`` (stacked-digits' default) runs the same network on each channel alone and
concatenates the features.

Training (deterministic: seed 0, one thread, deterministic algorithms): Adam 1e-3, 15 epochs, batch
64, on all 1,797 images with their labels (digits has no held-out split). The weights are cached at
``$GAN_BENCH_CACHE/extractors/digits-cnn-<key>.pt``, the key hashing the training images, the
scikit-learn version (which fixes the labels) and the hyperparameters; provenance records the sha256
of the weights themselves.
"""
from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn

from bench.errors import UsageError
from bench.io import atomic_torch_save
from bench.metrics.extractor import Extractor, cache_root, state_dict_sha256

NAME = "digits-cnn"
FORMAT = "gan-bench/digits-cnn/1"
SIDE = 8
HPARAMS = {"arch": "conv16-conv32-pool-fc64", "epochs": 15, "batch_size": 64, "lr": 1e-3, "seed": 0, "version": 1}
log = logging.getLogger("bench.metrics")


class DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return h, self.head(h)


def prepare(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, 1, 8, 8] in [-1, 1]: channel mean, resize to 8x8."""
    x = x.float().mean(1, keepdim=True)
    if x.shape[-2:] != (SIDE, SIDE):
        x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False, antialias=True)
    return x / 127.5 - 1


class FeatureExtractorDigitsCNN(torch_fidelity.FeatureExtractorBase):
    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                 **kwargs):
        super().__init__(name, features_list)
        ck = load_weights(feature_extractor_weights_path)
        self.net = DigitsNet()
        self.net.load_state_dict(ck["state_dict"])
        self.class_hist = ck["class_hist"]  # the training labels' class frequencies, float64 [10]
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, logits = self.net(prepare(x))
        feats = {"penultimate": h, "logits": logits}
        return tuple(feats[k] for k in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, SIDE, SIDE, dtype=torch.uint8)


class FeatureExtractorDigitsCNNChannels(FeatureExtractorDigitsCNN):
    """``digits-cnn-channels``: the same network on each channel alone, the C penultimate vectors
    concatenated ([N, 64 C]). For stacked-digits (one digit per channel) FID/KID/PR then see each
    channel's digit and which digits occur together; the channel mean of ``digits-cnn`` blurs three
    digits into one and cannot tell a generator that repeats one triple from one that varies.
    No logits: a 3-channel image has 1,000 classes, not 10 (class modes use ``digits-cnn`` per channel)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = torch.cat([self.net(prepare(x[:, c:c + 1]))[0] for c in range(x.shape[1])], dim=1)
        return (h,)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "penultimate"


CHANNELS = "digits-cnn-channels"


def _build(cls, name: str, logits: str | None, resize: str, weights: str | None, device) -> Extractor:
    module = cls(name, list(cls.get_provided_features_list()), weights).to(device)
    sha = state_dict_sha256(module.net.state_dict())
    return Extractor(name, module, "penultimate", logits, sha, f"{resize}; bilinear-antialias-8 when not 8x8",
                     device=torch.device(device))


def build(weights: str | None = None, device="cpu") -> Extractor:
    return _build(FeatureExtractorDigitsCNN, NAME, "logits", "channel mean to gray", weights, device)


def build_channels(weights: str | None = None, device="cpu") -> Extractor:
    return _build(FeatureExtractorDigitsCNNChannels, CHANNELS, None, "each channel alone, features concatenated",
                  weights, device)


# -- weights: trained on first use, cached by content -----------------------------------------
def _training_images() -> torch.Tensor:
    from bench import datasets

    return datasets.get("digits").uint8()  # uint8 [1797, 1, 8, 8], scikit-learn's order


def weights_path() -> Path:
    images = _training_images()
    h = hashlib.sha256(images.numpy().tobytes())
    h.update(json.dumps({"sklearn": version("scikit-learn"), **HPARAMS}, sort_keys=True).encode())
    return cache_root() / "extractors" / f"{NAME}-{h.hexdigest()[:16]}.pt"


def load_weights(path: str | None = None) -> dict:
    """{"state_dict", "class_hist"} from ``path``, else from the cache (training on a miss)."""
    if path is not None:
        return _read(Path(path), strict=True)
    p = weights_path()
    ck = _read(p, strict=False)
    if ck is None:
        ck = train()
        try:
            atomic_torch_save(p, ck)
        except OSError as e:  # a read-only cache costs time, not correctness
            log.warning("could not cache %s weights at %s (%s)", NAME, p, e)
    return ck


def _read(path: Path, strict: bool) -> dict | None:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if not (isinstance(ck, dict) and ck.get("format") == FORMAT):
            raise ValueError(f"not a {NAME} weights file (format {FORMAT})")
        DigitsNet().load_state_dict(ck["state_dict"])
        return ck
    except FileNotFoundError:
        if strict:
            raise UsageError(f"{NAME} weights not found: {path}") from None
        return None
    except Exception as e:
        if strict:
            raise UsageError(f"cannot use {path} as {NAME} weights: {str(e).strip().splitlines()[0]}") from None
        log.warning("%s weights cache %s unreadable (%s); retraining", NAME, path, e)
        return None


@contextmanager
def _deterministic():
    """Own RNG, one thread, deterministic kernels; everything restored afterwards."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(det)


def train() -> dict:
    """Train DigitsNet on all 1,797 digits (about 4 s on one CPU thread)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: never downloads

    x = prepare(_training_images())
    y = torch.from_numpy(load_digits().target).long()
    with _deterministic():
        torch.manual_seed(HPARAMS["seed"])
        net = DigitsNet()
        opt = torch.optim.Adam(net.parameters(), lr=HPARAMS["lr"])
        g = torch.Generator().manual_seed(HPARAMS["seed"])
        for _ in range(HPARAMS["epochs"]):
            for idx in torch.randperm(len(x), generator=g).split(HPARAMS["batch_size"]):
                loss = F.cross_entropy(net(x[idx])[1], y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(x)[1].argmax(1) == y).float().mean().item()
    hist = torch.bincount(y, minlength=10).double() / len(y)
    return {"format": FORMAT, "state_dict": net.state_dict(), "class_hist": hist,
            "meta": json.dumps({**HPARAMS, "train_accuracy": acc, "sklearn": version("scikit-learn")})}

