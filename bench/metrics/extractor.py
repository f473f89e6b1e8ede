"""What every feature extractor gives the scorer: a torch-fidelity module plus its provenance.

The module is a ``torch_fidelity.FeatureExtractorBase`` (so the same name works in
``torch_fidelity.calculate_metrics(feature_extractor=NAME)``); ``Extractor`` adds the layer used
for FID/KID/PR/density-coverage, the layer of class logits (IS, class coverage), the sha256 of the
weights and how inputs are resized on their way in.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Extractor:
    name: str
    module: torch.nn.Module           # a torch_fidelity.FeatureExtractorBase, in eval mode
    feature_layer: str                # FID, KID, precision/recall, density/coverage
    logits_layer: str | None          # IS and class coverage; None: no classes
    weights_sha256: str | None        # None: no weights (identity)
    resize: str                       # how an input image reaches the network (provenance)
    rgb: bool = False                 # tile 1-channel images to 3 channels first (Inception)
    device: torch.device = torch.device("cpu")

    def __call__(self, x: torch.Tensor, batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Features of ``x`` (uint8 images [N, C, H, W], or points [N, d]) by layer, float32 on CPU."""
        out: dict[str, list[torch.Tensor]] = {k: [] for k in self.module.get_requested_features_list()}
        with torch.no_grad():
            for b in x.split(batch_size):
                if self.rgb and b.dim() == 4 and b.shape[1] == 1:
                    b = b.repeat(1, 3, 1, 1)  # grayscale tiled to 3 channels (Lucic)
                feats = self.module.convert_features_tuple_to_dict(self.module(b.to(self.device)))
                for k, v in feats.items():
                    out[k].append(v.float().cpu())
        return {k: torch.cat(v) for k, v in out.items()}


def state_dict_sha256(sd: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order: the weights' identity."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_root() -> Path:
    """``$GAN_BENCH_CACHE`` (default ``~/.cache/gan-bench``), shared with the dataset cache."""
    from bench.datasets import DEFAULT_CACHE, ENV_CACHE

    return Path(os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser().absolute()
