"""Every ``--help`` shows each option's default: ``show_defaults(parser)`` appends ``(default: X)`` to the help
of each option (of every subcommand) whose text does not state its default already.

Usage: ``show_defaults(parser)`` (``avssl.cli.build_parser`` does it).
"""
from __future__ import annotations

import argparse


def default_text(value) -> str | None:
    """How a default reads in help, or None when there is nothing to say (off, empty, unset)."""
    if value is None or value is False or value is argparse.SUPPRESS:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) if value else None
    return str(value)


def show_defaults(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                show_defaults(sub)
        elif action.option_strings and action.help not in (None, argparse.SUPPRESS):
            text = default_text(action.default)
            if text is not None and "default" not in action.help.lower():
                action.help = f"{action.help} (default: {text.replace('%', '%%')})"
    return parser
