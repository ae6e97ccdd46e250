"""Dataset builder: many videos in, a sharded pseudo-ground-truth dataset out (paper, section 5).

Per video: shots, uNLC masks (:func:`fastunlc.pipeline.iter_segment`), the paper's pruning
(:func:`fastunlc.pruning.frame_verdict`), then a seeded draw of ``frames_per_shot`` of the
kept frames of each shot, written as samples (:mod:`fastunlc.dataset`).

The inputs, sorted, are cut into shards of ``videos_per_shard`` videos. A video is the
unit of work: the workers run videos in parallel, and each finished video leaves a part
(its samples in a small tar, its manifest rows in a JSON record, both published
atomically) under ``.work/``. When all videos of a shard are finished, the parts are
concatenated in input order into the shard's tar and manifest parts and deleted; a shard
counts as built once its videos part exists. Rerunning the same command after an
interruption keeps the built shards and the finished videos and does the rest, and ends
with the dataset an uninterrupted run writes, whatever the number of workers. Which
frames are drawn depends only on the seed, the video and the shot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import dataset
from .config import REFERENCE, UNLCConfig
from .errors import FastUNLCError, InputError
from .pipeline import SourcePlan, iter_segment
from .pruning import frame_verdict

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                              ".flv", ".wmv", ".3gp", ".ts", ".ogv"})
"""File endings taken as videos when a folder is searched."""
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
"""File endings of text files that list inputs, one path a line."""

WORK = ".work"
"""Folder of the dataset holding finished videos' parts until their shard is assembled."""
_META_FIELDS = ("key", "video", "shot", "frame", "height", "width", "foreground_fraction")
_VERDICT_COLUMNS = {"ok": "kept", "too little foreground": "too_little_foreground",
                    "too much foreground": "too_much_foreground",
                    "foreground on the border": "foreground_on_the_border"}


@dataclass(frozen=True)
class BuildOptions:
    """What a dataset is built with; stored in ``build.json`` so that a rerun can check it.

    Attributes
    ----------
    config : UNLCConfig
        uNLC and pruning parameters (reference defaults).
    frames_per_shot : (int, int)
        Each shot keeps a number of frames drawn uniformly from this closed range (the
        paper: 5 to 10), or all its kept frames when it has fewer.
    seed : int
        Seed of the draws.
    videos_per_shard : int
        Videos per shard.
    max_frames : int or None
        Use at most this many frames of each video.
    """

    config: UNLCConfig = REFERENCE
    frames_per_shot: tuple[int, int] = (5, 10)
    seed: int = 0
    videos_per_shard: int = 256
    max_frames: int | None = None

    def __post_init__(self) -> None:
        lo, hi = self.frames_per_shot
        if not 1 <= lo <= hi:
            raise ValueError(f"frames_per_shot must be 1 <= low <= high, got {lo}..{hi}")
        if self.videos_per_shard < 1:
            raise ValueError(f"videos_per_shard must be >= 1, got {self.videos_per_shard}")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {self.max_frames}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"] = self.config.to_dict()
        out["frames_per_shot"] = list(self.frames_per_shot)
        return out


@dataclass(frozen=True)
class Limits:
    """What one video may cost a worker (not part of the dataset's identity).

    Attributes
    ----------
    seconds : float or None
        Wall-clock seconds per video; a video that takes longer is stopped and recorded
        as failed. Checked between compiled steps, so a step that never returns to
        Python (a decoder stuck in C) is caught only by the worker's death.
    memory_mb : int or None
        Memory a video may use, in MiB: each worker's address space (``RLIMIT_AS``) is
        capped at its size after start-up plus this. A video that needs more fails
        (out of memory, or a library that cannot map what it needs) instead of taking the
        machine down.
    """

    seconds: float | None = None
    memory_mb: int | None = None


class VideoTimeout(Exception):
    """A video ran past :attr:`Limits.seconds`."""


@dataclass(frozen=True)
class Inputs:
    """The videos to build from, sorted and unique, and the inputs that are no videos."""

    videos: list[Path]
    missing: list[tuple[str, str]] = field(default_factory=list)


def discover_inputs(inputs: Sequence[str | os.PathLike[str]]) -> Inputs:
    """Video files named directly, found in folders (recursively, by :data:`VIDEO_EXTENSIONS`)
    or listed in text files (:data:`LIST_EXTENSIONS`; one path a line, relative to the list's
    folder; blank lines and lines starting with ``#`` skipped).

    Paths that do not exist are returned in ``missing`` with the reason, not raised: in a
    long list some always are.
    """
    videos: set[Path] = set()
    missing: list[tuple[str, str]] = []

    def add(path: Path, listed_in: Path | None = None) -> None:
        where = f" (listed in {listed_in})" if listed_in else ""
        if path.is_dir():
            videos.update(p.resolve() for p in path.rglob("*")
                          if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS and listed_in is None:
            for line in path.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line).expanduser()
                    add(entry if entry.is_absolute() else path.parent / entry, path)
        elif path.is_file():
            videos.add(path.resolve())
        else:
            missing.append((str(path), f"no such file or folder{where}"))

    for item in inputs:
        add(Path(item).expanduser())
    return Inputs(sorted(videos), missing)


def video_key(path: Path) -> str:
    """A dataset-wide key for a video: its sanitised name and a hash of its full path."""
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{dataset.safe_name(path.stem)}-{digest}"


def draw_frames(kept: np.ndarray, seed: int, key: str, shot: int,
                frames_per_shot: tuple[int, int]) -> np.ndarray:
    """The kept frames a shot contributes, sorted: a seeded draw that depends only on
    ``seed``, the video ``key`` and ``shot`` (not on the order videos are processed in)."""
    digest = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, digest, shot])
    count = int(rng.integers(frames_per_shot[0], frames_per_shot[1] + 1))
    if len(kept) <= count:
        return np.sort(kept)
    return np.sort(rng.choice(kept, size=count, replace=False))


def _video_row(video: Path, key: str, shard: int) -> dict[str, Any]:
    row = {name: 0 for name in dataset.VIDEO_SCHEMA.names}
    row.update(video=str(video), video_key=key, shard=shard, status="ok", reason="",
               seconds=0.0)
    return row


def _segment_and_sample(writer: dataset.ShardWriter, video: Path, shard: int,
                        options: BuildOptions, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Segment, prune and sample one video into ``writer``; returns its manifest row.
    Sample rows go to ``samples``, without byte offsets: those are the shard's, set when
    the shard is assembled."""
    key = video_key(video)
    row = _video_row(video, key, shard)
    began = time.perf_counter()
    config = options.config
    plan = SourcePlan()
    try:
        for shot in iter_segment(video, config, max_frames=options.max_frames, plan=plan,
                                 keep_frames=True):
            row["shots"] += 1
            if shot.status != "processed":
                continue
            row["shots_processed"] += 1
            row["frames_processed"] += len(shot.frame_indices)
            verdicts = [frame_verdict(mask, config) for mask in shot.masks]
            for verdict in verdicts:
                row[_VERDICT_COLUMNS[verdict.reason]] += 1
            kept = np.flatnonzero([v.keep for v in verdicts])
            for k in draw_frames(kept, options.seed, key, shot.index, options.frames_per_shot):
                frame_index = int(shot.frame_indices[k])
                mask = shot.masks[k]
                jpg, png = dataset.encode_sample(shot.frames[k], mask)
                sample = {"key": dataset.sample_key(key, shot.index, frame_index),
                          "video": str(video), "video_key": key, "shot": shot.index,
                          "frame": frame_index, "height": mask.shape[0], "width": mask.shape[1],
                          "foreground_fraction": verdicts[k].foreground_fraction,
                          "shard": f"{dataset.SHARDS}/{dataset.shard_name(shard)}.tar"}
                meta = json.dumps({k: sample[k] for k in _META_FIELDS}).encode()
                writer.add(sample["key"], {"jpg": jpg, "png": png, "json": meta})
                samples.append(sample)
                row["samples"] += 1
        if row["samples"] == 0:
            row.update(status="empty", reason="no processed frame passed the pruning")
    except FastUNLCError as err:
        row.update(status="failed", reason=err.reason if isinstance(err, InputError) else str(err))
    except VideoTimeout as err:
        _cancel_alarm()
        row.update(status="failed", reason=str(err))
    except MemoryError:
        row.update(status="failed", reason="out of memory")
    except Exception as err:  # an undecodable web video must cost one video, not the run
        logger.debug("%s: failed", video, exc_info=True)
        row.update(status="failed", reason=f"{type(err).__name__}: {err}")
    row["frames_read"] = plan.frames_read
    row["seconds"] = time.perf_counter() - began
    return row


def _part_paths(root: Path, shard: int, position: int) -> tuple[Path, Path]:
    """The finished-video part of video ``position`` of ``shard``: its samples' tar and its
    record (written last, the mark of a finished video)."""
    folder = root / WORK / dataset.shard_name(shard)
    return folder / f"{position:06d}.tar", folder / f"{position:06d}.json"


def process_video(root: str | os.PathLike[str], shard: int, position: int, video: str,
                  options: BuildOptions, seconds: float | None = None) -> dict[str, Any]:
    """Build the part of one video (the local engine's unit of work; runs in a worker).

    Writes the video's samples to a small tar and its manifest row and sample rows to a
    JSON record beside it, both atomically, the record last. Returns the manifest row.
    Raises only for errors of the output itself (a full disk, say), never for a bad video.
    ``seconds`` limits the video's wall-clock time (SIGALRM: main thread of a worker only).
    """
    tar, record = _part_paths(Path(root), shard, position)
    writer = dataset.ShardWriter(tar)
    samples: list[dict[str, Any]] = []
    try:
        with _time_limit(seconds):
            row = _segment_and_sample(writer, Path(video), shard, options, samples)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    if row["status"] == "failed":  # nothing of a failed video goes into the dataset
        samples = []
        if _MEMORY_MB and "memory limit" not in row["reason"]:
            # Libraries often report a failed allocation as something else.
            row["reason"] += f" (under the per-video memory limit of {_MEMORY_MB} MB)"
    dataset.write_text(json.dumps({"row": row, "samples": samples}), record)
    return row


def write_failed_part(root: Path, shard: int, position: int, video: str, reason: str) -> dict:
    """Record a video that killed its worker as failed; returns its manifest row."""
    row = _video_row(Path(video), video_key(Path(video)), shard)
    row.update(status="failed", reason=reason)
    tar, record = _part_paths(root, shard, position)
    writer = dataset.ShardWriter(tar)
    writer.commit()
    dataset.write_text(json.dumps({"row": row, "samples": []}), record)
    return row


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise VideoTimeout in this (main) thread once ``seconds`` have passed, and again
    every second until cancelled: an exception raised while C code called back into
    Python (a JIT compiler's callback, say) can be swallowed there."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise VideoTimeout(f"took longer than {seconds:g} s (the per-video time limit)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        _cancel_alarm()
        signal.signal(signal.SIGALRM, previous)


def _cancel_alarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


def assemble_shard(root: Path, shard: int, count: int) -> dict[str, Any]:
    """Concatenate the finished parts of the ``count`` videos of ``shard``, in input order,
    into the shard's tar and manifest parts (tar, samples part, then videos part, each
    atomically), then delete the parts. Returns ``{"shard", "videos", "samples",
    "failed", "frames"}``."""
    writer = dataset.ShardWriter(dataset.shard_path(root, shard))
    rows, samples = [], []
    try:
        for position in range(count):
            tar_path, record_path = _part_paths(root, shard, position)
            record = json.loads(record_path.read_text())
            rows.append(record["row"])
            with tarfile.open(tar_path) as part:
                for sample in record["samples"]:
                    members = {ext: part.extractfile(f"{sample['key']}.{ext}").read()
                               for ext in ("jpg", "png", "json")}
                    placed = writer.add(sample["key"], members)
                    for ext in ("jpg", "png"):
                        sample[f"{ext}_offset"], sample[f"{ext}_size"] = placed[ext]
                    samples.append(sample)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    dataset.write_table(pa.Table.from_pylist(samples, schema=dataset.SAMPLE_SCHEMA),
                        dataset.samples_part(root, shard))
    dataset.write_table(pa.Table.from_pylist(rows, schema=dataset.VIDEO_SCHEMA),
                        dataset.videos_part(root, shard))
    shutil.rmtree(root / WORK / dataset.shard_name(shard), ignore_errors=True)
    return {"shard": shard, "videos": len(rows), "samples": len(samples),
            "failed": sum(r["status"] == "failed" for r in rows),
            "frames": sum(r["frames_processed"] for r in rows)}


_MEMORY_MB: int | None = None  # this worker's per-video memory limit, set at start-up


def _start_worker(threads: int, memory_mb: int | None) -> None:
    """Worker start-up: share the machine's cores among the workers; load the libraries a
    video needs, then cap the address space at what they take plus ``memory_mb``."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import av  # noqa: F401  (decoders, loaded before the cap)
    import numba

    from . import _C  # noqa: F401  (the flow kernel)

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _cap_memory(memory_mb)


def _cap_memory(memory_mb: int | None) -> None:
    """Cap this process's address space (soft limit, so that it can be set again for the
    next video) at its present size plus ``memory_mb``."""
    global _MEMORY_MB
    _MEMORY_MB = memory_mb
    if memory_mb:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = _address_space_bytes() + memory_mb * 2**20
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space_bytes() -> int:
    """This process's virtual memory size (Linux's ``VmSize``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("VmSize not found in /proc/self/status")


def run_local(root: Path, tasks: list[tuple[int, int, str]], options: BuildOptions,
              workers: int, on_video: Callable[[tuple[int, int, str], dict[str, Any]], None],
              limits: Limits = Limits(), work: Callable[..., dict[str, Any]] = process_video
              ) -> None:
    """The local engine: videos on a pool of ``workers`` processes on this machine.

    ``tasks`` are ``(shard, position, video)``; ``on_video`` is called in this process
    with each task and its manifest row as the video finishes. Worker processes are
    started fresh (spawn), each with an equal share of the cores and ``limits``. When a
    worker dies (a crash, the kernel's OOM killer), the videos it may have been running
    are retried one at a time in a fresh worker; one that kills its worker alone is
    recorded as failed and the build goes on. ``work`` is the function a worker runs per
    video, with :func:`process_video`'s arguments (a module-level function: it is pickled).
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    queue = list(tasks)
    suspects: list[tuple[int, int, str]] = []
    while queue or suspects:
        if suspects:  # alone, so that a crash names its video
            task = suspects.pop(0)
            if _run_pool(root, [task], options, 1, threads, limits, on_video, work):
                on_video(task, write_failed_part(root, *task, CRASHED))
        else:
            unfinished = _run_pool(root, queue, options, workers, threads, limits, on_video,
                                   work)
            # The pool hands tasks out in order, at most one beyond its workers at a time:
            # only those can have been running when a worker died.
            suspects, queue = unfinished[:workers + 1], unfinished[workers + 1:]


def _run_pool(root: Path, tasks: list[tuple[int, int, str]], options: BuildOptions,
              workers: int, threads: int, limits: Limits,
              on_video: Callable[[tuple[int, int, str], dict[str, Any]], None],
              work: Callable[..., dict[str, Any]]) -> list[tuple[int, int, str]]:
    """Run ``tasks`` on one pool; returns, in order, the tasks left unfinished because a
    worker died (none when all finished)."""
    finished: set[tuple[int, int, str]] = set()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(threads, limits.memory_mb)) as pool:
        pending = {pool.submit(work, str(root), *task, options, limits.seconds): task
                   for task in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        row = future.result()
                    except BrokenProcessPool:
                        return [t for t in tasks if t not in finished]
                    finished.add(task)
                    on_video(task, row)
        except BaseException:
            for future in pending:
                future.cancel()
            # Python < 3.14 has no public call that stops busy workers: without this an
            # interrupt would wait for the videos in flight.
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            raise
    return []


MEMORY_MB_PER_VIDEO = 1024
"""Memory a Ray task asks for by default, in MiB: one process segmenting a 110-frame shot
at 650 px peaked at 880-951 MB (benchmarks/RESULTS.md, end-to-end table)."""
CRASHED = "crashed its worker process (killed by a signal or out of memory)"


def run_ray(root: Path, tasks: list[tuple[int, int, str]], options: BuildOptions,
            on_video: Callable[[tuple[int, int, str], dict[str, Any]], None],
            limits: Limits = Limits(), address: str | None = None, cpus_per_video: float = 1,
            memory_mb_per_video: int | None = MEMORY_MB_PER_VIDEO, retries: int = 3,
            work: Callable[..., dict[str, Any]] = process_video) -> None:
    """The Ray engine: each video a Ray task, on a running cluster or a local instance.

    Parameters
    ----------
    root, tasks, options, on_video, limits, work
        As for :func:`run_local`. ``root`` must be on storage every node sees.
    address : str or None
        Cluster to join (``"auto"`` or ``"HOST:PORT"``); None starts a local instance for
        the run (or uses the one this process already started).
    cpus_per_video, memory_mb_per_video : float, int or None
        What each task asks the scheduler for: its CPU share and its memory
        (:data:`MEMORY_MB_PER_VIDEO` by default; ``limits.memory_mb`` when that is set).
        A GPU backend would ask for GPUs the same way.
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
        memory = limits.memory_mb or memory_mb_per_video
        resources: dict[str, Any] = {"num_cpus": cpus_per_video, "max_retries": retries}
        if memory:
            resources["memory"] = memory * 2**20
        remote = ray.remote(_ray_video).options(**resources)
        threads = max(1, int(cpus_per_video))
        pending = {remote.remote(work, str(root), *task, options, limits, threads): task
                   for task in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OutOfMemoryError):
                    row = write_failed_part(root, *task, CRASHED)
                on_video(task, row)
    finally:
        if started:
            ray.shutdown()


def _ray_video(work: Callable[..., dict[str, Any]], root: str, shard: int, position: int,
               video: str, options: BuildOptions, limits: Limits, threads: int
               ) -> dict[str, Any]:
    """One video in a Ray worker: its share of threads and memory, then ``work``."""
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _cap_memory(limits.memory_mb)
    return work(root, shard, position, video, options, limits.seconds)


def plan_shards(videos: Sequence[Path], videos_per_shard: int) -> list[list[str]]:
    """The inputs cut into shards, in order."""
    names = [str(v) for v in videos]
    return [names[i:i + videos_per_shard] for i in range(0, len(names), videos_per_shard)]


def finished_shards(root: Path, count: int) -> set[int]:
    """Shards of ``root`` whose tar and both manifest parts are published."""
    return {i for i in range(count)
            if dataset.videos_part(root, i).is_file() and dataset.samples_part(root, i).is_file()
            and dataset.shard_path(root, i).is_file()}


def remove_stale_temporaries(root: Path) -> None:
    """Delete hidden temporary files that an interrupted run left behind."""
    work = root / WORK
    folders = [root / dataset.SHARDS, root / dataset.MANIFEST, root]
    folders += [f for f in work.iterdir() if f.is_dir()] if work.is_dir() else []
    for folder in folders:
        if folder.is_dir():
            for path in folder.glob(".*.tmp*"):
                path.unlink(missing_ok=True)


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the entries in which two JSON-like values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [name for key in sorted(old.keys() | new.keys())
                for name in _differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [prefix.rstrip(".") or "value"] if old != new else []


def check_or_record_plan(root: Path, plan: dict[str, Any]) -> None:
    """Store ``build.json``, or check that an existing one describes the same build.

    Raises
    ------
    InputError
        ``root`` holds a dataset built from other inputs or options.
    """
    record = root / "build.json"
    if record.is_file():
        previous = json.loads(record.read_text())
        if previous != plan:
            changed = _differences(previous, plan)
            raise InputError(root, "holds a dataset built from other inputs or options ("
                                   f"{', '.join(changed)} differ); use a new --out folder")
        return
    dataset.write_text(json.dumps(plan, indent=1) + "\n", record)


def summarise(root: Path, missing: list[tuple[str, str]], run_seconds: float,
              run_frames: int, run_videos: int) -> dict[str, Any]:
    """Write ``failures.jsonl`` and ``stats.json`` from the whole manifest; return the stats."""
    videos = dataset.read_manifest(root, "videos").to_pylist()
    failures = [{"video": v["video"], "reason": v["reason"]} for v in videos
                if v["status"] == "failed"]
    failures += [{"video": path, "reason": reason} for path, reason in missing]
    dataset.write_text("".join(json.dumps(f) + "\n" for f in failures), root / "failures.jsonl")
    outcomes = {status: sum(v["status"] == status for v in videos)
                for status in ("ok", "empty", "failed")}
    outcomes["missing"] = len(missing)
    stats = {
        "videos": len(videos) + len(missing),
        "outcomes": outcomes,
        "samples": sum(v["samples"] for v in videos),
        "frames_processed": sum(v["frames_processed"] for v in videos),
        "pruning": {column: sum(v[column] for v in videos)
                    for column in _VERDICT_COLUMNS.values()},
        "this_run": {
            "videos": run_videos, "frames_processed": run_frames,
            "seconds": round(run_seconds, 3),
            "frames_per_second": round(run_frames / run_seconds, 3) if run_seconds else 0.0,
            "videos_per_hour": round(run_videos * 3600 / run_seconds, 1) if run_seconds else 0.0,
        },
    }
    dataset.write_text(json.dumps(stats, indent=1) + "\n", root / "stats.json")
    return stats


def build_dataset(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                  options: BuildOptions = BuildOptions(), *, workers: int = 1,
                  limits: Limits = Limits(), engine: str = "local",
                  ray_options: dict[str, Any] | None = None,
                  on_video: Callable[[str, str], None] | None = None,
                  on_plan: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Build (or finish building) the dataset at ``out`` from ``inputs``; the Python API of
    ``fastunlc build``.

    Parameters
    ----------
    inputs : sequence of paths
        Video files, folders and list files (see :func:`discover_inputs`).
    out : path
        Dataset folder; created, or resumed when it holds an unfinished build of the same
        inputs and options: built shards and finished videos are kept, the rest is done.
    options : BuildOptions
    workers : int
        Worker processes of the local engine (videos run in parallel).
    limits : Limits
        Per-video time and memory limits.
    engine : {"local", "ray"}
        Where videos run: :func:`run_local` (``workers`` processes) or :func:`run_ray`.
    ray_options : dict, optional
        Keyword arguments of :func:`run_ray` (``address``, ``cpus_per_video``, ...).
    on_video : callable, optional
        Called with ``(video, status)`` as each video finishes.
    on_plan : callable, optional
        Called once with ``(videos to process, videos already done)`` before work starts.

    Returns
    -------
    dict
        The statistics written to ``stats.json``.

    Raises
    ------
    InputError
        No input names a video, or ``out`` holds a different build.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    root = Path(out)
    found = discover_inputs(inputs)
    if not found.videos:
        raise InputError(", ".join(map(str, inputs)), "no video found in the inputs")
    shards = plan_shards(found.videos, options.videos_per_shard)
    root.mkdir(parents=True, exist_ok=True)
    check_or_record_plan(root, {"videos": [str(v) for v in found.videos],
                                "options": options.to_dict(), "format": 1})
    remove_stale_temporaries(root)
    built = finished_shards(root, len(shards))
    remaining = {i: {p for p in range(len(videos)) if not _part_paths(root, i, p)[1].is_file()}
                 for i, videos in enumerate(shards) if i not in built}
    tasks = [(i, p, shards[i][p]) for i, left in remaining.items() for p in sorted(left)]
    if on_plan is not None:
        on_plan(len(tasks), len(found.videos) - len(tasks))
    logger.info("%d videos in %d shards; %d shards built, %d videos to do", len(found.videos),
                len(shards), len(built), len(tasks))
    began = time.perf_counter()
    frames = 0

    def assemble(shard: int) -> None:
        summary = assemble_shard(root, shard, len(shards[shard]))
        logger.info("shard %d: %d videos, %d samples, %d failed", summary["shard"],
                    summary["videos"], summary["samples"], summary["failed"])

    def finished(task: tuple[int, int, str], row: dict[str, Any]) -> None:
        nonlocal frames
        shard, position, video = task
        frames += row["frames_processed"]
        logger.info("%s: %s %s", video, row["status"], row["reason"])
        if on_video is not None:
            on_video(video, row["status"])
        remaining[shard].discard(position)
        if not remaining[shard]:
            assemble(shard)

    for shard in [i for i, left in remaining.items() if not left]:
        assemble(shard)  # every video finished before an interruption
    if tasks:
        if engine == "ray":
            run_ray(root.resolve(), tasks, options, finished, limits, **(ray_options or {}))
        else:
            run_local(root, tasks, options, workers, finished, limits)
    return summarise(root, found.missing, time.perf_counter() - began, frames, len(tasks))
