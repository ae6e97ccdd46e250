""":func:`build_dataset`: plan the shards, resume what an earlier run left, run the videos
on an engine, assemble each shard as its last video finishes, and write the statistics."""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..dataset import FORMAT
from ..errors import InputError
from .engines import ANY_RESOURCES, Resources, get_engine
from .inputs import discover_inputs
from .limits import NO_LIMITS, Limits
from .options import DEFAULT_OPTIONS, BuildOptions, check_or_record_plan
from .shards import (
    assemble_shard,
    finished_shards,
    part_paths,
    plan_shards,
    remove_stale_temporaries,
)
from .stats import summarise
from .worker import Task

logger = logging.getLogger(__name__)


def build_dataset(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                  options: BuildOptions = DEFAULT_OPTIONS, *, engine: str = "local",
                  engine_options: Mapping[str, Any] | None = None,
                  resources: Resources = ANY_RESOURCES, limits: Limits = NO_LIMITS,
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
    ValueError
        ``engine`` names no registered engine.
    TypeError
        ``engine_options`` holds an argument the engine does not take.
    """
    run = get_engine(engine)
    engine_options = dict(engine_options or {})
    root = Path(out)
    try:  # before anything is written
        inspect.signature(run).bind(root, [], options, None, resources=resources,
                                    limits=limits, **engine_options)
    except TypeError as err:
        own = [name for name, p in inspect.signature(run).parameters.items()
               if p.kind is p.KEYWORD_ONLY and name not in ("resources", "limits", "work")]
        raise TypeError(f"engine {engine!r}: {err} (its options: {', '.join(own)})") from None
    found = discover_inputs(inputs)
    if not found.videos:
        raise InputError(", ".join(map(str, inputs)), "no video found in the inputs")
    shards = plan_shards(found.videos, options.videos_per_shard)
    root.mkdir(parents=True, exist_ok=True)
    check_or_record_plan(root, {"videos": [str(v) for v in found.videos],
                                "options": options.to_dict(), "format": FORMAT})
    remove_stale_temporaries(root)
    built = finished_shards(root, len(shards))
    remaining = {i: {p for p in range(len(videos)) if not part_paths(root, i, p)[1].is_file()}
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

    def finished(task: Task, row: dict[str, Any]) -> None:
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
        # Absolute: a remote worker's current folder is not ours.
        run(root.resolve(), tasks, options, finished, resources=resources, limits=limits,
            **engine_options)
    return summarise(root, found.missing, time.perf_counter() - began, frames, len(tasks))
