"""Shards: which videos each holds, the finished videos' parts under ``.work/``, and the
assembly of a shard from its parts once all are there."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import dataset
from ..files import atomic_path

WORK = ".work"
"""Folder of the dataset holding finished videos' parts until their shard is assembled."""


def plan_shards(videos: Sequence[Path], videos_per_shard: int) -> list[list[str]]:
    """The inputs cut into shards of ``videos_per_shard`` videos, in order."""
    names = [str(v) for v in videos]
    return [names[i:i + videos_per_shard] for i in range(0, len(names), videos_per_shard)]


def part_paths(root: Path, shard: int, position: int) -> tuple[Path, Path]:
    """The finished-video part of video ``position`` of ``shard``: its samples' tar and its
    record (written last, the mark of a finished video)."""
    folder = root / WORK / dataset.shard_name(shard)
    return folder / f"{position:06d}.tar", folder / f"{position:06d}.json"


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


def _write_table(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def assemble_shard(root: Path, shard: int, count: int) -> dict[str, Any]:
    """Concatenate the finished parts of the ``count`` videos of ``shard``, in input order,
    into the shard's tar and manifest parts (tar, samples part, then videos part, each
    atomically), then delete the parts. Returns ``{"shard", "videos", "samples",
    "failed", "frames"}``."""
    writer = dataset.ShardWriter(dataset.shard_path(root, shard))
    rows, samples = [], []
    try:
        for position in range(count):
            tar_path, record_path = part_paths(root, shard, position)
            record = json.loads(record_path.read_text())
            rows.append(record["row"])
            with tarfile.open(tar_path) as part:
                for sample in record["samples"]:
                    members = {ext: part.extractfile(f"{sample['key']}.{ext}").read()
                               for ext in (*dataset.MEMBERS, "json")}
                    placed = writer.add(sample["key"], members)
                    for member in dataset.MEMBERS:
                        offset, size = dataset.span_columns(member)
                        sample[offset], sample[size] = placed[member]
                    samples.append(sample)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    _write_table(pa.Table.from_pylist(samples, schema=dataset.SAMPLE_SCHEMA),
                 dataset.samples_part(root, shard))
    _write_table(pa.Table.from_pylist(rows, schema=dataset.VIDEO_SCHEMA),
                 dataset.videos_part(root, shard))
    shutil.rmtree(root / WORK / dataset.shard_name(shard), ignore_errors=True)
    return {"shard": shard, "videos": len(rows), "samples": len(samples),
            "failed": sum(r["status"] == "failed" for r in rows),
            "frames": sum(r["frames_processed"] for r in rows)}
