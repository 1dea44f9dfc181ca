"""Writing a curve report: JSON (summary + settings), CSV (one row per prefix) and a PNG plot.

Every file is written under a temporary name in its own folder and renamed into place, so a
reader never sees half a file. A whole report folder is built aside (``staged_report``) and
replaces the previous report of the same tool only once it is complete: a report folder never
mixes two runs' files.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..outputs import OutputError, atomic_path, check_creatable, check_writable_folder, json_safe, write_text_atomic
from .curve import CurveReport
from .metrics import format_voc

PARTIAL = ".topreward-partial-"  # prefix of the folders a report is built in before it is moved into place


def check_report_folder(folder: str | Path, report_files: re.Pattern, tool: str, what: str = "--output") -> Path:
    """A report folder that is safe to write: new, empty, or a previous report of ``tool`` (every entry a
    file whose name ``report_files`` matches in full). Nothing is created."""
    folder = Path(folder)
    if not folder.exists():
        if folder.is_symlink():
            raise OutputError(f"{what} {folder} is a broken symbolic link")
        check_creatable(folder, what)
        return folder
    if not folder.is_dir():
        raise OutputError(f"{what} {folder} exists and is not a folder")
    foreign = sorted(entry.name for entry in folder.iterdir() if not _ours(entry, report_files))
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{what} {folder} holds files that are not from a previous {tool} report ({listed}); "
                          "give a new or empty folder")
    check_writable_folder(folder, what, folder)
    return folder


def _ours(entry: Path, report_files: re.Pattern) -> bool:
    if entry.name.startswith(PARTIAL):  # left by a run that was killed
        return entry.is_dir() and not entry.is_symlink()
    return entry.is_file() and not entry.is_symlink() and report_files.fullmatch(entry.name) is not None


@contextlib.contextmanager
def staged_report(folder: str | Path, report_files: re.Pattern, tool: str, last: Iterable[str] = (),
                  what: str = "--output") -> Iterator[Path]:
    """A temporary folder to write a report into; when the block succeeds the report takes the place of
    ``folder``'s previous one (checked with ``check_report_folder``), when it fails nothing changes.

    A new folder is built as a hidden sibling and renamed into place (it appears complete). In an
    existing folder the report is built in a hidden subfolder; the previous report's files are then
    deleted and the new ones moved in, those named in ``last`` (the summary) last.
    """
    folder = check_report_folder(folder, report_files, tool, what)
    mask = os.umask(0)
    os.umask(mask)
    existing = folder.exists()
    if existing:
        staging = Path(tempfile.mkdtemp(prefix=PARTIAL, dir=folder))
    else:
        folder = Path(os.path.abspath(folder))
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}{PARTIAL}", dir=folder.parent))
        os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes it private; the report folder is an ordinary one
    try:
        yield staging
        if not existing:
            os.rename(staging, folder)
            return
        for entry in folder.iterdir():
            if entry == staging:
                continue
            if entry.name.startswith(PARTIAL) and _ours(entry, report_files):
                shutil.rmtree(entry, ignore_errors=True)
            elif _ours(entry, report_files):
                entry.unlink()
        last = set(last)
        for name in sorted((p.name for p in staging.iterdir()), key=lambda name: (name in last, name)):
            os.replace(staging / name, folder / name)
        staging.rmdir()
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def summary_dict(report: CurveReport, settings: dict) -> dict:
    """The report as JSON-ready data (undefined VOC becomes null)."""
    return json_safe({**report.summary(), "settings": settings})


def write_report(report: CurveReport, settings: dict, directory: str | Path, name: str = "curve") -> dict[str, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / f"{name}.json", "csv": directory / f"{name}.csv", "png": directory / f"{name}.png"}
    write_text_atomic(paths["json"], json.dumps(summary_dict(report, settings), indent=2) + "\n")

    curve, static = report.curve, report.static
    with atomic_path(paths["csv"]) as temporary, temporary.open("x", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        num_prompts = len(curve.scores[0].true_logprobs)
        writer.writerow(["prefix", "frames", "time_s", "reward", "progress", "static_reward"]
                        + [f"logp_true_{i}" for i in range(num_prompts)]
                        + [f"logp_false_{i}" for i in range(num_prompts)])
        for i, (n, t, score, p, s) in enumerate(zip(curve.lengths, curve.times, curve.scores, curve.progress,
                                                    static.values)):
            writer.writerow([i, n, f"{t:.6f}", f"{score.value:.6f}", f"{p:.6f}", f"{s:.6f}"]
                            + [f"{v:.6f}" for v in score.true_logprobs] + [f"{v:.6f}" for v in score.false_logprobs])

    fig, (raw, norm) = plt.subplots(1, 2, figsize=(11, 4))
    raw.plot(curve.times, curve.values, "o-", label="video")
    raw.plot(static.times, static.values, "s--", color="gray", label="static control")
    raw.set_xlabel("time (s)")
    raw.set_ylabel("reward (raw)")
    raw.legend()
    norm.plot(curve.times, curve.progress, "o-")
    norm.set_xlabel("time (s)")
    norm.set_ylabel("progress (min-max)")
    norm.set_ylim(-0.05, 1.05)
    fig.suptitle(f"{name}: VOC {format_voc(curve.voc)}, static VOC {format_voc(static.voc)}")
    fig.tight_layout()
    try:
        with atomic_path(paths["png"]) as temporary:
            fig.savefig(temporary, dpi=100, format="png")
    finally:
        plt.close(fig)
    return paths
