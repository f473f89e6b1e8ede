"""Samples from each cell's best checkpoint: an image grid, or generated 2-D points over the real data.

The cell's best trial is its ok trial with the best value that names a checkpoint (``checkpoint_best``,
else ``checkpoint``; paths relative to the study directory). A checkpoint that is missing or
unreadable skips that cell's panel with a note: samples never make a report fail. Notes name the
checkpoint as the table gives it when relative, else only its file name (no local paths).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports.analysis import Report

CHECKPOINT_COLUMNS = ("checkpoint_best", "checkpoint")
N_IMAGES = 36
N_POINTS = 1000


def best_checkpoints(trials: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x loss: the best ok trial that names a checkpoint (dataset, loss, value, path, shown)."""
    cols = [c for c in CHECKPOINT_COLUMNS if c in trials.columns]
    out = pd.DataFrame(columns=["dataset", "loss", "value", "path", "shown"])
    if not cols:
        return out
    d = trials[trials["outcome"] == "ok"].copy()
    ck = pd.Series(None, index=d.index, dtype=object)
    for c in reversed(cols):  # first choice last
        v = d[c]
        has = v.notna() & (v.astype(str).str.len() > 0)
        ck = ck.where(~has, v.astype(str))
    d["_ck"] = ck
    d = d[d["_ck"].notna()]
    if d.empty:
        return out
    best = d.sort_values("value", kind="stable").groupby(["dataset", "loss"], sort=True).head(1)
    rows = []
    for _, r in best.iterrows():
        p = Path(r["_ck"])
        path = p if p.is_absolute() else Path(r.get("_root", ".")) / p
        rows.append({"dataset": r["dataset"], "loss": r["loss"], "value": r["value"], "path": str(path),
                     "shown": p.name if p.is_absolute() else str(p)})
    return pd.DataFrame(rows, columns=out.columns)


def _generate(path: str, seed: int = 0):
    """(kind, samples, real or None, config, label) from a checkpoint; raises on anything unreadable.
    ``label``: ", 8/8 modes" for points of a mixture with known centres (the shown points, the rule of
    bench.metrics.modes), else ""."""
    import torch

    from bench.checkpoint import load_generator

    G, cfg = load_generator(path)
    g = torch.Generator().manual_seed(seed)
    n = N_POINTS if cfg.arch == "mlp" else N_IMAGES
    z = torch.rand(n, cfg.z_dim, generator=g) * 2 - 1 if cfg.z_dist == "uniform" else torch.randn(n, cfg.z_dim, generator=g)
    from models.conditional import sample_labels

    y = sample_labels(G, n, g)  # a conditional G: classes as its data has them
    with torch.no_grad():
        x = (G(z) if y is None else G(z, y)).float().cpu()
    if x.dim() != 2:
        return "images", x, None, cfg, ""
    real, label = None, ""
    try:
        from bench import datasets
        from bench.metrics.modes import mixture_modes

        ds = datasets.get(cfg.dataset, root=cfg.data_root, resolution=cfg.resolution)
        real = ds.real(N_POINTS).cpu().numpy()
        rule = datasets.describe(cfg.dataset).modes
        if rule is not None and rule.by == "mixture":
            m = mixture_modes(x, ds.centres, ds.std, radius_std=rule.radius_std, min_fraction=rule.min_fraction)
            label = f", {m['modes']}/{m['modes_total']} modes"
    except Exception:  # noqa: BLE001  (the scatter is still useful without the real points or a mode count)
        pass
    return "points", x.numpy(), real, cfg, label


def sample_grid(rep: Report, trials: pd.DataFrame, dataset: str) -> tuple[bytes | None, list[str]]:
    """One figure for a dataset: a panel per loss from its best checkpoint. Returns (PNG or None, notes)."""
    import matplotlib.pyplot as plt

    from reports.plots import palette, png
    from reports.tables import num

    best = best_checkpoints(trials[trials["dataset"] == dataset])
    notes = []
    panels = []
    for loss in rep.losses:
        r = best[best["loss"] == loss]
        if r.empty:
            if (trials["dataset"] == dataset).any() and ((trials["dataset"] == dataset) & (trials["loss"] == loss)).any():
                notes.append(f"{dataset}/{loss}: no sample grid (no ok trial names a checkpoint)")
            continue
        r = r.iloc[0]
        try:
            panels.append((loss, r, _generate(r["path"])))
        except Exception as e:  # noqa: BLE001  (never fail the report for a sample grid)
            notes.append(f"{dataset}/{loss}: no sample grid (checkpoint {r['shown']} unreadable: {type(e).__name__})")
    if not panels:
        return None, notes
    pal = palette(rep)
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (loss, r, (kind, x, real, _cfg, label)) in zip(axes.flat, panels):
        value = num(rep.sign * r["value"])
        if kind == "points":
            if real is not None:
                ax.scatter(real[:, 0], real[:, 1], s=2, color="0.75", label="real")
            ax.scatter(x[:, 0], x[:, 1], s=2, color=pal[loss], label="generated")
            ax.set_aspect("equal", adjustable="datalim")
            ax.tick_params(labelsize=6)
        else:
            from torchvision.utils import make_grid

            grid = make_grid((x.clamp(-1, 1) + 1) / 2, nrow=int(np.sqrt(len(x))), padding=1, pad_value=1.0)
            img = grid.permute(1, 2, 0).numpy()
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None,
                      vmin=0, vmax=1, interpolation="nearest")
            ax.axis("off")
        ax.set_title(f"{loss} ({rep.name} {value}{label})", fontsize=9)
    fig.suptitle(f"{dataset}: samples of each {rep.factor}'s best checkpoint"
                 + (" (grey: real data)" if any(p[2][0] == "points" for p in panels) else ""), fontsize=10)
    return png(fig), notes
