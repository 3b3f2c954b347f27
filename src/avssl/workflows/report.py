"""One HTML page for a comparison such as ``avssl demo``: the result table, the machine and time it
took, each run's training curves, the methods that failed and why, and the cluster report.

Usage: ``write_report("avssl-demo", result, {"xdc": Path("avssl-demo/runs/xdc")}, cluster_report=None)``

The page links its images and the cluster report by relative paths when they lie inside the output
folder; a run's ``curves.png`` outside it is copied to ``out_dir/curves/<name>.png`` so the folder
can be moved or archived as a whole.
"""
from __future__ import annotations

import html
import logging
import os
import platform
import re
import shutil
import time
from pathlib import Path
from urllib.parse import quote

from ..curves import write_curves
from ..machine import cpu_model

log = logging.getLogger("avssl.report")

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child"
          "{text-align:left}.failed{border-left:4px solid #c33;background:#fdf0f0;padding:.3em 1em;margin:.8em 0}"
          ".failed pre{white-space:pre-wrap}img{max-width:100%}iframe{width:100%;height:900px;border:1px solid #ccc}"
          ".meta{color:#444}")


def _split_row(line: str) -> list[str]:
    """Cells of a markdown table row (``\\|`` is a literal bar)."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _separator(row: list[str]) -> bool:
    """Whether a table row is markdown's header separator (``|---|:--:|``)."""
    cells = [c for c in row if c]
    return bool(cells) and all(re.fullmatch(r":?-+:?", c) for c in cells)


def _inline(text: str) -> str:
    """Escaped cell text with markdown's **bold** and _italic_ as <strong> and <em>."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w&])_(.+?)_(?!\w)", r"<em>\1</em>", out)


def markdown_table_html(markdown: str) -> str:
    """A markdown text holding pipe tables as HTML: the first row of a table is its header, the
    ``|---|`` row is dropped, every cell's text is escaped; other non-empty lines become paragraphs."""
    parts, table = [], []

    def flush() -> None:
        if not table:
            return
        rows = [r for r in table if not _separator(r)]
        out = ["<table>"]
        for i, row in enumerate(rows):
            tag = "th" if i == 0 else "td"
            out.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in row) + "</tr>")
        out.append("</table>")
        parts.append("\n".join(out))
        table.clear()

    for line in (markdown or "").splitlines():
        if line.strip().startswith("|"):
            table.append(_split_row(line))
            continue
        flush()
        if line.strip():
            parts.append(f"<p>{_inline(line.strip())}</p>")
    flush()
    return "\n".join(parts)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _href(path: Path, out_dir: Path) -> str:
    """A link from a page in ``out_dir`` to ``path``: relative inside ``out_dir``, else a file URI."""
    if _inside(path, out_dir):
        rel = Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()
        return quote(rel)
    return path.resolve().as_uri()


def _message(entry) -> str | None:
    """The error message of a ``result["failed"]`` entry: a string, or a dict with ``error``/``message``."""
    if not entry:
        return None
    if isinstance(entry, dict):
        entry = entry.get("error") or entry.get("message") or entry.get("traceback") or entry
    return str(entry)


def _curves_png(name: str, run_dir: Path, out_dir: Path) -> str:
    """The ``src`` of the run's curves (drawn now when missing or older than its metrics)."""
    png, metrics = run_dir / "curves.png", run_dir / "metrics.jsonl"
    if not png.exists() or png.stat().st_mtime < metrics.stat().st_mtime:
        write_curves(run_dir)
    if not _inside(png, out_dir):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "run"
        copy = out_dir / "curves" / f"{safe}.png"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, copy)
        png = copy
    return _href(png, out_dir)


def write_report(out_dir, result: dict, runs: dict[str, Path], cluster_report: Path | None = None) -> Path:
    """Write ``out_dir/report.html`` for ``result`` (``markdown``, and optionally ``seconds``,
    ``seconds_per_method``, ``preset``, ``failed``: {method: error message}), the run directories
    ``runs`` ({method: run_dir}; those without ``metrics.jsonl`` are left out) and the cluster
    report page ``cluster_report``. Returns the page's path."""
    from ..io import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>avssl report</title>"
             f"<style>{_STYLE}</style></head><body>", "<h1>avssl report</h1>"]

    meta = [f"generated {e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}"]
    if isinstance(result.get("seconds"), (int, float)):
        meta.append(f"wall time {result['seconds'] / 60:.1f} min")
    if result.get("preset"):
        meta.append(f"preset <code>{e(str(result['preset']))}</code>")
    parts.append(f"<p class='meta'>{'; '.join(meta)}</p>")
    parts.append(f"<p class='meta'>CPU: {e(cpu_model())} ({os.cpu_count()} logical cores); "
                 f"{e(platform.platform())}, Python {e(platform.python_version())}</p>")

    parts.append("<h2>Results</h2>")
    parts.append(markdown_table_html(result.get("markdown", "")) or "<p>no results</p>")
    per_method = result.get("seconds_per_method") or {}
    if per_method:
        parts.append("<p class='meta'>time per method: " + ", ".join(
            f"{e(str(m))} {s:.0f} s" for m, s in per_method.items() if isinstance(s, (int, float))) + "</p>")

    failed = {m: _message(v) for m, v in (result.get("failed") or {}).items()}
    failed = {m: msg for m, msg in failed.items() if msg}
    if failed:
        parts.append("<h2>Failed</h2>")
        for method, msg in failed.items():
            parts.append(f"<div class='failed' id='failed-{e(str(method))}'><strong>{e(str(method))} failed</strong>"
                         f"<pre>{e(msg)}</pre></div>")

    curves = []
    for name, run_dir in runs.items():
        run_dir = Path(run_dir)
        if not (run_dir / "metrics.jsonl").exists():
            continue  # no run (scratch) or not started
        heading = f"<h3>{e(str(name))}" + (" (failed)" if name in failed else "") + "</h3>"
        try:
            src = _curves_png(str(name), run_dir, out_dir)
        except Exception as err:  # noqa: BLE001 - one unreadable run must not cost the whole page
            log.warning("could not draw the curves of %s: %s", run_dir, err)
            curves.append(f"{heading}<p class='failed'>curves could not be drawn: {e(str(err))}</p>")
            continue
        curves.append(f"{heading}<a href='{e(src)}'><img src='{e(src)}' alt='training curves of {e(str(name))}'></a>")
    if curves:
        parts.append("<h2>Training curves</h2>")
        parts += curves

    if cluster_report is not None:
        href = e(_href(Path(cluster_report), out_dir))
        parts.append(f"<h2>Cluster report</h2><p><a href='{href}'>open the cluster report</a></p>"
                     f"<iframe src='{href}' title='cluster report'></iframe>")
    parts.append("</body></html>")
    return atomic_write_text(out_dir / "report.html", "\n".join(parts) + "\n")
