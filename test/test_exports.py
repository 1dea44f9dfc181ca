"""Each subpackage's __init__ exports its public names lazily (PEP 562): __all__, the name-to-module table its
__getattr__ reads and the imports type checkers read agree, every name exists in its module, and importing a
package loads nothing heavy (the ROS-free layers never load rclpy, matplotlib or Ray)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "topreward_ros"
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
ROS_FREE = ["method", "stream", "sources", "synthetic", "rl"]


def exports(subpackage: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(__all__, the _MODULE_OF table, {name: module} of the TYPE_CHECKING imports) of one __init__.py."""
    tree = ast.parse((PACKAGE / subpackage / "__init__.py").read_text())
    names: list[str] = []
    table: dict[str, str] = {}
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id == "__all__" and isinstance(node.value, ast.List):
                names = ast.literal_eval(node.value)  # a package that exports nothing (tools/)
            elif isinstance(target, ast.Name) and target.id == "__all__":
                assert ast.unparse(node.value) == "sorted(_MODULE_OF)"
            if isinstance(target, ast.Name) and target.id == "_MODULE_OF":
                table = ast.literal_eval(node.value)
                names = sorted(table)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imported in node.body:
                assert isinstance(imported, ast.ImportFrom) and imported.level == 1
                typed |= {alias.name: imported.module for alias in imported.names}
    return names, table, typed


def top_level_names(module: Path) -> set[str]:
    found = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return found


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_exports_agree_and_exist(subpackage):
    names, table, typed = exports(subpackage)
    assert names == sorted(names), f"{subpackage}/__init__.py: keep __all__ sorted"
    assert set(names) == set(table) == set(typed), f"{subpackage}/__init__.py: __all__, _MODULE_OF and the " \
                                                   "TYPE_CHECKING imports must name the same things"
    assert table == typed, f"{subpackage}/__init__.py: _MODULE_OF and the TYPE_CHECKING imports disagree"
    for name, module in table.items():
        assert name not in {p.stem for p in (PACKAGE / subpackage).glob("*.py")}, \
            f"{subpackage}.{name} is also a module: importing it would replace the exported name"
        assert name in top_level_names(PACKAGE / subpackage / f"{module}.py"), \
            f"{subpackage}/__init__.py exports {name}, which {subpackage}/{module}.py does not define"


def test_importing_the_packages_loads_nothing_heavy():
    code = (f"import json, sys, importlib; packages = {SUBPACKAGES!r}; "
            "[importlib.import_module('topreward_ros.' + p) for p in packages]; "
            "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'rclpy', 'matplotlib', 'ray', 'cv2', "
            "'rosbags', 'av') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_ros_free_layers_export_without_ros_matplotlib_or_ray():
    code = (f"import json, sys, importlib\n"
            f"for p in {ROS_FREE!r}:\n"
            "    package = importlib.import_module('topreward_ros.' + p)\n"
            "    [getattr(package, name) for name in package.__all__]\n"
            "print(json.dumps(sorted(m for m in ('rclpy', 'matplotlib', 'ray') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
