"""Engines: where the videos of a build run. Each is a plain function with one signature,
registered by name in :data:`ENGINES` (img2dataset's distributors are the model)::

    engine(storage, tasks, options, on_video, *, resources, limits, work, **engine_options)

``storage`` is the dataset (:class:`fastunlc.storage.Storage`, which a worker process
unpickles into its own connection), ``tasks`` the videos to process (:data:`Task`), in
order; the engine runs ``work(storage, index, video, options, limits.seconds)`` once per
task, each with what ``resources`` asks for and under ``limits``, and calls
``on_video(task, result)`` in the calling process as each video finishes, with what
``work`` returned (the video's record). The engine owns retries: a video whose worker
dies is retried as the engine can, and one that still kills its worker is recorded as
failed (:func:`write_failed_part`), so a run always ends with a finished part for every
task (or an exception of the output, or an interrupt). ``engine_options`` are the
engine's own keyword arguments (the local engine's ``workers``, the Ray engine's
``address`` and ``retries``).

A new engine (a Slurm array, Dask) is one such function and one entry in :data:`ENGINES`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Protocol

from ..backend import set_cpu_threads
from ..config import UNLCConfig
from ..storage import Storage
from .limits import NO_LIMITS, Limits, cap_memory
from .options import BuildOptions
from .worker import Task, Work, process_video, write_failed_part

OnVideo = Callable[[Task, dict[str, Any]], None]
"""Called with a task and its record (:func:`~fastunlc.build.worker.process_video`'s
result) as the video finishes."""

MEMORY_MB_PER_VIDEO = 1024
"""Memory a scheduler reserves per video by default, in MiB: one process segmenting a
110-frame shot at 650 px peaked at 880-951 MB (benchmarks/RESULTS.md, end-to-end table)."""
CRASHED = "crashed its worker process (killed by a signal or out of memory)"


@dataclass(frozen=True)
class Resources:
    """What each video's task asks for where it runs.

    Attributes
    ----------
    cpus : float or None
        CPU cores per video; a worker runs ``max(1, int(cpus))`` threads. None: the
        engine's default (local: an equal share of this machine's cores among its
        workers; Ray: 1).
    memory_mb : int or None
        Memory a scheduler reserves per video, in MiB. None: ``Limits.memory_mb`` when
        that is set, else :data:`MEMORY_MB_PER_VIDEO`. The local engine reserves nothing:
        its workers share one machine, capped by ``Limits.memory_mb``.
    gpus : float
        GPUs per video for the Ray engine, which asks its scheduler for them (0.5: two
        videos share a GPU). The local engine places GPU work itself (``workers``
        processes per visible GPU when ``config.device == "cuda"``) and refuses a
        request here.
    """

    cpus: float | None = None
    memory_mb: int | None = None
    gpus: float = 0

    def __post_init__(self) -> None:
        if self.cpus is not None and not self.cpus > 0:
            raise ValueError(f"Resources.cpus must be > 0, got {self.cpus}")
        if self.memory_mb is not None and self.memory_mb < 1:
            raise ValueError(f"Resources.memory_mb must be >= 1, got {self.memory_mb}")
        if not self.gpus >= 0:
            raise ValueError(f"Resources.gpus must be >= 0, got {self.gpus}")


ANY_RESOURCES = Resources()
"""Each engine's default request (see :class:`Resources`)."""


class Engine(Protocol):
    """The signature every engine has (see the module's documentation)."""

    def __call__(self, storage: Storage, tasks: Sequence[Task], options: BuildOptions,
                 on_video: OnVideo, *, resources: Resources = ..., limits: Limits = ...,
                 work: Work = ..., **engine_options: Any) -> None: ...


def run_local(storage: Storage, tasks: Sequence[Task], options: BuildOptions, on_video: OnVideo,
              *, resources: Resources = ANY_RESOURCES, limits: Limits = NO_LIMITS,
              work: Work = process_video, workers: int = 1) -> None:
    """The local engine: videos on a pool of ``workers`` processes on this machine.

    Worker processes are started fresh (spawn), each with ``resources.cpus`` threads (by
    default an equal share of the cores) and ``limits``. With ``config.device == "cuda"``
    the pool has ``workers`` processes per visible GPU, each pinned to its GPU through
    ``CUDA_VISIBLE_DEVICES``: while one decodes its video on the CPU, another's shot runs
    on the GPU. When a worker dies (a crash, the kernel's OOM killer), the videos it may
    have been running are retried one at a time in a fresh worker; one that kills its
    worker alone is recorded as failed and the build goes on.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if resources.gpus:
        raise ValueError("the local engine places GPUs itself (Resources.gpus must be 0)")
    gpus = visible_gpus() if options.config.device == "cuda" else []
    workers *= max(1, len(gpus))
    threads = max(1, int(resources.cpus or (os.cpu_count() or 1) // workers))
    queue = list(tasks)
    suspects: list[Task] = []
    while queue or suspects:
        if suspects:  # alone, so that a crash names its video
            task = suspects.pop(0)
            if _run_pool(storage, [task], options, 1, threads, limits, on_video, work, gpus):
                on_video(task, write_failed_part(storage, *task, CRASHED))
        else:
            unfinished = _run_pool(storage, queue, options, workers, threads, limits, on_video,
                                   work, gpus)
            # The pool hands tasks out in order, at most one beyond its workers at a time:
            # only those can have been running when a worker died.
            suspects, queue = unfinished[:workers + 1], unfinished[workers + 1:]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries (one per GPU).

    ``CUDA_VISIBLE_DEVICES``'s own entries when it is set, else ``0 .. count - 1`` of the
    GPUs Numba sees (one under Numba's CUDA simulator).
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [entry.strip() for entry in listed.split(",") if entry.strip()]
    from numba import cuda

    return [str(i) for i in range(len(cuda.gpus))]


def _run_pool(storage: Storage, tasks: list[Task], options: BuildOptions, workers: int,
              threads: int, limits: Limits, on_video: OnVideo, work: Work,
              gpus: list[str]) -> list[Task]:
    """Run ``tasks`` on one pool (its workers spread over ``gpus`` in turn when there are
    any); returns, in order, the tasks left unfinished because a worker died (none when
    all finished)."""
    finished: set[Task] = set()
    context = get_context("spawn")
    started = context.Value("i", 0)  # the workers' start order picks their GPUs
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(threads, limits.memory_mb, options.config, gpus,
                                       started)) as pool:
        pending = {pool.submit(work, storage, *task, options, limits.seconds): task
                   for task in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        return [t for t in tasks if t not in finished]
                    finished.add(task)
                    on_video(task, result)
        except BaseException:
            for future in pending:
                future.cancel()
            # Python < 3.14 has no public call that stops busy workers: without this an
            # interrupt would wait for the videos in flight.
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            raise
    return []


def _start_worker(threads: int, memory_mb: int | None, config: UNLCConfig, gpus: list[str],
                  started) -> None:
    """Worker start-up: ``threads`` threads; with ``gpus``, the next one in turn as this
    worker's only visible GPU; load the libraries a video needs (the decoders,
    ``config``'s kernels), then cap the address space at what they take plus
    ``memory_mb`` (not on a GPU worker: the CUDA driver reserves far more address space
    than it uses, so a cap would only stop it from starting)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if gpus:
        with started.get_lock():
            os.environ["CUDA_VISIBLE_DEVICES"] = gpus[started.value % len(gpus)]
            started.value += 1
    import av  # noqa: F401  (decoders, loaded before the cap)

    set_cpu_threads(threads)  # loads the compiled kernels, before the cap
    if config.device == "cpu":
        cap_memory(memory_mb)


def run_ray(storage: Storage, tasks: Sequence[Task], options: BuildOptions, on_video: OnVideo,
            *, resources: Resources = ANY_RESOURCES, limits: Limits = NO_LIMITS,
            work: Work = process_video, address: str | None = None, retries: int = 3) -> None:
    """The Ray engine: each video a Ray task, on a running cluster or a local instance.

    The dataset must be where every node can write: an object store (the workers
    write their parts straight to it, and the driver's disk is never needed) or a file
    system that all nodes mount. Each task asks the scheduler for ``resources`` (CPUs,
    memory, GPUs; see :class:`Resources` for the defaults).

    Parameters
    ----------
    address : str or None
        Cluster to join (``"auto"`` or ``"HOST:PORT"``); None starts a local instance for
        the run (or uses the one this process already started).
    retries : int
        Times Ray reruns a task whose worker died (a lost node, a crash); a video that
        still kills its worker is recorded as failed.
    """
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        cpus = resources.cpus or 1
        memory = resources.memory_mb or limits.memory_mb or MEMORY_MB_PER_VIDEO
        request: dict[str, Any] = {"num_cpus": cpus, "memory": memory * 2**20,
                                   "max_retries": retries}
        if resources.gpus:
            request["num_gpus"] = resources.gpus
        remote = ray.remote(_ray_video).options(**request)
        threads = max(1, int(cpus))
        pending = {remote.remote(work, storage, *task, options, limits, threads): task
                   for task in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OutOfMemoryError):
                    result = write_failed_part(storage, *task, CRASHED)
                on_video(task, result)
    finally:
        if started:
            ray.shutdown()


def _ray_video(work: Work, storage: Storage, index: int, video: str, options: BuildOptions,
               limits: Limits, threads: int) -> dict[str, Any]:
    """One video in a Ray worker: its share of threads and memory, then ``work``."""
    set_cpu_threads(threads)
    if options.config.device == "cpu":  # see _start_worker: no cap on a GPU worker
        cap_memory(limits.memory_mb)
    return work(storage, index, video, options, limits.seconds)


ENGINES: dict[str, Engine] = {"local": run_local, "ray": run_ray}
"""The engines :func:`fastunlc.build.build_dataset` chooses from by name."""


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``.

    Raises
    ------
    ValueError
        No engine has that name (the message lists those that have).
    """
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"engine {name!r} is not registered; the engines are "
                         f"{', '.join(map(repr, sorted(ENGINES)))}") from None
