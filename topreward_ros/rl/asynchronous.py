"""Scoring off the critical path: a wrapper's steps are scored in order on a worker thread.

The environment's thread hands each step over (its frames and environment rewards) and goes on; the worker
scores the steps in the order they were taken, one at a time, and computes each step's reward exactly as the
synchronous wrapper would. Finished steps wait in ``take`` until the wrapper hands them out. A failure stops
the worker's scoring; the error is raised on the environment's thread at its next call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from .options import WrapperError


class ScoringThread:
    """Runs ``work(job)`` for each submitted job, in submission order, on one thread; what it returns (None:
    nothing to hand out, e.g. a reset) waits for ``take``. ``close`` finishes every job, then joins."""

    def __init__(self, work: Callable[[Any], dict | None]):
        self.work = work
        self._jobs: queue.Queue[tuple[Any] | None] = queue.Queue()
        self._ready: list[dict] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="topreward-scoring", daemon=True)
        self._thread.start()

    def submit(self, job: Any) -> None:
        self._raise()
        self._jobs.put((job,))

    def take(self, wait: bool = False) -> list[dict]:
        """What the jobs finished since the last take returned, oldest first; with ``wait``, once every
        submitted job is finished."""
        if wait:
            self._jobs.join()
        self._raise()
        with self._lock:
            ready, self._ready = self._ready, []
        return ready

    def close(self) -> None:
        """Finish every submitted job, then stop the thread (the results stay for ``take``)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    result = self.work(item[0])
                    if result is not None:
                        with self._lock:
                            self._ready.append(result)
            except BaseException as exc:  # noqa: BLE001 - raised on the environment's thread at its next call
                self._error = exc
            finally:
                self._jobs.task_done()


class OffCriticalPath:
    """``collect`` and ``close`` of a wrapper that scores on a ScoringThread (``_scorer``) when asynchronous."""

    _scorer: ScoringThread | None = None

    def collect(self, wait: bool = True) -> list[dict]:
        """Asynchronous mode: the steps scored and not yet handed out (as in ``info["topreward_ready"]``); with
        ``wait``, after every step taken so far is scored. Works after ``close()`` too."""
        if self._scorer is None:
            raise WrapperError("collect() is for a wrapper made with asynchronous=True")
        return self._scorer.take(wait)

    def close(self, **kwargs: Any) -> None:
        """Closes the environment; asynchronous mode first scores every step taken and joins its thread."""
        if self._scorer is not None:
            self._scorer.close()
        super().close(**kwargs)  # type: ignore[misc]
