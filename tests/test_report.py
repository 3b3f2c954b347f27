"""The HTML report (avssl.workflows.report) built from a real XDC run, a failed method and a real cluster report."""
import html
import os
import platform
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from avssl.config import resolve
from avssl.workflows.demo import format_table
from avssl.engine.pretrain import pretrain
from avssl.evaluation import cluster_report
from avssl.workflows.report import markdown_table_html, write_report

FAILURE = ("no usable videos in /data/<world>.csv: skipped 24 file(s): 24 shorter than the method's views "
           "(2.50 s < 3.00 s) & more")


@pytest.fixture(scope="session")
def demo_folder(tiny_world, tmp_path_factory):
    """A demo-like output folder with a real 2-iteration XDC run in ``runs/xdc`` and its cluster report."""
    with pytest.MonkeyPatch.context() as mp:  # the decoded-video cache stays out of the user's cache
        mp.setenv("AVSSL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "avssl-cache"))
        out = tmp_path_factory.mktemp("report")
        cfg = resolve("cpu-tiny", "xdc", ["iterations=2", "optim.max_epochs=2"])
        pretrain(cfg, tiny_world, out / "runs" / "xdc", progress=False)
        cluster_report(out / "runs" / "xdc", tiny_world, out / "clusters")
        return out


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() == "model name":
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _srcs(page):
    return re.findall(r"<img src='([^']+)'", page)


def test_report_of_a_real_run_with_a_failed_method(demo_folder):
    table = {"scratch": {"video": 0.225, "audio": 0.825}, "xdc": {"video": 0.3, "audio": 0.538},
             "a<b": {"video": 0.1}}
    methods = ["scratch", "xdc", "a<b", "crisscross"]
    result = {"table": table, "markdown": format_table(table, methods), "methods": methods, "preset": "cpu-tiny",
              "seconds": 125.0, "seconds_per_method": {"scratch": 5.0, "xdc": 60.0},
              "failed": {"crisscross": FAILURE, "xdc": ""}}
    runs = {"scratch": demo_folder / "runs" / "scratch", "xdc": demo_folder / "runs" / "xdc",
            "crisscross": demo_folder / "runs" / "crisscross"}
    (demo_folder / "runs" / "xdc" / "curves.png").unlink(missing_ok=True)  # the report must draw it
    page_path = write_report(demo_folder, result, runs, demo_folder / "clusters" / "clusters.html")
    assert page_path == demo_folder / "report.html"
    page = page_path.read_text()

    # The result table: header cells, bold best / italic second, N/A, escaped method names.
    assert "<th>Linear probe top-1 (%)</th><th>Scratch</th><th>XDC</th><th>a&lt;b</th>" in page
    assert ("<tr><td>demo world, video encoder</td><td><em>22.5</em></td><td><strong>30.0</strong></td>"
            "<td>10.0</td></tr>") in page
    assert ("<tr><td>demo world, audio encoder</td><td><strong>82.5</strong></td><td><em>53.8</em></td>"
            "<td>N/A</td></tr>") in page
    assert "|---|" not in page and "a<b" not in page

    # One picture of curves: the XDC run's (scratch and the failed crisscross have no metrics.jsonl).
    assert _srcs(page) == ["runs/xdc/curves.png"]
    png = demo_folder / unquote(_srcs(page)[0])
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The failure, escaped; the empty entry for xdc is not a failure.
    assert html.escape(FAILURE) in page and FAILURE not in page
    assert "crisscross failed" in page and "xdc failed" not in page

    # Time and machine.
    assert html.escape(_cpu_model()) in page
    assert "2.1 min" in page and "xdc 60 s" in page

    # The cluster report, by a relative link and an iframe, pointing to a real page.
    assert "<a href='clusters/clusters.html'>" in page and "<iframe src='clusters/clusters.html'" in page
    assert (demo_folder / "clusters" / "clusters.html").read_text().startswith("<!doctype html>")


def test_runs_outside_the_folder_are_copied_in_and_stale_curves_redrawn(demo_folder, tmp_path):
    run = demo_folder / "runs" / "xdc"
    out = tmp_path / "elsewhere"
    result = {"markdown": "| a | b |\n|---|---|\n| x_1 | **y** |"}
    page = write_report(out, result, {"xdc run": run}, None).read_text()
    assert _srcs(page) == ["curves/xdc_run.png"]
    copy = out / "curves" / "xdc_run.png"
    assert copy.read_bytes() == (run / "curves.png").read_bytes()
    assert "<td>x_1</td><td><strong>y</strong></td>" in page  # an underscore inside a word is no emphasis
    assert "<h2>Failed</h2>" not in page and "<iframe" not in page

    # metrics.jsonl newer than curves.png (the run went on): the curves are drawn again.
    png = run / "curves.png"
    before = png.stat().st_mtime_ns
    metrics = run / "metrics.jsonl"
    os.utime(metrics, ns=(before + 10**9, before + 10**9))
    write_report(out, result, {"xdc": run}, None)
    assert png.stat().st_mtime_ns > before


def test_markdown_table_html_escapes_and_keeps_other_lines():
    text = "Note <b>\n| h1 | h\\|2 |\n|:--|--:|\n| <x> | 1 & 2 |"
    out = markdown_table_html(text)
    assert out == ("<p>Note &lt;b&gt;</p>\n<table>\n<tr><th>h1</th><th>h|2</th></tr>\n"
                   "<tr><td>&lt;x&gt;</td><td>1 &amp; 2</td></tr>\n</table>")
