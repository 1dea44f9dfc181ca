"""Lint and types as habits: ruff (ruff.toml) finds nothing in the package, its tests and benchmarks, and mypy
(mypy.ini) finds nothing in the whole package. A finding fails with the tool's own report."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINTED = ["topreward_ros", "test", "bench"]
TYPED = ["topreward_ros"]


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_ruff_finds_nothing():
    result = tool("ruff", "check", "--no-cache", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    # the cache (.mypy_cache, ignored by git) makes a second run take seconds instead of about 20
    result = tool("mypy", *TYPED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found")


def test_ruff_reports_a_finding(tmp_path):
    # the check can fail: an unused import and a noqa that suppresses nothing, under the project's rules
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = 1  # noqa: E501\n")
    result = tool("ruff", "check", "--no-cache", "--config", str(ROOT / "ruff.toml"), str(bad))
    assert result.returncode == 1
    assert "F401" in result.stdout and "RUF100" in result.stdout


def test_mypy_reports_a_finding(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('frames: int = "none"\n')
    result = tool("mypy", "--config-file", str(ROOT / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"), str(bad))
    assert result.returncode == 1
    assert "[assignment]" in result.stdout
