"""``identity``: the flattened input as float features.

For 2-D points the features are the points themselves (FID is then the Frechet distance between two
Gaussians fitted in data space); for images they are the raw pixel values 0..255 of every channel.
"""
from __future__ import annotations

import torch
import torch_fidelity

from bench.errors import UsageError
from bench.metrics.extractor import Extractor

NAME = "identity"


class FeatureExtractorIdentity(torch_fidelity.FeatureExtractorBase):
    """x [N, ...] (uint8 images or float points) -> x.reshape(N, -1) as float32, feature ``'flat'``."""

    def __init__(self, name: str, features_list: list[str], **kwargs):
        super().__init__(name, features_list)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x.reshape(x.shape[0], -1).to(torch.float32),)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("flat",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "flat"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)


def build(weights: str | None = None, device="cpu") -> Extractor:
    if weights is not None:
        raise UsageError("the identity extractor has no weights; drop --fe-weights")
    module = FeatureExtractorIdentity(NAME, ["flat"]).eval()
    return Extractor(NAME, module, "flat", None, None, "none", device=torch.device(device))
