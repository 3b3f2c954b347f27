"""``avssl status`` (where one run stands) and ``avssl compare`` (runs and evaluations in one table).

    avssl status runs/xdc
"""
from __future__ import annotations

import json

from ..workflows import compare, status


def register(sub) -> None:
    _add_status(sub)
    _add_compare(sub)


def _add_status(sub) -> None:
    p = sub.add_parser("status", help="where a pretraining run stands: progress, last metrics, time per epoch, ETA",
                       description=status.__doc__.split("\n\n")[0] + " " + status.__doc__.split("\n\n")[1])
    p.add_argument("run", metavar="RUN", help="pretraining run directory (the --out of avssl pretrain)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=_run_status)


def _run_status(a) -> int:
    s = status.run_status(a.run)
    print(json.dumps(s, indent=2) if a.json else status.format_status(s))
    return 0


def _add_compare(sub) -> None:
    paragraphs = compare.__doc__.split("\n\n")
    p = sub.add_parser("compare", help="one table across pretraining runs and evaluation reports (markdown or JSON)",
                       description="One table across pretraining runs and evaluation reports.\n\n"
                                   + "\n\n".join(paragraphs[1:4]))
    p.add_argument("paths", nargs="+", metavar="RUN_OR_EVAL",
                   help="run directory, evaluation folder or report (<protocol>.json), or a folder holding them")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=_run_compare)


def _run_compare(a) -> int:
    result = compare.compare(a.paths)
    print(json.dumps(compare.plain(result), indent=2) if a.json else compare.format_markdown(result))
    return 0
