"""Where a program may write: checked before any work, so that a bad output path is an error at once and
not after the scoring. At the bottom of the package (ROS-free), so the tools and the ROS programs share it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import TopRewardError


class OutputError(TopRewardError):
    """An output path that cannot be written as asked (a file where a folder is wanted, a foreign folder, ...)."""


def _named(what: str, path: Path) -> str:
    """How a message names the path: ``--output out/x``, or the bare path where argparse already names the option."""
    return f"{what} {path}" if what else str(path)


def check_writable_folder(folder: Path, what: str, path: Path) -> None:
    """Create and remove a hidden folder in ``folder``: the only test that holds for root too (os.access says
    yes to root in /proc and /sys, where nothing can be created). Nothing is left behind."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".topreward-probe-", dir=folder))
    except OSError as exc:
        raise OutputError(f"{_named(what, path)}: cannot write in {folder} ({exc.strerror or exc})") from None


def check_creatable(path: Path, what: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a folder we may write in."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{_named(what, path)}: {ancestor} exists and is not a folder")
    check_writable_folder(ancestor, what, path)


def check_output_file(path: str | Path, what: str = "--output") -> Path:
    """A file to (over)write: not a folder, and creatable. Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{_named(what, path)} is a folder; give a file name")
    if path.exists() or path.is_symlink():
        check_writable_folder(path.parent, what, path)
    else:
        check_creatable(path, what)
    return path


def check_output_folder(path: str | Path, what: str = "--output") -> Path:
    """A folder to write in: an existing one we may write in, or one that can be created. Nothing is created."""
    path = Path(path)
    if path.is_dir():
        check_writable_folder(path, what, path)
    elif path.exists() or path.is_symlink():
        raise OutputError(f"{_named(what, path)} exists and is not a folder")
    else:
        check_creatable(path, what)
    return path


def check_new_path(path: str | Path, what: str = "--output") -> Path:
    """A file or folder to create that must not exist yet. Nothing is created."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise OutputError(f"{_named(what, path)} already exists; give a new path")
    check_creatable(path, what)
    return path
