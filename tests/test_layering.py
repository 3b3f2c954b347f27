"""Imports run downwards: no module of a lower layer imports one of a higher layer (issue #14's layering).

Layers, bottom to top; a module may import its own layer and the ones below. Top-level modules that
are not listed (errors, io, seeds, progress, runs, ...) are not checked here.
"""
import ast
from pathlib import Path

import avssl

# The README's layout section: data/, models/ < config/ < methods/ < clustering/, engine/ < evaluation/ <
# workflows/ < cli/ (the config checks ask data/ what it implements; losses/ are pure functions of tensors).
LAYERS = [{"data", "models", "losses"}, {"config"}, {"methods"}, {"clustering", "engine"}, {"evaluation"},
          {"workflows"}, {"cli"}]
RANK = {package: i for i, layer in enumerate(LAYERS) for package in layer}
ROOT = Path(avssl.__file__).parent


def _imported_packages(path: Path, root: Path = ROOT) -> set[str]:
    """The avssl subpackages a module imports (absolute or relative, anywhere in the file)."""
    parts = path.relative_to(root).with_suffix("").parts  # e.g. ("data", "media", "decode")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, node.level - 1 packages up
                target = list(parts[: len(parts) - node.level]) + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "avssl":
                target = node.module.split(".")[1:]
            else:
                continue
            # "from .. import engine" names the package in the imported names
            found.update(target[:1] if target else (alias.name for alias in node.names))
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("avssl."))
    return found


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        package = path.relative_to(ROOT).parts[0]
        if package not in RANK:
            continue
        for imported in _imported_packages(path):
            if imported in RANK and RANK[imported] > RANK[package]:
                upward.append(f"{path.relative_to(ROOT)} imports avssl.{imported}")
    assert not upward, "imports that run up the layering:\n" + "\n".join(upward)


def test_the_scanner_finds_relative_and_absolute_upward_imports(tmp_path):
    (tmp_path / "config").mkdir()
    bad = tmp_path / "config" / "bad.py"
    bad.write_text("from ..engine import pretrain\nimport avssl.data.views\nfrom . import tree\n"
                   "def f():\n    from avssl.methods.xdc import XDC\n")
    assert _imported_packages(bad, tmp_path) == {"engine", "data", "config", "methods"}
