""":func:`build_dataset`: find the inputs, resume what an earlier run left, run the videos
on an engine, cut and assemble the shards as their videos finish, and write the
statistics."""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..dataset import FORMAT
from ..errors import InputError
from ..storage import Storage, Traffic, as_storage, counting
from .engines import ANY_RESOURCES, Resources, get_engine
from .inputs import discover_inputs
from .limits import NO_LIMITS, Limits
from .options import DEFAULT_OPTIONS, BuildOptions, check_or_record_plan
from .shards import (
    ShardCutter,
    committed_prefix,
    finished_parts,
    remove_stale_temporaries,
    sweep_parts,
)
from .stats import summarise
from .worker import Task

logger = logging.getLogger(__name__)


def build_dataset(inputs: Sequence[str | os.PathLike[str]],
                  out: Storage | str | os.PathLike[str],
                  options: BuildOptions = DEFAULT_OPTIONS, *, engine: str = "local",
                  engine_options: Mapping[str, Any] | None = None,
                  resources: Resources = ANY_RESOURCES, limits: Limits = NO_LIMITS,
                  storage_options: Mapping[str, Any] | None = None,
                  on_video: Callable[[str, str], None] | None = None,
                  on_plan: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Build (or finish building) the dataset at ``out`` from ``inputs``; the Python API of
    ``fastunlc build``.

    Parameters
    ----------
    inputs : sequence of paths or URLs
        Video files, folders and list files (see :func:`discover_inputs`), local or at
        fsspec URLs (``s3://bucket/videos/``).
    out : Storage, path or URL
        Dataset folder, local or at an fsspec URL; created, or resumed when it holds an
        unfinished build of the same inputs and options: committed shards and finished
        videos are kept, the rest is done.
    options : BuildOptions
    engine : str
        Name of the engine the videos run on (:data:`fastunlc.build.engines.ENGINES`):
        ``"local"`` (a process pool on this machine) or ``"ray"``.
    engine_options : mapping, optional
        The engine's own keyword arguments: ``{"workers": 2}`` for the local engine,
        ``{"address": "auto", "retries": 3}`` for Ray.
    resources : Resources
        What each video's task asks for (CPUs, memory, GPUs).
    limits : Limits
        Per-video time and memory limits.
    storage_options : mapping, optional
        The fsspec back end's keyword arguments (credentials, endpoint) for the URLs of
        both the inputs and ``out``; by default the back end's own configuration (for S3
        the ``AWS_*`` environment variables and profiles).
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
        No input names a video, ``out`` holds a different build, or a storage cannot be
        reached (a missing bucket, wrong credentials).
    ValueError
        ``engine`` names no registered engine.
    TypeError
        ``engine_options`` holds an argument the engine does not take.
    """
    run = get_engine(engine)
    engine_options = dict(engine_options or {})
    try:  # before anything is written
        inspect.signature(run).bind(None, [], options, None, resources=resources,
                                    limits=limits, **engine_options)
    except TypeError as err:
        own = [name for name, p in inspect.signature(run).parameters.items()
               if p.kind is p.KEYWORD_ONLY and name not in ("resources", "limits", "work")]
        raise TypeError(f"engine {engine!r}: {err} (its options: {', '.join(own)})") from None
    began = time.perf_counter()
    traffic = Traffic()  # the driver's and, as they report, the workers'
    with counting() as driver:
        storage = as_storage(out, storage_options)
        found = discover_inputs(inputs, storage_options)
        if not found.videos:
            raise InputError(", ".join(map(str, inputs)), "no video found in the inputs")
        storage.check_writable()
        check_or_record_plan(storage, {"videos": found.videos, "options": options.to_dict(),
                                       "format": FORMAT})
        remove_stale_temporaries(storage)
        shards, first = committed_prefix(storage)
        finished = finished_parts(storage, first)
        tasks: list[Task] = [(i, found.videos[i]) for i in range(first, len(found.videos))
                             if i not in finished]
        if on_plan is not None:
            on_plan(len(tasks), len(found.videos) - len(tasks))
        logger.info("%d videos; %d shards committed, %d videos to do", len(found.videos),
                    shards, len(tasks))
        frames = 0

        def assembled(summary: dict[str, Any]) -> None:
            logger.info("shard %d: %d videos, %d samples, %d failed, %d bytes",
                        summary["shard"], summary["videos"], summary["samples"],
                        summary["failed"], summary["bytes"])

        cutter = ShardCutter(storage, found.videos, options.shard_bytes,
                             options.videos_per_shard, shards, first, assembled)

        def done(task: Task, result: dict[str, Any]) -> None:
            nonlocal frames
            index, video = task
            row = result["row"]
            frames += row["frames_processed"]
            traffic.add(result.get("traffic", {}))
            logger.info("%s: %s %s", video, row["status"], row["reason"])
            if on_video is not None:
                on_video(video, row["status"])
            cutter.add(index, result["record"], result)

        for index, name in sorted(finished.items()):  # finished before an interruption
            cutter.add(index, name, json.loads(storage.read_text(name)))
        if tasks:
            run(storage, tasks, options, done, resources=resources, limits=limits,
                **engine_options)
        if cutter.first == len(found.videos):  # every shard committed
            sweep_parts(storage, len(found.videos))
    traffic.add(driver)
    return summarise(storage, found.missing, time.perf_counter() - began, frames,
                     len(tasks), traffic)
