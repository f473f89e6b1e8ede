"""``leaderboard.md``: the report as Markdown, for a README or a paper's repository.

Every cell that comes from data is escaped: HTML special characters (Markdown passes inline HTML
through) and the Markdown characters that would change a table or add emphasis or links.
"""
from __future__ import annotations

import html
import re

from reports.analysis import Report
from reports.tables import Table, all_tables

_MD = re.compile(r"([\\`*_\[\]|#])")


def md(text) -> str:
    s = html.escape(str(text), quote=False).replace("\r", " ").replace("\n", " ")
    return _MD.sub(r"\\\1", s)


def table(t: Table, level: int = 2) -> str:
    out = [f"{'#' * level} {md(t.title)}", ""]
    if t.intro:
        out += [md(t.intro), ""]
    out.append("| " + " | ".join(md(h) for h in t.header) + " |")
    out.append("|" + "|".join("---" for _ in t.header) + "|")
    for row in t.rows:
        out.append("| " + " | ".join(md(c) for c in row) + " |")
    out.append("")
    return "\n".join(out)


def render(rep: Report, inputs: list[str], images: list[tuple[str, str]]) -> str:
    """The Markdown page. ``images``: (file name, caption) of the PNGs next to it."""
    parts = [f"# gan-bench report: {md(rep.name)} against {md(rep.baseline)}", "",
             f"**{md(rep.headline)}**", "",
             f"Inputs: {', '.join(md(i) for i in inputs)}. Datasets: {', '.join(md(d) for d in rep.datasets)}. "
             f"{rep.factors.capitalize()}: {', '.join(md(x) for x in rep.losses)}. Baseline: {md(rep.baseline)}; alpha = {rep.alpha:g} "
             "(Holm-corrected over the whole report).", ""]
    for t in all_tables(rep):
        parts.append(table(t))
    parts += ["## Notes", ""] + [f"- {md(n)}" for n in rep.notes] + [""]
    if images:
        parts += ["## Figures", ""] + [f"![{md(c)}]({name})" for name, c in images] + [""]
    parts += ["Made by `bench report` (gan-bench); see index.html for the figures and method.", ""]
    return "\n".join(parts)
