"""``index.html``: one static, self-contained page (inline CSS, images as relative PNG files beside it).

It works from file:// with no network and needs no JavaScript. Every value that comes from data goes
through ``html.escape``. One tiny inline script (optional for reading the page) marks each image
with ``data-loaded="1"`` once it has decoded, and the body with ``data-images="LOADED/TOTAL"``, so
a headless browser can check that every figure loaded.
"""
from __future__ import annotations

import html

from reports.analysis import Report
from reports.tables import Table, all_tables

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.headline { font-size: 1.2em; font-weight: 600; background: #f3f6fa; border-left: 4px solid #3b6ea5;
            padding: .6em 1em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: left; }
th { background: #f4f4f4; }
td.better { background: #e3f4e1; } td.worse { background: #fbe4e4; } td.inconclusive { background: #f6f0da; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
.small { font-size: .85em; color: #555; }
"""

SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    var good = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute('data-loaded', good ? '1' : '0');
    if (good) { ok++; }
  }
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


def e(x) -> str:
    return html.escape(str(x), quote=True)


def table(t: Table) -> str:
    out = [f"<h2>{e(t.title)}</h2>"]
    if t.intro:
        out.append(f"<p class=\"small\">{e(t.intro)}</p>")
    out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
    for row in t.rows:
        cells = []
        for c in row:
            cls = f' class="{c}"' if c in ("better", "worse", "inconclusive") else ""
            cells.append(f"<td{cls}>{e(c)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def render(rep: Report, inputs: list[str], images: list[tuple[str, str]], method: list[str]) -> str:
    """The page. ``images``: (relative PNG file name, caption); ``method``: paragraphs on the method."""
    body = [
        f"<h1>gan-bench report: {e(rep.name)} against {e(rep.baseline)}</h1>",
        f"<p class=\"headline\">{e(rep.headline)}</p>",
        "<p>Inputs: " + ", ".join(f"<code>{e(i)}</code>" for i in inputs) + ". Datasets: "
        + ", ".join(e(d) for d in rep.datasets) + ". " + e(rep.factors.capitalize()) + ": " + ", ".join(e(x) for x in rep.losses)
        + f". Baseline: <b>{e(rep.baseline)}</b>; alpha = {e(f'{rep.alpha:g}')}, Holm-corrected over the whole report.</p>",
    ]
    body += [table(t) for t in all_tables(rep)]
    if images:
        body.append("<h2>Figures</h2>")
        for name, caption in images:
            body.append(f"<figure><img src=\"{e(name)}\" alt=\"{e(caption)}\" loading=\"eager\">"
                        f"<figcaption>{e(caption)}</figcaption></figure>")
    body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in rep.notes) + "</ul>")
    body.append("<h2>Method</h2>" + "".join(f"<p class=\"small\">{e(p)}</p>" for p in method))
    body.append("<p class=\"small\">Made by <code>bench report</code> (gan-bench). Files: leaderboard.md, "
                "summary.csv, verdicts.csv, budget.csv, wilcoxon.csv (with 2 or more datasets), causes.csv, report.json.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gan-bench report: {e(rep.name)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n" + SCRIPT + "\n</body></html>\n")
