"""Scoring whole collections (bag trees, LeRobot datasets, video folders), in this process or on a Ray cluster.

The driver: it queues one job per episode not yet in the output folder, hands jobs to a pool's workers
(``worker_pool``; each scores with ``episode_annotator``), writes each finished episode's part as it arrives,
and assembles the run folder at the end (``annotation_folder``: the tables; ``rabc_progress``: LeRobot's
progress files; ``annotation_summary``). A run killed at any point and started again
with the same output folder scores only the episodes without a part: none is recomputed, lost or
duplicated. A worker that dies is replaced and its episode retried, up to ``max_attempts`` times; then the
episode is recorded as failed with the reason. Bad input (an unreadable bag, a corrupt video, an episode
without frames or without a task) is recorded on its episode and the run goes on.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..sources.collections import Item, Source
from .annotation_folder import (check_output, progress_path, read_part_rows, run_record, start_output, write_part,
                                write_summary, write_tables)
from .annotation_summary import markdown, summarize
from .episode_annotator import AnnotateError, AnnotateSettings, Job, Outcome
from .rabc_progress import RABC_MODES, write_progress
from .worker_pool import Lost, WorkerPool

DEFAULT_MAX_ATTEMPTS = 3


@dataclasses.dataclass
class RunResult:
    summary: dict     # summary.json's content
    output: Path


def annotate(sources: Sequence[Source], settings: AnnotateSettings, output: str | Path, pool: WorkerPool, *,
             max_attempts: int = DEFAULT_MAX_ATTEMPTS, retry_failed: bool = False, rabc: str = "causal",
             show_progress: bool = True, after_part: Callable[[Path, Outcome, WorkerPool], None] | None = None,
             run_info: dict | None = None) -> RunResult:
    """Score every episode of ``sources`` not already in ``output`` with ``pool`` (started), then assemble the
    tables. ``after_part(path, outcome, pool)`` is called after each part is written (tests use it)."""
    from tqdm import tqdm

    if rabc not in RABC_MODES:
        raise AnnotateError(f"unknown RA-BC progress mode {rabc!r}: use {', '.join(RABC_MODES)}")
    output = Path(os.path.abspath(output))
    record = run_record(sources, settings)
    check_output(output, record)
    parts = start_output(output, record)
    done = read_part_rows(parts)
    if retry_failed:
        done = {key: row for key, row in done.items() if not row.failed}
    resumed = len(done)

    queue: collections.deque[Job] = collections.deque()
    queued: set[str] = set()
    expected: dict[str, int] = {}      # bag group -> episodes counted in the bar's total
    counted: set[str] = set()          # bag groups whose episode count a worker has read

    def enqueue(item: Item, episode: int, front: bool = False) -> None:
        job = Job(item, episode)
        if job.key in done or job.key in queued:
            return
        queued.add(job.key)
        (queue.appendleft if front else queue.append)(job)

    for source in sources:
        for item in source.items:
            if item.kind != "bag":
                assert item.episode is not None  # only a bag's episodes are found when it is read
                enqueue(item, item.episode)
                continue
            known = [row for row in done.values() if row.source == item.source and row.item == item.name]
            count = max((row.episodes_in_item or 1 for row in known), default=None)
            expected[item.group] = count or 1
            if count is not None:
                counted.add(item.group)
            for episode in range(count or 1):
                enqueue(item, episode)
    total = resumed + len(queue)

    bar = tqdm(total=total, initial=resumed, desc="episodes", unit="episode", disable=not show_progress,
               dynamic_ncols=True)
    started, completed, failures = time.perf_counter(), 0, sum(r.failed for r in done.values())
    busy: dict[int, list[Job]] = {}
    cache: dict[int, str] = {}

    def record_outcome(outcome: Outcome, job: Job, attempts: int) -> None:
        nonlocal completed, failures
        outcome.row.attempts = attempts
        path = write_part(parts, outcome)
        done[path.stem] = outcome.row
        queued.discard(job.key)
        completed += 1
        failures += outcome.row.failed
        rate = completed / max(time.perf_counter() - started, 1e-9) * 3600
        bar.set_postfix_str(f"{rate:.0f} episodes/h, {failures} failed", refresh=False)
        bar.update(1)
        if after_part is not None:
            after_part(path, outcome, pool)

    try:
        while queue or busy:
            for worker in range(pool.size):
                if worker in busy or not queue:
                    continue
                jobs = _take(queue, cache.get(worker), pool.batch_episodes)
                busy[worker] = jobs
                cache[worker] = jobs[-1].item.group
                pool.submit(worker, jobs)
            worker, jobs, results = pool.wait()
            del busy[worker]
            if isinstance(results, Lost):
                if results.worker_died:
                    pool.replace(worker)
                    cache.pop(worker, None)
                for job in reversed(jobs):
                    job.attempts += 1
                    job.errors.append(results.message)
                    if job.attempts < max_attempts:
                        queue.appendleft(job)
                        continue
                    reason = f"gave up after {job.attempts} attempts: {results.message}"
                    if job.item.kind == "bag" and job.item.group not in counted:
                        reason += ("; the bag was never read, so its other episodes, if any, are not scored: "
                                   "run again with --retry-failed")
                    row = job.row()
                    row.fail(reason, 0.0)
                    record_outcome(Outcome(row), job, job.attempts)
                continue
            for job, result in zip(jobs, results):
                record_outcome(result.outcome, job, job.attempts + 1)
                if result.episodes_in_item is not None and job.item.kind == "bag":
                    group = job.item.group
                    counted.add(group)
                    if result.episodes_in_item > expected.get(group, 1):
                        bar.total += result.episodes_in_item - expected.get(group, 1)
                        expected[group] = result.episodes_in_item
                        bar.refresh()
                    for episode in reversed(range(result.episodes_in_item)):  # next: the same worker, its bag cached
                        enqueue(job.item, episode, front=True)
    finally:
        bar.close()
    wall = time.perf_counter() - started
    info = {"this_run_episodes": completed, "resumed_episodes": resumed, "wall_seconds": wall,
            "episodes_per_hour": completed / wall * 3600 if wall > 0 and completed else None,
            "execution": pool.description, "workers_replaced": pool.replaced,
            **(run_info or {})}
    return RunResult(assemble(output, sources, settings, rabc, info), output)


def assemble(output: Path, sources: Sequence[Source], settings: AnnotateSettings, rabc: str, info: dict) -> dict:
    """The run folder's tables, progress files and summary, from its parts; returns the summary."""
    frames, rows = write_tables(output, sources)
    progress = [write_progress(progress_path(output, dataset), dataset, frames, rows, rabc, settings.reward.model)
                for source in sources for dataset in source.datasets]
    summary = summarize(sources, rows, progress, settings, rabc, info)
    write_summary(output, summary, markdown(summary))
    return summary


def _take(queue: collections.deque, cached: str | None, count: int) -> list[Job]:
    """Up to ``count`` jobs, those reading what the worker read last first (a bag's frames stay in its memory)."""
    jobs = [job for job in queue if job.item.group == cached][:count] if cached is not None else []
    for job in jobs:
        queue.remove(job)
    while len(jobs) < count and queue:
        jobs.append(queue.popleft())
    return jobs
