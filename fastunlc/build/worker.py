"""One video's work: segment, prune, draw, encode, and leave a finished part under ``.work/``.

:func:`process_video` is what an engine runs per video, in a worker process. It returns
the video's manifest row and raises only for errors of the output itself (a full disk,
say): a bad video, one past its time or memory limit, is recorded as failed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import dataset
from ..errors import FastUNLCError, InputError
from ..files import atomic_write
from ..pipeline import SourcePlan, iter_segment
from ..pruning import frame_verdict
from .inputs import video_key
from .limits import VideoTimeout, cancel_alarm, memory_limit_mb, time_limit
from .options import BuildOptions
from .sampling import draw_frames
from .shards import part_paths
from .stats import VERDICT_COLUMNS

logger = logging.getLogger(__name__)

Task = tuple[int, int, str]
"""A video to process: ``(shard, position in the shard, video path)``."""
Work = Callable[..., dict[str, Any]]
"""A function with :func:`process_video`'s arguments and result (module-level, so that
engines can pickle it)."""


def video_row(video: Path, shard: int, status: str = "ok", reason: str = "") -> dict[str, Any]:
    """A video's manifest row (:data:`fastunlc.dataset.VIDEO_SCHEMA`), counts at 0."""
    row = {name: 0 for name in dataset.VIDEO_SCHEMA.names}
    row.update(video=str(video), video_key=video_key(video), shard=shard, status=status,
               reason=reason, seconds=0.0)
    return row


def segment_and_sample(writer: dataset.ShardWriter, video: Path, shard: int,
                       options: BuildOptions, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Segment, prune and sample one video into ``writer``; returns its manifest row.
    Sample rows go to ``samples``, without byte offsets: those are the shard's, set when
    the shard is assembled."""
    row = video_row(video, shard)
    key = row["video_key"]
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
                row[VERDICT_COLUMNS[verdict.reason]] += 1
            kept = np.flatnonzero([v.keep for v in verdicts])
            for k in draw_frames(kept, options.seed, key, shot.index, options.frames_per_shot):
                frame_index = int(shot.frame_indices[k])
                mask = shot.masks[k]
                jpg, png = dataset.encode_sample(shot.frames[k], mask)
                mask_jpg, boxes = dataset.training_fields(mask, config.foreground_threshold)
                # float32, as the manifest stores it: KEY.json and the manifest row agree.
                fraction = float(np.float32(verdicts[k].foreground_fraction))
                sample = {"key": dataset.sample_key(key, shot.index, frame_index),
                          "video": str(video), "video_key": key, "shot": shot.index,
                          "frame": frame_index, "height": mask.shape[0], "width": mask.shape[1],
                          "foreground_fraction": fraction, **boxes,
                          "shard": f"{dataset.SHARDS}/{dataset.shard_name(shard)}.tar"}
                meta = json.dumps({name: sample[name] for name in dataset.SAMPLE_META_FIELDS})
                writer.add(sample["key"], {"jpg": jpg, "png": png, "mask.jpg": mask_jpg,
                                           "json": meta.encode()})
                samples.append(sample)
                row["samples"] += 1
        if row["samples"] == 0:
            row.update(status="empty", reason="no processed frame passed the pruning")
    except FastUNLCError as err:
        row.update(status="failed", reason=err.reason if isinstance(err, InputError) else str(err))
    except VideoTimeout as err:
        cancel_alarm()
        row.update(status="failed", reason=str(err))
    except MemoryError:
        row.update(status="failed", reason="out of memory")
    except Exception as err:  # an undecodable web video must cost one video, not the run
        timeout = timeout_behind(err)
        if timeout is not None:
            cancel_alarm()
            row.update(status="failed", reason=str(timeout))
        else:
            logger.debug("%s: failed", video, exc_info=True)
            row.update(status="failed", reason=f"{type(err).__name__}: {err}")
    row["frames_read"] = plan.frames_read
    row["seconds"] = time.perf_counter() - began
    return row


def timeout_behind(err: BaseException) -> VideoTimeout | None:
    """The VideoTimeout that ``err`` wraps, if any: an alarm that arrives while compiled
    code's dispatcher is in C comes back as a SystemError whose cause is the timeout."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, VideoTimeout):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def process_video(root: str | os.PathLike[str], shard: int, position: int, video: str,
                  options: BuildOptions, seconds: float | None = None) -> dict[str, Any]:
    """Build the part of one video (an engine's unit of work; runs in a worker).

    Writes the video's samples to a small tar and its manifest row and sample rows to a
    JSON record beside it, both atomically, the record last. Returns the manifest row.
    Raises only for errors of the output itself (a full disk, say), never for a bad video.
    ``seconds`` limits the video's wall-clock time (SIGALRM: main thread of a worker only).
    """
    tar, record = part_paths(Path(root), shard, position)
    writer = dataset.ShardWriter(tar)
    samples: list[dict[str, Any]] = []
    began = time.perf_counter()
    try:
        try:
            with time_limit(seconds):
                row = segment_and_sample(writer, Path(video), shard, options, samples)
        except VideoTimeout as err:
            # The alarm came after segment_and_sample's own handler (between its try and
            # the end of the limit): still this video's failure, not the build's.
            row = video_row(Path(video), shard, "failed", str(err))
            row["seconds"] = time.perf_counter() - began
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    if row["status"] == "failed":  # nothing of a failed video goes into the dataset
        samples = []
        memory_mb = memory_limit_mb()
        if memory_mb and "memory limit" not in row["reason"]:
            # Libraries often report a failed allocation as something else.
            row["reason"] += f" (under the per-video memory limit of {memory_mb} MB)"
    atomic_write(record, json.dumps({"row": row, "samples": samples}))
    return row


def write_failed_part(root: Path, shard: int, position: int, video: str, reason: str
                      ) -> dict[str, Any]:
    """Record a video that killed its worker as failed; returns its manifest row."""
    row = video_row(Path(video), shard, "failed", reason)
    tar, record = part_paths(root, shard, position)
    dataset.ShardWriter(tar).commit()
    atomic_write(record, json.dumps({"row": row, "samples": []}))
    return row
