"""Where episodes are scored: this process (``LocalPool``) or a pool of Ray actors, each holding one loaded
model (``RayPool``). A pool takes a batch of jobs (up to ``batch_episodes``, scored together) for a worker and
hands back their results, or ``Lost`` when the worker died or hung (it is replaced) or the call failed.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import socket
import threading
import time
from typing import Protocol

from .episode_annotator import AnnotateError, AnnotateSettings, AnnotateWorker, Annotator, Job, JobResult

DEFAULT_CONNECT_TIMEOUT = 10      # s: for the cluster's address to accept a connection
DEFAULT_EPISODE_TIMEOUT = 1800    # s per episode of a batch: for a worker's result, from when it has its model loaded


@dataclasses.dataclass
class Lost:
    """A job that did not come back: its worker died (replaced) or the call itself failed."""

    message: str
    worker_died: bool


class WorkerPool(Protocol):
    """What the driver (``annotate``) needs of a pool, started: ``size`` workers, each given a batch of up to
    ``batch_episodes`` jobs at a time."""

    @property
    def size(self) -> int: ...

    @property
    def batch_episodes(self) -> int: ...

    @property
    def description(self) -> str:
        """Where the episodes are scored, for the summary."""

    @property
    def replaced(self) -> int:
        """Workers replaced so far (dead or hung)."""

    def start(self) -> None: ...

    def submit(self, worker: int, jobs: list[Job]) -> None: ...

    def wait(self) -> tuple[int, list[Job], list[JobResult] | Lost]:
        """The next batch that finished: its worker, its jobs, and their results in order, or Lost."""

    def replace(self, worker: int) -> None:
        """A new worker in place of a dead one (its batch came back Lost with ``worker_died``)."""

    def close(self) -> None: ...


class LocalPool:
    """One worker: this process."""

    size = 1
    description = "embedded (this process)"
    replaced = 0

    def __init__(self, annotator: Annotator):
        self.annotator = annotator
        self._done: collections.deque = collections.deque()

    @property
    def batch_episodes(self) -> int:
        return self.annotator.batch_episodes

    def start(self) -> None:
        pass

    def submit(self, worker: int, jobs: list[Job]) -> None:
        self._done.append((worker, jobs, self.annotator.run(jobs)))

    def wait(self) -> tuple[int, list[Job], list[JobResult] | Lost]:
        return self._done.popleft()

    def replace(self, worker: int) -> None:  # pragma: no cover - this process never dies and comes back
        pass

    def close(self) -> None:
        pass


class RayPool:
    """``workers`` Ray actors, each holding one loaded model; a dead one is replaced by a new one."""

    def __init__(self, settings: AnnotateSettings, address: str, workers: int | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, episode_timeout: float = DEFAULT_EPISODE_TIMEOUT,
                 batch_episodes: int | None = None):
        self.settings, self.address = settings, address
        self.batch_episodes = batch_episodes or 0   # 0 until start(): the workers' own default
        self.size = workers or 0                    # 0 until start(): as many as the cluster holds
        self.cpus, self.gpus = cpus_per_worker, gpus_per_worker
        self.connect_timeout, self.episode_timeout = connect_timeout, episode_timeout
        self.actors: list = []
        self._ready: list = []
        self._loading: dict = {}          # ready() ref -> worker, for replaced workers still loading the model
        self._since: dict[int, float] = {}  # worker -> when its job's time began (submitted, or its model loaded)
        self._pids: dict[int, int] = {}
        self._inflight: dict = {}
        self._started_ray = False
        self.replaced = 0

    @property
    def description(self) -> str:
        return f"Ray ({self.address}), {self.size} workers x {self.cpus} CPU, {self.gpus} GPU"

    def start(self) -> None:
        """Connect (or start a local Ray with address ``local``), check the resources, start the actors and wait
        until each has loaded the model. Raises AnnotateError (before any work) when that fails."""
        try:
            import ray
        except ImportError as exc:
            raise AnnotateError("--ray-address needs Ray: install this package's ray extra "
                                "(pip install '.[ray]' in its source folder)") from exc
        self.ray = ray
        if not ray.is_initialized():
            self._check_reachable()
            self._connect(ray)
            self._started_ray = True
        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        if self.gpus is None:
            self.gpus = 1.0 if gpus >= 1 else 0.0
        if not self.size:
            self.size = int(gpus // self.gpus) if self.gpus > 0 else int(cpus // self.cpus) if self.cpus > 0 else 1
        if self.size < 1 or self.size * self.cpus > cpus + 1e-9 or self.size * self.gpus > gpus + 1e-9:
            raise AnnotateError(f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: {max(self.size, 1)} workers "
                                f"with {self.cpus:g} CPUs and {self.gpus:g} GPUs each do not fit")
        self._remote = ray.remote(AnnotateWorker)
        self.actors = [self._new_actor() for _ in range(self.size)]
        self._ready = [actor.ready.remote() for actor in self.actors]
        try:
            answers = ray.get(self._ready)
        except ray.exceptions.RayError as exc:
            self.close()
            raise AnnotateError(f"Ray workers could not start: {' '.join(str(exc).split())[:500]}") from exc
        for worker, (pid, _, error, _) in enumerate(answers):
            if error:
                self.close()
                raise AnnotateError(f"a Ray worker cannot load the model: {error}")
            self._pids[worker] = pid
        # each worker chose its default from its own device: batches fit the smallest
        self.batch_episodes = self.batch_episodes or min(batch for *_, batch in answers)

    def _connect(self, ray) -> None:
        """ray.init, bounded by the connect timeout for a cluster (Ray itself retries an address that accepts
        connections but is no Ray, or a stale ``auto``, for many minutes); unbounded for ``local``, which
        starts one."""
        failure: list[Exception] = []

        def init() -> None:
            try:
                if self.address == "local":
                    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
                else:
                    ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, ValueError, RuntimeError ...
                failure.append(exc)

        connecting = threading.Thread(target=init, name="ray-init", daemon=True)
        connecting.start()
        connecting.join(None if self.address == "local" else self.connect_timeout)
        if connecting.is_alive():
            raise AnnotateError(f"no Ray cluster answered at {self.address} within {self.connect_timeout:g} s "
                                "(--ray-connect-timeout)")
        if failure:
            raise AnnotateError(f"cannot connect to the Ray cluster at {self.address}: "
                                f"{' '.join(str(failure[0]).split())}") from failure[0]

    def _check_reachable(self) -> None:
        """A HOST:PORT (or ray://HOST:PORT) that accepts no connection within the connect timeout is an error now:
        Ray itself retries a dead address for many minutes. ``auto`` and ``local`` are Ray's to find."""
        if self.address in ("auto", "local"):
            return
        host, _, port = self.address.removeprefix("ray://").rpartition(":")
        host = host.strip("[]")  # an IPv6 address
        if not host or not port.isdigit():
            raise AnnotateError(f"--ray-address {self.address}: expected auto, local, HOST:PORT or ray://HOST:PORT")
        try:
            socket.create_connection((host, int(port)), timeout=self.connect_timeout).close()
        except OSError as exc:
            raise AnnotateError(f"cannot connect to the Ray cluster at {self.address}: nothing accepted a connection "
                                f"within {self.connect_timeout:g} s ({exc.strerror or exc})") from exc

    def _new_actor(self):
        return self._remote.options(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0).remote(
            self.settings, max(1, int(self.cpus)), self.batch_episodes or None)

    def submit(self, worker: int, jobs: list[Job]) -> None:
        self._inflight[self.actors[worker].run.remote(jobs)] = (worker, jobs)
        if worker not in self._loading.values():
            self._since[worker] = time.monotonic()

    def wait(self) -> tuple[int, list[Job], list[JobResult] | Lost]:
        """The next result; a batch whose worker gave none within the episode timeout per episode comes back
        Lost, its worker to be replaced as a dead one is."""
        while True:
            deadlines = {ref: self._since[worker] + self.episode_timeout * len(jobs)
                         for ref, (worker, jobs) in self._inflight.items() if worker not in self._loading.values()}
            first = min(deadlines, key=deadlines.__getitem__, default=None)
            timeout = None if first is None else max(0.0, deadlines[first] - time.monotonic())
            ready, _ = self.ray.wait([*self._inflight, *self._loading], num_returns=1, timeout=timeout)
            if not ready:
                worker, jobs = self._inflight.pop(first)
                return worker, jobs, Lost(f"worker {self._pids.get(worker, '?')} gave no result within "
                                          f"{self.episode_timeout:g} s per episode (--episode-timeout)",
                                          worker_died=True)
            if ready[0] in self._loading:  # a replaced worker has loaded its model: its job's time starts
                self._since[self._loading.pop(ready[0])] = time.monotonic()
                continue
            break
        worker, jobs = self._inflight.pop(ready[0])
        exceptions = self.ray.exceptions
        try:
            return worker, jobs, self.ray.get(ready[0])
        except (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.ObjectLostError) as exc:
            return worker, jobs, Lost(f"worker {self._pids.get(worker, '?')} died: "
                                      f"{' '.join(str(exc).split())[:300]}", worker_died=True)
        except exceptions.RayError as exc:
            return worker, jobs, Lost(" ".join(str(exc).split())[:300], worker_died=False)

    def replace(self, worker: int) -> None:
        self.replaced += 1
        self.ray.kill(self.actors[worker], no_restart=True)
        self.actors[worker] = self._new_actor()
        self._ready[worker] = self.actors[worker].ready.remote()
        self._loading = {ref: loading for ref, loading in self._loading.items() if loading != worker}
        self._loading[self._ready[worker]] = worker
        self._pids.pop(worker, None)

    def close(self) -> None:
        if not hasattr(self, "ray"):
            return
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False
