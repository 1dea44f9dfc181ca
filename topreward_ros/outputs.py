"""Where a program may write, and how: paths checked before any work, so that a bad output path is an error at
once and not after the scoring; files written under a temporary name and renamed into place, so that a reader
never sees half a file. At the bottom of the package (ROS-free), so the tools and the ROS programs share it."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed onto ``path`` (os.replace) when the block succeeds,
    removed when it fails."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, temporary.open("x", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def json_safe(value):
    """NaN (an undefined VOC) becomes null, recursively: what json.dumps writes is then valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
