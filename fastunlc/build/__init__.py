"""Dataset builder: many videos in, a sharded pseudo-ground-truth dataset out (paper, section 5).

Per video: shots, uNLC masks (:func:`fastunlc.pipeline.iter_segment`), the paper's pruning
(:func:`fastunlc.pruning.frame_verdict`), then a seeded draw of ``frames_per_shot`` of the
kept frames of each shot, written as samples (:mod:`fastunlc.dataset`).

Inputs and the dataset are local or at fsspec URLs (:mod:`fastunlc.storage`). A video is
the unit of work: the workers run videos in parallel, and each finished video leaves a
part (its samples in a small tar, then a JSON record of its manifest rows, each under a
name of its own and published whole) under ``.work/``. The sorted inputs are cut into
shards in order, each closed once its samples reach ``shard_bytes`` (or it holds
``videos_per_shard`` videos); as soon as a shard's videos are finished their parts are
concatenated into the shard's tar and manifest parts and deleted, and the videos part,
written last, commits the shard (:mod:`.shards`). Rerunning the same command after an
interruption keeps the committed shards and the finished videos and does the rest, and
ends with the dataset an uninterrupted run writes, whatever the number of workers. Which
frames are drawn depends only on the seed, the video and the shot.

Modules: :mod:`.inputs` (what is read, video keys), :mod:`.options` (what a dataset is
built with, ``build.json``), :mod:`.sampling` (the seeded frame draw), :mod:`.worker`
(one video's work), :mod:`.limits` (per-video time and memory), :mod:`.shards` (parts,
the shards' cuts, their assembly and commit), :mod:`.engines` (where videos run, chosen
by name), :mod:`.stats` (``failures.jsonl``, ``stats.json``), :mod:`.run`
(:func:`build_dataset`) and :mod:`.upgrade` (older dataset formats brought up to date,
:func:`upgrade_dataset`).
"""

from __future__ import annotations

from .engines import (
    ANY_RESOURCES,
    CRASHED,
    ENGINES,
    MEMORY_MB_PER_VIDEO,
    Engine,
    Resources,
    get_engine,
    run_local,
    run_ray,
)
from .inputs import LIST_EXTENSIONS, VIDEO_EXTENSIONS, Inputs, discover_inputs, video_key
from .limits import NO_LIMITS, Limits, VideoTimeout
from .options import BuildOptions
from .run import build_dataset
from .sampling import draw_frames
from .shards import WORK, ShardCutter, assemble_shard, part_names
from .upgrade import upgrade_dataset
from .worker import Task, process_video, write_failed_part

__all__ = [
    "ANY_RESOURCES",
    "CRASHED",
    "ENGINES",
    "LIST_EXTENSIONS",
    "MEMORY_MB_PER_VIDEO",
    "NO_LIMITS",
    "VIDEO_EXTENSIONS",
    "WORK",
    "BuildOptions",
    "Engine",
    "Inputs",
    "Limits",
    "Resources",
    "ShardCutter",
    "Task",
    "VideoTimeout",
    "assemble_shard",
    "build_dataset",
    "discover_inputs",
    "draw_frames",
    "get_engine",
    "part_names",
    "process_video",
    "run_local",
    "run_ray",
    "upgrade_dataset",
    "video_key",
    "write_failed_part",
]
