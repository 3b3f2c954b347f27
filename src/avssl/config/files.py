"""Config files: the tree of a YAML or JSON file, checked against the config's keys and types, and a
config written back as YAML (``avssl presets NAME``).

    tree = load_config_file("exp.yaml")   # then tree_overrides(tree) -> ["optim.lr=0.02", ...]
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from ..errors import ConfigError
from .tree import PretrainConfig, _section_type, _type_problem, did_you_mean


def load_config_file(path) -> dict:
    """The config tree of a YAML or JSON file (``.json``: JSON; anything else: YAML, which also reads
    JSON), checked against the config's keys and value types: one ConfigError names every problem.
    Sections nest (``clustering: {k: 64}``); dotted keys (``clustering.k: 64``) work as well."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            tree = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    else:
        import yaml

        try:
            tree = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if tree is None:  # an empty file (or only comments)
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {path} must hold a mapping of config keys (e.g. 'optim: {{lr: 0.02}}'), "
                          f"got {type(tree).__name__}")
    problems: list[str] = []
    tree = _nest(tree, "", problems)
    if not problems:
        _check_tree(tree, PretrainConfig, "", problems)
    if problems:
        raise ConfigError(f"config file {path}:\n  " + "\n  ".join(problems))
    return tree


def to_yaml(cfg: PretrainConfig, header: str = "") -> str:
    """``cfg`` as YAML in the order of the dataclasses (a valid ``--config`` file), under ``header``
    lines written as comments."""
    import yaml

    body = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False, width=100)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body


def _nest(tree: dict, prefix: str, problems: list) -> dict:
    """Dotted keys (``optim.lr: 0.1``) expanded into sections, merged with nested ones."""
    out: dict = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            problems.append(f"{prefix}{key!r}: keys must be strings")
            continue
        if isinstance(value, dict):
            value = _nest(value, f"{prefix}{key}.", problems)
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"{prefix}{key}: {part!r} is given both as a value and as a section")
                break
        else:
            last = parts[-1]
            if isinstance(node.get(last), dict) and isinstance(value, dict):
                node[last].update(value)
            elif last in node:
                problems.append(f"{prefix}{key} is given twice")
            else:
                node[last] = value
    return out


def _check_tree(tree: dict, cls, prefix: str, problems: list) -> None:
    """Unknown keys (with the nearest valid one), values where sections belong, and value types."""
    known = {f.name: f for f in fields(cls)}
    for name, value in tree.items():
        key = prefix + name
        if name not in known:
            problems.append(f"unknown key {key!r}{did_you_mean(key)}")
            continue
        sub = _section_type(cls, name)
        if sub is not None:
            if isinstance(value, dict):
                _check_tree(value, sub, f"{key}.", problems)
            else:
                problems.append(f"{key} is a config section (key: value pairs), got {value!r}")
            continue
        expected = _type_problem(known[name].type, value)
        if expected:
            problems.append(f"{key} must be {expected}, got {value!r}")


def _yaml_loader():
    """PyYAML's SafeLoader, reading ``1e-3`` as a number (YAML 1.1 wants ``1.0e-3``, and reads
    ``1e-3`` as a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    return Loader
