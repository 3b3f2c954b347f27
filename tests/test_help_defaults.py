"""Every option of every subcommand has help text stating its default (avssl.cli.help_defaults)."""
import argparse
import subprocess
import sys

from avssl.cli import build_parser
from avssl.cli.help_defaults import default_text


def options(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, (*path, name))
        elif action.option_strings and action.dest != "help":
            yield path, action


def test_every_option_has_help_with_its_default():
    missing = []
    for path, action in options(build_parser()):
        text = action.help or ""
        if not text.strip() or "``" in text:
            missing.append((" ".join(path), action.option_strings, "no help" if not text.strip() else "markup"))
        elif default_text(action.default) is not None and "default" not in text.lower():
            missing.append((" ".join(path), action.option_strings, f"default {action.default!r} not shown"))
    assert not missing, missing


def test_help_of_a_real_process_shows_defaults():
    out = subprocess.run([sys.executable, "-m", "avssl", "eval", "clusters", "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    flat = " ".join(out.split())
    assert "videos per cluster in the grid (default: 6)" in flat
    assert "--iteration last|all|N" in flat and "--no-previews" in flat
