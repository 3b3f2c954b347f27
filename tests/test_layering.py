"""Imports run downwards: no module of a lower layer imports one of a higher layer (issue #14's layering).

Layers, bottom to top; a module may import its own layer and the ones below. Every package and every
top-level module has a layer (``test_every_module_has_a_layer``), so a new module must be placed here.
"""
import ast
from pathlib import Path

import avssl

# The README's layout section. The bottom row is the utilities every layer may use (errors, atomic I/O,
# seeds, DDP helpers, ...); runs.py, the run directory's format, sits with the methods it stores; the
# trackers read the config; weights/ converts encoders.pt files (runs.py) and nothing above.
LAYERS = [{"errors", "io", "seeds", "distributed", "machine", "paths", "progress", "method_names", "runlock",
           "curves"},
          {"data", "models", "losses"}, {"config"}, {"methods", "runs", "tracking", "wandb_tracking", "weights"},
          {"clustering", "engine"}, {"evaluation"}, {"workflows"}, {"cli"}]
RANK = {package: i for i, layer in enumerate(LAYERS) for package in layer}
ROOT = Path(avssl.__file__).parent
ENTRY_POINTS = {"__init__", "__main__"}  # the package itself and ``python -m avssl`` (calls cli)


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
        package = _layer_name(path)
        if package in ENTRY_POINTS:
            continue
        for imported in _imported_packages(path):
            if imported in RANK and RANK[imported] > RANK[package]:
                upward.append(f"{path.relative_to(ROOT)} imports avssl.{imported}")
    assert not upward, "imports that run up the layering:\n" + "\n".join(upward)


def _layer_name(path: Path) -> str:
    """The package a module is in, or the top-level module's own name (``runs`` for runs.py)."""
    return path.relative_to(ROOT).with_suffix("").parts[0]


def test_every_module_has_a_layer():
    unplaced = sorted({_layer_name(p) for p in ROOT.rglob("*.py")} - set(RANK) - ENTRY_POINTS)
    assert not unplaced, f"modules or packages without a layer in LAYERS (place them in the README's order): {unplaced}"


def test_the_scanner_finds_relative_and_absolute_upward_imports(tmp_path):
    (tmp_path / "config").mkdir()
    bad = tmp_path / "config" / "bad.py"
    bad.write_text("from ..engine import pretrain\nimport avssl.data.views\nfrom . import tree\n"
                   "def f():\n    from avssl.methods.xdc import XDC\n")
    assert _imported_packages(bad, tmp_path) == {"engine", "data", "config", "methods"}
