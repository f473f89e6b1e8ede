"""Pieces the speed benchmarks share: a CelebA-shaped synthetic dataset, a bare training loop, machine info.

``bench-rgb``: random uint8 RGB images (32 or 64 px, 16,384 of them, seeded), registered in-process
as a dataset so that ``bench.train.train`` can run image models at CelebA's and CIFAR's shapes on a
machine without those files. Step times depend on the shapes, not on the pixels.

``bare_loop``: the hand-written PyTorch loop the harness is compared with. It uses the same models
(``models.build``), loss (``losses.get``), batch and hot-path settings as ``bench.train`` (device-resident
uint8 data, channels_last, fused Adam, autocast, torch.compile), and nothing else: no logging, no
NaN check, no checkpoints, no instance-noise or regularizer calls.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

SYNTH = "bench-rgb"
SYNTH_COUNT = 16_384


def register_synthetic() -> None:
    """Register ``bench-rgb`` (idempotent)."""
    from bench import datasets

    if SYNTH in datasets.names():
        return

    @datasets.register(SYNTH, kind="images", resolution=64, resolutions=(64, 32, 16, 28),
                       summary="random pixels, for speed measurements only")
    def _load(req):
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (SYNTH_COUNT, 3, req.resolution, req.resolution), generator=g, dtype=torch.uint8)
        return datasets.images_dataset(SYNTH, req.split, images, note="random pixels, for speed measurements only")


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    line = f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        line += f"; GPU {p.name} ({p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs)"
    return line


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(cfg, steps: int, *, channels_last: bool | None = None, fused: bool | None = None) -> float:
    """Train ``cfg`` (a TrainConfig) for ``steps`` steps with a plain loop; return the loop's seconds.

    ``channels_last``/``fused`` default to what bench.train does on the device (for A/B comparisons).
    """
    import losses
    import models
    from bench import datasets, train as T

    cfg = cfg.resolved()
    device = T.pick_device(cfg.device)
    ds = datasets.get(cfg.dataset, root=cfg.data_root, resolution=cfg.resolution).to(device)
    loss = losses.get(cfg.loss, **cfg.loss_params)
    torch.manual_seed(cfg.seed)
    G, D = models.build(cfg.arch, ds.spec, cfg.z_dim, cfg.d_norm, loss.d_head)
    G, D = G.to(device), D.to(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        if (T.CUDA_CHANNELS_LAST if channels_last is None else channels_last) and T.has_conv(G, D):
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    use_fused = cuda and (T.CUDA_FUSED_ADAM if fused is None else fused)
    graphs = cfg.cuda_graphs
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=use_fused or None,
                             capturable=graphs)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=use_fused or None,
                             capturable=graphs)
    gf, df = (torch.compile(G), torch.compile(D)) if cfg.compile else (G, D)
    B, zd = cfg.batch_size, cfg.z_dim
    if ds.kind == "images":
        imgs = ds.images

        def real_batch():
            return imgs[torch.randint(imgs.shape[0], (B,), device=device)].float() / 127.5 - 1
    else:
        centres, std = ds.centres, ds.std

        def real_batch():
            return centres[torch.randint(centres.shape[0], (B,), device=device)] + std * torch.randn(B, 2, device=device)

    def z():
        return torch.rand(B, zd, device=device) * 2 - 1

    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not graphs)) if cfg.precision == "bf16" else None
    from contextlib import nullcontext

    ctx = amp or nullcontext

    def step():
        D.requires_grad_(True)
        for _ in range(cfg.n_disc):
            with ctx():
                real = real_batch()
                with torch.no_grad():
                    fake = gf(z())
                ro, fo = df(real).float(), df(fake).float()
                d_loss = loss.d_loss(ro, fo)
                pen = loss.penalty(D, real, fake)
                if not isinstance(pen, float):
                    d_loss = d_loss + pen
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            loss.after_d_step(D, ro.detach(), fo.detach())
        D.requires_grad_(False)
        with ctx():
            fo = df(gf(z())).float()
            ro = df(real_batch()).float() if loss.g_uses_real else None
            g_loss = loss.g_loss(fo, ro)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    sync(device)
    t = time.perf_counter()
    if not graphs:
        for _ in range(steps):
            step()
    else:  # the PyTorch notes' whole-network capture: 3 eager steps on a side stream, capture, replay
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        for _ in range(steps - 3):
            graph.replay()
    sync(device)
    return time.perf_counter() - t


def harness_run(cfg, out: Path) -> dict:
    """Run ``bench.train.train``; steps/s of its loop (to the last log row, before the final checkpoint
    is written), the checkpoint write and the setup before the loop, in seconds."""
    import json

    from bench.train import train

    t = time.perf_counter()
    res = train(cfg, out)
    total = time.perf_counter() - t
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loop_s = rows[-1]["wall_s"]
    ck = out / res.checkpoint
    return {"loop_s": loop_s, "steps": res.step, "ckpt_s": res.wall_s - loop_s, "setup_s": total - res.wall_s,
            "ckpt_mb": ck.stat().st_size / 2**20, "status": res.status}
