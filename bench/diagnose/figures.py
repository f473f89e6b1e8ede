"""Figures of ``bench diagnose`` (PNG bytes, matplotlib's Agg backend via reports.plots)."""
from __future__ import annotations

import math
from typing import Any

from reports.plots import plt, png, sns


def gradients(result: dict[str, Any]) -> bytes:
    """||grad_theta L_G|| against D steps, one line per loss (mean over batches, band: +-1 std),
    log-log with the 0-step point drawn at x = 0.5 (labelled 0)."""
    names = list(result["losses"])
    colors = dict(zip(names, sns.color_palette("tab10" if len(names) <= 10 else "husl", max(len(names), 1))))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
        for name, r in result["losses"].items():
            x = [s if s > 0 else 0.5 for s in r["d_steps"]]
            m, sd = r["g_grad_norm_mean"], r["g_grad_norm_std"]
            ax.plot(x, m, marker="o", ms=3, color=colors[name], label=name)
            low = [max(a - b, a * 1e-3) if math.isfinite(a) else math.nan for a, b in zip(m, sd)]
            ax.fill_between(x, low, [a + b for a, b in zip(m, sd)], color=colors[name], alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        steps = result["losses"][names[0]]["d_steps"] if names else [0]
        ticks = [s for s in steps if s == 0 or math.log10(s).is_integer()]
        ax.set_xticks([t if t > 0 else 0.5 for t in ticks], [str(t) for t in ticks])
        p = result["provenance"]
        ax.set_xlabel("D steps toward optimality (G frozen)")
        ax.set_ylabel("||grad of G's loss|| (mean +- std over batches)")
        ax.set_title(f"G frozen at step {p['checkpoint_step']} of {p['trained_with']['loss']} on "
                     f"{p['trained_with']['dataset']}; fresh D, Adam lr {p['settings']['lr']:g}", fontsize=10)
        ax.legend(fontsize=8, ncol=2)
        return png(fig)


def divergences(result: dict[str, Any]) -> bytes:
    """Left: JS (with log 2), W1 and KL against theta; right: their derivatives in theta (log scale)."""
    t, s = result["theta"], result["sigma"]
    with sns.axes_style("whitegrid"):
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        a.plot(t, result["js"], label="JS (nats)")
        a.axhline(math.log(2), ls="--", c="grey", lw=1, label="log 2")
        a.plot(t, result["w1"], label="W1")
        a.plot(t, result["kl"], label="KL(P||Q)", alpha=0.6)
        a.set_ylim(0, max(1.0, max(result["w1"]) * 1.05))
        a.set_xlabel("theta (distance between the means)")
        a.set_title(f"P = N(0, {s:g}^2 I), Q = N((theta, 0), {s:g}^2 I)", fontsize=10)
        a.legend(fontsize=8)
        pos = [(x, abs(d)) for x, d in zip(t, result["d_js"]) if x > 0]
        b.plot([x for x, _ in pos], [max(d, 1e-300) for _, d in pos], label="|dJS/dtheta|")
        b.plot(t, [abs(d) for d in result["d_w1"]], label="|dW1/dtheta|")
        b.set_yscale("log")
        b.set_xlabel("theta")
        b.set_title("the gradient a generator would follow", fontsize=10)
        b.legend(fontsize=8)
        return png(fig)
