"""One video's work: segment, prune, draw, encode, and leave a finished part under ``.work/``.

:func:`process_video` is what an engine runs per video, in a worker process. It returns
the video's record (:data:`fastunlc.build.shards.Record`, with the record's name and the
storage traffic the video cost) and raises only for errors of the output itself (a full
disk, a lost bucket): a bad video, one past its time or memory limit, is recorded as
failed. A video at a URL is copied to a temporary local file first (one video per worker
at a time, deleted after), so that nothing but the worker touches it.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .. import dataset
from ..errors import FastUNLCError, InputError
from ..pipeline import SourcePlan, iter_segment
from ..pruning import frame_verdict
from ..storage import Storage, counting, is_url
from .inputs import video_key
from .limits import VideoTimeout, cancel_alarm, memory_limit_mb, time_limit
from .options import BuildOptions
from .sampling import draw_frames
from .shards import part_names
from .stats import VERDICT_COLUMNS

logger = logging.getLogger(__name__)

Task = tuple[int, str]
"""A video to process: ``(index in the sorted inputs, video path or URL)``."""
Work = Callable[..., dict[str, Any]]
"""A function with :func:`process_video`'s arguments and result (module-level, so that
engines can pickle it)."""


def video_row(video: str, status: str = "ok", reason: str = "") -> dict[str, Any]:
    """A video's manifest row (:data:`fastunlc.dataset.VIDEO_SCHEMA`), counts at 0 (its
    shard is set when the shard is assembled)."""
    row = {name: 0 for name in dataset.VIDEO_SCHEMA.names}
    row.update(video=video, video_key=video_key(video), status=status, reason=reason,
               seconds=0.0)
    return row


def segment_and_sample(writer: dataset.ShardWriter, source: Path, video: str,
                       options: BuildOptions, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Segment, prune and sample one video (read from the local file ``source``, named
    ``video`` in the dataset) into ``writer``; returns its manifest row. Sample rows go
    to ``samples``, without their shard and byte spans: those are set when the shard is
    assembled."""
    row = video_row(video)
    key = row["video_key"]
    began = time.perf_counter()
    config = options.config
    plan = SourcePlan()
    try:
        for shot in iter_segment(source, config, max_frames=options.max_frames, plan=plan,
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
                          "video": video, "video_key": key, "shot": shot.index,
                          "frame": frame_index, "height": mask.shape[0], "width": mask.shape[1],
                          "foreground_fraction": fraction, **boxes}
                writer.add(sample["key"], {"jpg": jpg, "png": png, "mask.jpg": mask_jpg})
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


def process_video(storage: Storage, index: int, video: str, options: BuildOptions,
                  seconds: float | None = None) -> dict[str, Any]:
    """Build the part of one video (an engine's unit of work; runs in a worker).

    Writes the video's samples to a small tar and then its record beside it
    (:func:`fastunlc.build.shards.part_names`, under a name of its own), each published
    whole. Returns the record with ``"record"`` (its name) and ``"traffic"`` (the storage
    traffic of this video, :class:`fastunlc.storage.Traffic` as a dict). Raises only for
    errors of the output itself (a full disk, a lost bucket), never for a bad video.
    ``seconds`` limits the video's wall-clock time, its download included (SIGALRM: main
    thread of a worker only).
    """
    tar_name, record_name = part_names(index, uuid.uuid4().hex[:12])
    samples: list[dict[str, Any]] = []
    began = time.perf_counter()
    with counting() as traffic:
        with storage.writing(tar_name) as tmp:
            writer = dataset.ShardWriter(tmp)
            try:
                with time_limit(seconds), local_copy(video, storage.options) as source:
                    row = segment_and_sample(writer, source, video, options, samples)
            except VideoTimeout as err:
                # The alarm came after segment_and_sample's own handler (between its try
                # and the end of the limit): still this video's failure, not the build's.
                row = video_row(video, "failed", str(err))
                row["seconds"] = time.perf_counter() - began
            finally:
                size = writer.size
                writer.close()
            if row["status"] == "failed":  # nothing of a failed video goes into the dataset
                samples = []
                memory_mb = memory_limit_mb()
                if memory_mb and "memory limit" not in row["reason"]:
                    # Libraries often report a failed allocation as something else.
                    row["reason"] += f" (under the per-video memory limit of {memory_mb} MB)"
            if not samples:
                tmp.unlink()  # no part tar to publish
        record = {"row": row, "samples": samples, "tar": tar_name if samples else None,
                  "bytes": size if samples else 0}
        storage.write(record_name, json.dumps(record))
    return {**record, "record": record_name, "traffic": traffic.to_dict()}


@contextmanager
def local_copy(video: str, storage_options: dict[str, Any]) -> Iterator[Path]:
    """A local file holding ``video``: itself when it is local, else a temporary copy
    (deleted when the block ends), fetched with ``storage_options`` (the build's: they
    apply to inputs and output alike)."""
    if not is_url(video):
        yield Path(video)
        return
    folder, name = video.rsplit("/", 1)
    handle, tmp = tempfile.mkstemp(prefix="fastunlc-video-", suffix=posixpath.splitext(name)[1])
    os.close(handle)
    try:
        Storage(folder, storage_options).download(name, tmp)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def write_failed_part(storage: Storage, index: int, video: str, reason: str) -> dict[str, Any]:
    """Record a video that killed its worker as failed; returns its record (as
    :func:`process_video` does)."""
    _, record_name = part_names(index, uuid.uuid4().hex[:12])
    record = {"row": video_row(video, "failed", reason), "samples": [], "tar": None,
              "bytes": 0}
    with counting() as traffic:
        storage.write(record_name, json.dumps(record))
    return {**record, "record": record_name, "traffic": traffic.to_dict()}
