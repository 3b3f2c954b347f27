"""The ``avssl`` command: one subcommand per job (pretrain, presets, status, demo, data, extract, eval ...).

    avssl --help            (or python -m avssl, python -m avssl.cli)

One module per command group (``COMMAND_MODULES``), each with a ``register(subparsers)`` function.
Building the parser imports argparse and light modules only (``config``, ``method_names`` and each
command module); torch, faiss, scikit-learn and PyAV are imported by the functions that run a
command, so ``avssl --help`` and every ``--help`` answer at once.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import AvsslError
from .parser import ArgumentParser
from .help_defaults import show_defaults

# The modules of avssl.cli, each adding its subcommands with ``register(subparsers)``, in --help order.
# Each imports only light modules at the top: building the parser imports all of them.
COMMAND_MODULES = ["pretrain", "runs", "evaluation", "data", "workflows", "reproduce", "weights"]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="avssl", description="Self-supervised audio-visual learning: XDC and friends.")
    parser.add_argument("--version", action="version", version=f"avssl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"avssl.cli.{name}").register(sub)
    return show_defaults(parser)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except AvsslError as e:
        print(f"avssl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("avssl: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
        return 130
