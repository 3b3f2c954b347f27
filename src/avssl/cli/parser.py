"""The parser classes of every ``avssl`` command and the options several commands share.

    from avssl.cli.parser import ArgumentParser, add_config_options
"""
from __future__ import annotations

import argparse
import re
import textwrap


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's help with each option's default where it says something (not for flags, required
    options and options without a value), descriptions kept in paragraphs and bullet lists, and the
    reST ``code`` markup of docstrings dropped."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default" in text.lower() or not _shows_default(action):
            return text
        return f"{text} (default: {_default_text(action.default)})"

    def _expand_help(self, action) -> str:
        return super()._expand_help(action).replace("``", "")

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for paragraph in re.split(r"\n\s*\n", textwrap.dedent(text.replace("``", "")).strip()):
            for item in re.split(r"\n(?=\s*[-*] )", paragraph):  # a bullet starts a new line
                item = " ".join(item.split())
                hang = "  " if item.startswith(("- ", "* ")) else ""
                lines.append(textwrap.fill(item, width, initial_indent=indent, subsequent_indent=indent + hang))
            lines.append("")
        return "\n".join(lines).rstrip()


def _shows_default(action) -> bool:
    flag = isinstance(action, (argparse._StoreConstAction, argparse._HelpAction, argparse._VersionAction,
                               argparse._CountAction))  # store_true/store_false are store-const actions
    empty = action.default is None or action.default is argparse.SUPPRESS or action.default == []
    return bool(action.option_strings) and not action.required and not flag and not empty


def _default_text(default) -> str:
    text = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
        if isinstance(default, (list, tuple)) else str(default)
    return text.replace("%", "%%")


class _SubParsers(argparse._SubParsersAction):
    """Subcommands whose registration gives no description get their one-line help as one."""

    def add_parser(self, name, **kwargs):
        short = kwargs.get("help")
        if kwargs.get("description") is None and short:
            kwargs["description"] = short[0].upper() + short[1:] + ("" if short.endswith(".") else ".")
        return super().add_parser(name, **kwargs)


class ArgumentParser(argparse.ArgumentParser):
    """The parser of ``avssl`` and of every subcommand (``add_subparsers`` makes more of this class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubParsers)


# --- shared options --------------------------------------------------------------------------------

def add_config_options(p, *, preset_help: str | None = None, set_help: str | None = None,
                       config_help: str | None = None) -> None:
    """``--preset`` (unless ``preset_help`` is ``False``), ``--config FILE`` and ``--set KEY=VALUE``,
    merged by ``avssl.config.resolve`` (config/presets.py): preset < config file < --set."""
    from ..config import PRESETS

    if preset_help is not False:  # no argparse choices: an unknown name gets resolve's "did you mean"
        p.add_argument("--preset", metavar="PRESET",
                       help=(preset_help or "named config to start from") + f"; one of {', '.join(PRESETS)} "
                                                                           "(see avssl presets)")
    p.add_argument("--config", metavar="FILE",
                   help=config_help or "YAML or JSON file with any part of the config tree (a run's config.json "
                                       "is one); its values override the preset's, --set overrides them")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=set_help or "override one config value, e.g. --set optim.lr=0.02 (repeatable; wins over "
                                    "--config)")


def add_scratch_options(p, what: str, preset_help: str, set_example: str, seed_help: str) -> None:
    """How to build random ("scratch") encoders, as ``avssl pretrain`` builds a config (--preset < --config
    < --set), and ``--seed`` of their weights; ``what`` names them in the help ("'scratch'")."""
    add_config_options(p, preset_help=preset_help,
                       config_help=f"YAML or JSON config file for {what} (a run's config.json gives random encoders "
                                   f"of that run's architecture); over --preset, under --set",
                       set_help=f"config value for {what}, e.g. --set {set_example} (repeatable)")
    p.add_argument("--seed", type=int, default=0, help=seed_help)


def add_device_options(p) -> None:
    """``--device`` and ``--no-progress``, as every evaluation command takes them."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
