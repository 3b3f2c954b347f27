"""The cluster report's pages: ``clusters.md`` and ``clusters.html`` (one section per iteration when
several are reported) from the result :func:`~avssl.evaluation.cluster_report.cluster_report` builds.

Usage: ``atomic_write_text(out / "clusters.html", report_html(result, top=10))``
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

from .splits import pct

def _concepts(c: dict) -> str:
    return ", ".join(f"{lab} ({frac:.2f})" for lab, frac in c["labels"])


def _ranked(stats: dict, top: int) -> list[tuple[str, list[dict]]]:
    clusters = stats["clusters"]
    if len(clusters) <= 2 * top:
        return [("all clusters by purity", clusters)]
    return [(f"top {top} by purity", clusters[:top]), (f"bottom {top} by purity", clusters[-top:])]


def report_markdown(result: dict, top: int) -> str:
    lines = [f"# Clusters of {result['run']}", "",
             f"- labels: {result['labels']} ({result['matched_videos']} of {result['videos']} videos labelled)"]
    pages = result.get("iterations") or [{"iteration": result.get("iteration"), "clusterings": result["clusterings"]}]
    if len(pages) > 1:
        lines += ["", "## Every iteration", "", "| iteration | clustering | purity % | NMI | ARI | NMI with previous |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {p['iteration']} | {name} | {pct(s['purity'])} | {s['nmi']:.3f} | {s['ari']:.3f} | "
                  f"{_num(s.get('nmi_previous'))} |" for p in pages for name, s in p["clusterings"].items()]
    for page in pages:
        when = f" (iteration {page['iteration']})" if page["iteration"] is not None else ""
        for name, s in page["clusterings"].items():
            z = s["sizes"]
            lines += ["", f"## {name}{when}", "",
                      f"purity {pct(s['purity'])}%, NMI {s['nmi']:.3f}, ARI {s['ari']:.3f} on {s['scored']} videos; "
                      f"k={z['k']}, sizes {z['min']}-{z['max']}, {z['empty']} empty; grid: {s['grid']}"
                      + (f"; t-SNE: {s['tsne']['picture']}" if "picture" in s.get("tsne", {}) else "")]
            for heading, rows in _ranked(s, top):
                lines += ["", f"### {heading}", "", "| # | cluster | size | concepts (fraction) |", "|---|---|---|---|"]
                lines += [f"| {c['rank']} | {c['cluster']} | {c['size']} | {_concepts(c)} |" for c in rows]
    return "\n".join(lines)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _clip_link(path: str) -> str:
    """A link to a clip's file (a file: URI, so the page works wherever it is opened from)."""
    try:
        return Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return path


def _grid_html(name: str, s: dict) -> list[str]:
    """The clips nearest each top cluster's centroid: the caption as text, each clip's picture linking
    to its file, under it the file's name and label."""
    e = html.escape
    by_rank = {c["rank"]: c for c in s["clusters"]}
    parts = [f"<h3>The clips nearest the centroids of the top {len(s.get('grid_rows', []))} clusters</h3>",
             "<p class='note'>Point at a picture to play a short looping preview; click it to open the clip.</p>"]
    for row in s.get("grid_rows", []):
        c = by_rank[row["rank"]]
        parts.append(f"<div class='cluster'><p class='caption'><strong>#{c['rank']}: cluster {c['cluster']}</strong> "
                     f"({c['size']} videos), purity {pct(c['purity'])}%: {e(_concepts(c))}</p><div class='clips'>")
        for v in row["videos"]:
            file_name = os.path.basename(v["path"])
            label = v["label"] if v["label"] is not None else "no label"
            moving = (f"<img class='preview' src='{e(v['preview'])}' alt='{e(file_name)}' loading='lazy'>"
                      if v.get("preview") else "")
            parts.append(f"<figure><a href='{e(_clip_link(v['path']))}' title='{e(v['path'])}'>"
                         f"<img class='still' src='{e(v['picture'])}' alt='{e(file_name)}'>{moving}</a>"
                         f"<figcaption>{e(file_name)}<br>{e(str(label))}</figcaption></figure>")
        parts.append("</div></div>")
    parts.append(f"<details><summary>The same clips as one picture ({e(s['grid'])})</summary>"
                 f"<img src='{e(s['grid'])}' alt='{e(name)} clusters'></details>")
    return parts


def _tsne_html(name: str, s: dict) -> list[str]:
    e = html.escape
    t = s.get("tsne") or {}
    if "picture" not in t:
        return [f"<p class='note'>No t-SNE picture: {e(str(t.get('skipped', 'not made')))}.</p>"]
    return [f"<h3>Features in 2-D (t-SNE)</h3><p>{t['points']} of the {t['clustered']} clustered videos "
            f"({e(t['features'])}, seed {t['seed']}): coloured by cluster on the left and by label on the right; "
            f"videos close together have similar features.</p>",
            f"<img src='{e(t['picture'])}' alt='t-SNE of the {e(name)} features'>"]


def report_html(result: dict, top: int) -> str:
    """The report page; with several iterations, a table of all of them and one section each, with links (and,
    where scripts run, only the chosen iteration shown) to move between them."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>avssl clusters</title><style>"
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
             ".clips{display:flex;flex-wrap:wrap;gap:6px}figure{margin:0;width:100px;font-size:11px}"
             "figcaption{overflow-wrap:anywhere}"
             "figure img{display:block;border:1px solid #ccc}.caption{margin:1em 0 .3em}.note{color:#555}"
             "figure img.preview{display:none}figure:hover img.preview{display:block}"
             "figure:hover img.still:not(:only-child){display:none}"
             "nav.iterations a{margin-right:.6em}nav.iterations a.here{font-weight:bold}"
             "img{max-width:100%}</style></head><body>",
             f"<h1>Clusters of {e(result['run'])}</h1>",
             f"<p>Labels: {e(result['labels'])} ({result['matched_videos']} of {result['videos']} videos).</p>"]
    pages = result.get("iterations")
    if not pages:
        if result.get("iteration") is not None:
            parts.append(f"<p>The clustering of iteration {result['iteration']}.</p>")
        parts += _clusterings_html(result["clusterings"], top, 2)
        parts.append("</body></html>")
        return "\n".join(parts)
    ids = [f"iteration-{p['iteration']}" for p in pages]
    parts += ["<h2>Every iteration</h2><table><tr><th>iteration</th><th>clustering</th><th>purity %</th><th>NMI</th>"
              "<th>ARI</th><th>NMI with the previous iteration</th></tr>"]
    parts += [f"<tr><td><a href='#{i}'>{p['iteration']}</a></td><td>{e(name)}</td><td>{pct(s['purity'])}</td>"
              f"<td>{s['nmi']:.3f}</td><td>{s['ari']:.3f}</td><td>{_num(s.get('nmi_previous'))}</td></tr>"
              for i, p in zip(ids, pages) for name, s in p["clusterings"].items()]
    parts.append("</table>")
    for n, (i, page) in enumerate(zip(ids, pages)):
        links = " ".join(f"<a href='#{j}'{' class=here' if j == i else ''}>{p['iteration']}</a>"
                         for j, p in zip(ids, pages))
        step = (f"<a href='#{ids[n - 1]}'>&larr; previous</a>" if n else "") + \
               (f" <a href='#{ids[n + 1]}'>next &rarr;</a>" if n + 1 < len(ids) else "")
        parts += [f"<section class='iteration' id='{i}'><h2>Iteration {page['iteration']}</h2>",
                  f"<nav class='iterations'>Iteration: {links} &nbsp; {step}</nav>",
                  *_clusterings_html(page["clusterings"], top, 3), "</section>"]
    parts.append("<script>(function(){var ids=%s;function show(){var h=location.hash.slice(1);"
                 "if(ids.indexOf(h)<0)h=ids[ids.length-1];ids.forEach(function(i){"
                 "document.getElementById(i).style.display=i==h?'':'none';});}"
                 "window.addEventListener('hashchange',show);show();})();</script>" % json.dumps(ids))
    parts.append("</body></html>")
    return "\n".join(parts)


def _clusterings_html(clusterings: dict, top: int, level: int) -> list[str]:
    e = html.escape
    parts = []
    for name, s in clusterings.items():
        z = s["sizes"]
        previous = f"; NMI with the previous iteration {s['nmi_previous']:.3f}" if "nmi_previous" in s else ""
        parts += [f"<h{level}>{e(name)}</h{level}>",
                  f"<p>purity {pct(s['purity'])}%, NMI {s['nmi']:.3f}, ARI {s['ari']:.3f} on {s['scored']} videos; "
                  f"k={z['k']}, sizes {z['min']}&ndash;{z['max']}, {z['empty']} empty{previous}</p>",
                  *_grid_html(name, s), *_tsne_html(name, s)]
        for heading, rows in _ranked(s, top):
            parts.append(f"<h3>{e(heading)}</h3><table><tr><th>#</th><th>cluster</th><th>size</th>"
                         f"<th>concepts (fraction)</th></tr>")
            parts += [f"<tr><td>{c['rank']}</td><td>{c['cluster']}</td><td>{c['size']}</td>"
                      f"<td>{e(_concepts(c))}</td></tr>" for c in rows]
            parts.append("</table>")
    return parts
