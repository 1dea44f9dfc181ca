"""The package's layers are a contract (import-linter, configured in setup.cfg): no module imports
from a higher layer, only rl/ imports gymnasium and nothing imports rl/, and the README's layout table names
every folder."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    # the contract is found in setup.cfg in root (the working directory): import-linter 2.15, the newest for
    # CPython 3.10, takes no config file as an argument and 2.17 deprecates --config
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": str(LINT.parent)}, timeout=300)


def test_no_module_imports_from_a_higher_layer():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "topreward_ros", copy / "topreward_ros", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", copy / "setup.cfg")
    engine = copy / "topreward_ros" / "method" / "engine.py"
    engine.write_text(engine.read_text() + "\nfrom ..evaluation import metrics  # noqa: E402,F401\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "topreward_ros.method.engine -> topreward_ros.evaluation.metrics" in result.stdout


def test_readme_layout_table_matches_the_folders():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `topreward_ros/(\w+)/` \|", readme, re.M))
    folders = {p.name for p in (ROOT / "topreward_ros").iterdir() if (p / "__init__.py").exists()}
    assert documented == folders
