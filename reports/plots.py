"""The report's figures (seaborn on matplotlib's Agg backend), each returned as PNG bytes.

Inputs are the Report and the prepared trials; nothing here computes a statistic.
"""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reports.analysis import Report, curves_table, verdicts_table  # noqa: E402

DPI = 100


def palette(rep: Report) -> dict[str, tuple]:
    colors = sns.color_palette("tab10" if len(rep.losses) <= 10 else "husl", len(rep.losses))
    return dict(zip(rep.losses, colors))


def short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "\u2026"


def png(fig, tight: bool = False) -> bytes:
    """PNG bytes (figures made with layout="constrained" need no second, "tight" drawing pass)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, w: float = 4.8, h: float = 3.6, cols: int = 3):
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def distribution(rep: Report, trials: pd.DataFrame) -> bytes:
    """Per dataset: the metric per loss over seeds (or over the search where there are no seeds),
    box + points; trials counted as worst are listed under each loss's name."""
    pal = palette(rep)
    with sns.axes_style("whitegrid"):
        fig, axes = _grid(len(rep.datasets))
        for ax, ds in zip(axes, rep.datasets):
            d = trials[trials["dataset"] == ds]
            phase = "seeds" if (d["phase"] == "seeds").any() else "search"
            d = d[d["phase"] == phase]
            order = [x for x in rep.losses if x in set(d["loss"])]
            ok = d[d["outcome"] == "ok"]
            labels = []
            for loss in order:
                n_bad = int(((d["loss"] == loss) & (d["outcome"] != "ok")).sum())
                labels.append(f"{loss}\n{n_bad} worst" if n_bad else loss)
            if len(ok):
                # boxes with matplotlib itself (seaborn 0.13's boxplot uses an argument matplotlib 3.13 drops)
                data = [ok.loc[ok["loss"] == x, "raw"].to_numpy() for x in order]
                pos = [i for i, v in enumerate(data) if len(v)]
                boxes = ax.boxplot([data[i] for i in pos], positions=pos, widths=0.6, showfliers=False,
                                   patch_artist=True, orientation="vertical", medianprops={"color": "black"})
                for i, patch in zip(pos, boxes["boxes"]):
                    patch.set(facecolor=pal[order[i]], alpha=0.5)
                sns.stripplot(data=ok, x="loss", y="raw", order=order, color="black", size=3, jitter=0.2, ax=ax)
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
            ax.set_title(f"{ds} ({phase} phase)", fontsize=10)
            ax.set_xlabel("")
            ax.set_ylabel(rep.name)
        fig.suptitle(f"{rep.name} per {rep.factor} ({rep.better_word} is better); 'worst' = diverged/failed/unscored", fontsize=11)
        return png(fig)


def budget(rep: Report) -> bytes:
    """Per dataset: E[best of k configs] against k with its 95% bootstrap band, one line per loss."""
    pal = palette(rep)
    cur = curves_table(rep)
    with sns.axes_style("whitegrid"):
        fig, axes = _grid(len(rep.datasets))
        for ax, ds in zip(axes, rep.datasets):
            c = cur[cur["dataset"] == ds]
            for loss in [x for x in rep.losses if x in set(c["loss"])]:
                g = c[c["loss"] == loss].sort_values("k")
                fin = lambda s: s.where(np.isfinite(s))  # noqa: E731  (infinite = some draw all worst: not drawn)
                lw, ls = (2.2, "--") if loss == rep.baseline else (1.5, "-")
                ax.plot(g["k"], fin(g["expected_min"]), ls, color=pal[loss], lw=lw, label=loss)
                band = g[g["band_low"].notna()]  # large B: the band is computed at a grid of k (reports.budget)
                ax.fill_between(band["k"], fin(band["band_low"]), fin(band["band_high"]), color=pal[loss], alpha=0.15, lw=0)
            if len(c) and c["k"].max() > 10:
                ax.set_xscale("log")
            ax.set_title(ds, fontsize=10)
            ax.set_xlabel("budget k (configurations drawn)")
            ax.set_ylabel(f"expected best {rep.name}")
            ax.legend(fontsize=7)
        # Wrapped: the figure can be one panel wide. No line or band where a draw of k can be all
        # diverged/failed (an infinite expectation).
        fig.suptitle(f"Best {rep.name} vs budget\n(exact expectation, 95% bootstrap bands;\n"
                     "gaps: a draw of k can be all diverged/failed)", fontsize=9)
        return png(fig)


def precision_recall(rep: Report, trials: pd.DataFrame) -> bytes | None:
    """Per dataset: precision against recall of every ok trial, per loss (None without those columns)."""
    if not {"precision", "recall"} <= set(trials.columns):
        return None
    d = trials[trials["outcome"] == "ok"].copy()
    d["precision"] = pd.to_numeric(d["precision"], errors="coerce")
    d["recall"] = pd.to_numeric(d["recall"], errors="coerce")
    d = d[np.isfinite(d["precision"]) & np.isfinite(d["recall"])]
    if d.empty:
        return None
    pal = palette(rep)
    datasets = [x for x in rep.datasets if x in set(d["dataset"])]
    with sns.axes_style("whitegrid"):
        fig, axes = _grid(len(datasets), 4.4, 4.0)
        for ax, ds in zip(axes, datasets):
            g = d[d["dataset"] == ds]
            sns.scatterplot(data=g, x="recall", y="precision", hue="loss", style="phase", palette=pal,
                            hue_order=[x for x in rep.losses if x in set(g["loss"])], ax=ax, s=25, alpha=0.8)
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(ds, fontsize=10)
            ax.legend(fontsize=7)
        fig.suptitle("Precision vs recall per trial (last checkpoint)", fontsize=11)
        return png(fig)


def prob_improvement(rep: Report) -> bytes | None:
    """Per dataset: P(loss better than the baseline) with its 95% interval (seeds), or the best-of-B
    probability (budget) where there are no seeds."""
    v = verdicts_table(rep)
    if v.empty:
        return None
    pal = palette(rep)
    with sns.axes_style("whitegrid"):
        fig, axes = _grid(len(rep.datasets), 6.0, 1.2 + 0.35 * len(rep.losses), cols=2)
        for ax, ds in zip(axes, rep.datasets):
            g = v[v["dataset"] == ds]
            seeds = g[g["kind"] == "seeds"]
            if seeds.empty and len(g):
                seeds = g[g["budget"] == g["budget"].max()]
                what = f"best of {int(g['budget'].max())} configs"
            else:
                what = "seeds"
            order = [x for x in rep.losses if x in set(seeds["loss"])]
            for i, loss in enumerate(order):
                r = seeds[seeds["loss"] == loss].iloc[0]
                lo, hi = r["pi_low"], r["pi_high"]
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.plot([lo, hi], [i, i], color=pal[loss], lw=2)
                ax.plot([r["prob_improvement"]], [i], "o", color=pal[loss])
            ax.axvline(0.5, color="gray", ls="--", lw=1)
            ax.set_yticks(range(len(order)))
            ax.set_yticklabels([short(x) for x in order], fontsize=8)
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.7, max(len(order), 1) - 0.3)
            ax.set_title(f"{ds} ({what})", fontsize=10)
            ax.set_xlabel(f"P({rep.name} of {rep.factor} better than {rep.baseline})")
        fig.suptitle("Probability of improvement over the baseline (rliable), 95% bootstrap intervals", fontsize=11)
        return png(fig)


def critical_difference(rep: Report) -> bytes | None:
    """The critical-difference diagram: mean ranks across datasets (Demsar 2006), bars joining the
    losses that pairwise Wilcoxon signed-rank tests with Holm over all pairs do not separate
    (Benavoli et al. 2016); drawn where Friedman ran (>= 3 datasets, >= 3 losses)."""
    import scikit_posthocs as sp

    fr, w = rep.friedman, rep.wilcoxon
    if not fr.ok or not w.ok or w.matrix is None:
        return None
    losses = [x for x in fr.losses if x in w.matrix.index]
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.35 * len(losses)))
    sp.critical_difference_diagram(fr.mean_ranks[losses], w.matrix.loc[losses, losses], alpha=rep.alpha, ax=ax)
    fig.suptitle(f"Mean rank over {len(fr.datasets)} datasets (1 = best); bars join {rep.factors} that Wilcoxon signed-rank "
                 f"tests (Holm, all pairs)\ncannot separate at alpha = {rep.alpha:g}; Friedman p = {fr.p_value:.3g}",
                 fontsize=9, y=1.12)
    return png(fig, tight=True)


HEALTH_PANELS = (("d_auc", "d_auc: P(D(x) > D(G(z)))", False), ("d_saturated", "d_saturated: fraction of steps", False),
                 ("g_grad_norm_min", "smallest G gradient norm", True))


def health(rep: Report, trials: pd.DataFrame) -> bytes | None:
    """Per dataset (rows): the report's metric and the training-health columns per loss (columns),
    every trial a point (diverged ones included where a column is finite), the median a bar."""
    panels = [(c, label, log) for c, label, log in HEALTH_PANELS
              if c in trials.columns and np.isfinite(pd.to_numeric(trials[c], errors="coerce")).any()]
    if not panels:
        return None
    pal = palette(rep)
    cols = [("raw", f"{rep.name} ({rep.better_word} is better)", False)] + panels
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(len(rep.datasets), len(cols), figsize=(3.6 * len(cols), 3.0 * len(rep.datasets)),
                                 squeeze=False, layout="constrained")
        for row, ds in zip(axes, rep.datasets):
            d = trials[trials["dataset"] == ds]
            order = [x for x in rep.losses if x in set(d["loss"])]
            for ax, (col, label, log) in zip(row, cols):
                for i, loss in enumerate(order):
                    v = pd.to_numeric(d.loc[d["loss"] == loss, col], errors="coerce").to_numpy(dtype=float)
                    v = v[np.isfinite(v) & ((v > 0) if log else True)]
                    if not len(v):
                        continue
                    jitter = np.random.default_rng(i).uniform(-0.2, 0.2, len(v))
                    ax.scatter(i + jitter, v, s=9, color=pal[loss], alpha=0.7, lw=0)
                    ax.plot([i - 0.3, i + 0.3], [np.median(v)] * 2, color="black", lw=1.5)
                if log:
                    _log_axis(ax)
                ax.set_xticks(range(len(order)))
                ax.set_xticklabels([short(x, 12) for x in order], rotation=30, ha="right", fontsize=8)
                ax.set_title(f"{short(ds, 24)}: {label}", fontsize=8)
        fig.suptitle("Scores beside training health, every trial (search and seeds); bar: median", fontsize=10)
        return png(fig)


def _log_axis(ax) -> None:
    """A log y axis with plain tick labels (0.01, 0.1, 1, 10; minor ones too when it spans less than
    a decade). Call after plotting."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    if lo > 0 and hi / lo < 10:
        ax.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def health_curves(rep: Report, dataset: str, curves: dict) -> bytes | None:
    """One dataset: per loss (rows) the G-gradient norm of its best and worst trial against the step,
    and (on datasets with modes) every trial's mode coverage at each checkpoint, the collapsed ones
    in red. ``curves``: ``reports.causes.trial_curves``."""
    from reports.causes import COLLAPSED_FRACTION

    order = [x for x in rep.losses if x in curves]
    if not order:
        return None
    with_modes = any(c.modes for x in order for c in curves[x]["all"])
    pal = palette(rep)
    ncol = 2 if with_modes else 1
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(len(order), ncol, figsize=(6.0 * ncol, 2.6 * len(order)), squeeze=False,
                                 layout="constrained")
        for row, loss in zip(axes, order):
            best, worst = curves[loss]["best"], curves[loss]["worst"]
            ax = row[0]
            for c, style, who in ((best, "-", "best"), (worst, "--", "worst")):
                if c is None or not c.steps:
                    continue
                g = np.asarray(c.g_grad_norm, dtype=float)
                g = np.where(np.isfinite(g) & (g > 0), g, np.nan)
                ax.plot(c.steps, g, style, color=pal[loss] if who == "best" else "0.3", lw=1.6,
                        label=f"{who}: {short(c.trial_id, 30)}" + (" (diverged/worst)" if math.isinf(c.value) else ""))
            _log_axis(ax)
            ax.set_xlabel("step", fontsize=8)
            ax.set_ylabel("G gradient norm", fontsize=8)
            ax.set_title(f"{loss}: generator gradient, best and worst trial", fontsize=9)
            if ax.lines:
                ax.legend(fontsize=6)
            if with_modes:
                ax = row[1]
                every = curves[loss]["all"]  # at most reports.causes.MAX_CURVES; the counts are over the whole cell
                n_col, n_off, n_all = curves[loss]["collapsed"], curves[loss]["off_data"], curves[loss]["trials"]
                total = max((c.modes_total for c in every if math.isfinite(c.modes_total)), default=math.nan)
                # the loss colours use all of tab10: collapsed trials are black crosses, off-data ones dotted
                for c in sorted(every, key=lambda c: c.collapsed):  # the collapsed ones drawn on top
                    if c.modes:
                        style = dict(color="black", marker="x", ms=4, lw=1.0, ls="-") if c.collapsed else \
                            dict(color="0.55", marker="o", ms=2, lw=0.8, ls=":") if c.off_data else \
                            dict(color="0.7", marker="o", ms=2, lw=0.8, ls="-")
                        ax.plot(c.score_steps, c.modes, **style)
                if worst is not None and worst.modes and worst is not best:
                    ax.plot(worst.score_steps, worst.modes, "--", lw=1.8, color="0.3", label="worst")
                if best is not None and best.modes:
                    ax.plot(best.score_steps, best.modes, "-o", ms=3, lw=2, color=pal[loss], label="best")
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(fontsize=6)
                if math.isfinite(total):
                    ax.axhline(COLLAPSED_FRACTION * total, color="tab:red", ls=":", lw=1)
                    ax.set_ylim(-0.3, total + 0.3)
                ax.set_xlabel("step", fontsize=8)
                ax.set_ylabel("modes covered", fontsize=8)
                drawn = "" if len(every) == n_all else f" ({len(every)} drawn, evenly by rank)"
                ax.set_title(f"{loss}: modes covered; {n_col} of {n_all} trials collapsed (x), {n_off} off-data "
                             f"(dotted){drawn}", fontsize=9)
        fig.suptitle(f"{dataset}: how the trials failed (red dotted line: the collapse threshold, half the modes)",
                     fontsize=10)
        return png(fig)
