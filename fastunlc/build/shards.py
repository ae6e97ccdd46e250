"""The build's commit protocol: finished videos' parts under ``.work/``, shards cut from
them in input order by size, and each shard's assembly and commit.

Parts. A worker writes one video's samples to ``.work/<index>.<token>.tar``, then its
record (manifest row, sample rows, the tar's name and size) to ``.work/<index>.<token>.json``;
``index`` is the video's position in the sorted inputs and ``token`` is drawn afresh by
every attempt. The record, published last, marks the video finished. Two attempts at one
video (a retried Ray task whose first try is still running, two runs at once) write
different names and cannot spoil each other's part; the first record by name is the one
used, and the others are deleted with it.

Shards. A shard takes consecutive videos in input order and is closed as soon as its
videos' samples reach ``shard_bytes`` or it holds ``videos_per_shard`` videos; the last
shard takes the rest. Where the cuts fall depends only on the parts, so the same inputs
and options give the same shards whatever the order videos finish in, the number of
workers or the interruptions. A shard is assembled as soon as its videos are finished:
its tar, then its samples part, then its videos part (the record that commits it), then
its parts are deleted. Each is published whole (:mod:`fastunlc.storage`), so nothing
needs a rename: a reader sees committed shards only (:func:`fastunlc.dataset.read_manifest`).
A rerun finds the committed shards (always the first ones), keeps the finished parts and
does the rest.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import dataset
from ..storage import Storage

WORK = ".work"
"""Folder of the dataset holding finished videos' parts until their shard is assembled."""

Record = dict[str, Any]
"""A finished video's record: ``{"row", "samples", "tar", "bytes"}`` (its manifest row, its
sample rows without shard and byte spans, its part's tar name or None, and the bytes its
samples take in a tar)."""


def part_names(index: int, token: str) -> tuple[str, str]:
    """The part of video ``index`` written by the attempt ``token``: its samples' tar and
    its record (written last, the mark of a finished video)."""
    stem = f"{WORK}/{index:08d}.{token}"
    return f"{stem}.tar", f"{stem}.json"


def _index_of(name: str) -> int:
    return int(name[len(WORK) + 1:].split(".", 1)[0])


def finished_parts(storage: Storage, first: int) -> dict[int, str]:
    """Video index -> record name of the finished videos from ``first`` on (the first
    record by name where attempts left several)."""
    found: dict[int, str] = {}
    for name in storage.list(WORK, ".json"):
        index = _index_of(name)
        if index >= first and (index not in found or name < found[index]):
            found[index] = name
    return found


def committed_prefix(storage: Storage) -> tuple[int, int]:
    """``(shards, videos)``: how many shards are committed (the first ones: a shard is
    assembled only after the one before it) and how many videos they hold."""
    committed = dataset.committed_shards(storage)
    count = next((k for k, shard in enumerate(committed) if k != shard), len(committed))
    videos = sum(pq.read_metadata(pa.BufferReader(storage.read(dataset.videos_file(k)))).num_rows
                 for k in range(count))
    return count, videos


def remove_stale_temporaries(storage: Storage) -> None:
    """Delete the hidden temporary files that an interrupted run left on a local disk (an
    object store has none: an interrupted upload never becomes an object)."""
    if storage.local:
        for folder in ("", dataset.SHARDS, dataset.MANIFEST, WORK):
            for path in Path(storage.path(folder)).glob(".*.tmp*"):
                path.unlink(missing_ok=True)


def sweep_parts(storage: Storage, below: int) -> None:
    """Delete what is left in ``.work/`` of the videos before ``below`` (all in committed
    shards): the parts of second attempts, and tars whose record never came."""
    for name in storage.list(WORK):
        if _index_of(name) < below:
            storage.remove(name)


class ShardCutter:
    """Cuts the shards from finished parts in input order and assembles each as its last
    video finishes (see the module).

    Parameters
    ----------
    storage : Storage
        The dataset.
    videos : sequence of str
        All the build's videos, in input order.
    shard_bytes, videos_per_shard : int or None
        When a shard is closed.
    shard, video : int
        The first shard still to assemble and its first video (the committed prefix).
    on_shard : callable
        Called with each assembled shard's summary (:func:`assemble_shard`).
    """

    def __init__(self, storage: Storage, videos: Sequence[str], shard_bytes: int | None,
                 videos_per_shard: int | None, shard: int, video: int,
                 on_shard: Callable[[dict[str, Any]], None]) -> None:
        self.storage, self.videos = storage, videos
        self.shard_bytes, self.videos_per_shard = shard_bytes, videos_per_shard
        self.shard, self.first = shard, video
        self.on_shard = on_shard
        self.records: dict[int, tuple[str, Record]] = {}

    def add(self, index: int, record_name: str, record: Record) -> None:
        """A finished video: keep its record and assemble the shards it completes."""
        self.records.setdefault(index, (record_name, record))
        self._cut()

    def _full(self, size: int, count: int) -> bool:
        return ((self.shard_bytes is not None and size >= self.shard_bytes)
                or (self.videos_per_shard is not None and count >= self.videos_per_shard))

    def _cut(self) -> None:
        while self.first < len(self.videos):
            end, size = self.first, 0
            while (end < len(self.videos) and end in self.records
                   and not self._full(size, end - self.first)):
                size += self.records[end][1]["bytes"]
                end += 1
            if not (end == len(self.videos) or self._full(size, end - self.first)):
                return  # waiting for video `end`
            chosen = [self.records.pop(i) for i in range(self.first, end)]
            summary = assemble_shard(self.storage, self.shard, [r for _, r in chosen])
            for name, record in chosen:
                self.storage.remove(name, *([record["tar"]] if record["tar"] else []))
            self.on_shard(summary)
            self.shard, self.first = self.shard + 1, end


def _write_table(storage: Storage, name: str, table: pa.Table) -> None:
    with storage.writing(name) as tmp:
        pq.write_table(table, tmp)


def assemble_shard(storage: Storage, shard: int, records: Sequence[Record]) -> dict[str, Any]:
    """Write shard ``shard`` from its videos' records, in input order: the tar (each
    sample's members from its video's part, and its ``KEY.json``), the samples part, then
    the videos part that commits it. Returns ``{"shard", "videos", "samples", "failed",
    "frames", "bytes"}``."""
    tar_name = dataset.shard_file(shard)
    rows, samples = [], []
    with storage.writing(tar_name) as tmp:
        writer = dataset.ShardWriter(tmp)
        try:
            for record in records:
                rows.append({**record["row"], "shard": shard})
                if not record["samples"]:
                    continue
                part = tarfile.open(fileobj=io.BytesIO(storage.read(record["tar"])))
                for sample in record["samples"]:
                    sample = {**sample, "shard": tar_name}
                    members = {ext: part.extractfile(f"{sample['key']}.{ext}").read()
                               for ext in dataset.MEMBERS}
                    meta = {name: sample[name] for name in dataset.SAMPLE_META_FIELDS}
                    members["json"] = json.dumps(meta).encode()
                    placed = writer.add(sample["key"], members)
                    for member in dataset.MEMBERS:
                        offset, size = dataset.span_columns(member)
                        sample[offset], sample[size] = placed[member]
                    samples.append(sample)
        finally:
            writer.close()
        size = tmp.stat().st_size
    _write_table(storage, dataset.samples_file(shard),
                 pa.Table.from_pylist(samples, schema=dataset.SAMPLE_SCHEMA))
    _write_table(storage, dataset.videos_file(shard),
                 pa.Table.from_pylist(rows, schema=dataset.VIDEO_SCHEMA))
    return {"shard": shard, "videos": len(rows), "samples": len(samples),
            "failed": sum(r["status"] == "failed" for r in rows),
            "frames": sum(r["frames_processed"] for r in rows), "bytes": size}
