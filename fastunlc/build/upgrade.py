"""``fastunlc upgrade``: bring a dataset of an older format to :data:`fastunlc.dataset.FORMAT`.

Format 3 added what training reads before and while it decodes: each sample's object
boxes in the manifest and ``KEY.json``, and ``KEY.mask.jpg``. Both are computed from the
stored PNG mask exactly as a build computes them from the float mask (the PNG holds
``round(255 p)``, which is what the build encodes), so an upgraded dataset holds the
same bytes as one built afresh with the same options.

Shard by shard, and resumable: the new tar is written as ``NNNNNN.tar.upgrade``, then the
shard's samples part is replaced (the mark that the shard is done), then the new tar
replaces the old one. An interruption before the part is replaced leaves the old tar and
part intact; one after it leaves a ``.upgrade`` tar that the next run moves into place.
``build.json`` records the new format last, so that training refuses the dataset until
every shard is done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import dataset
from ..config import REFERENCE
from ..errors import InputError
from ..files import atomic_path, atomic_write
from ..storage import is_url
from .shards import WORK

UPGRADE_SUFFIX = ".upgrade"
"""Suffix of a shard's new tar until it replaces the old one."""


def upgrade_dataset(root: str | os.PathLike[str],
                    on_shard: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Upgrade the dataset at ``root`` in place to the current format.

    Parameters
    ----------
    root : str or PathLike
        A dataset folder that ``fastunlc build`` finished.
    on_shard : callable, optional
        ``on_shard(done, total)`` after each shard.

    Returns
    -------
    dict
        ``{"from_format", "shards", "upgraded", "samples"}``: the format found, the
        shards, those rewritten by this call, and the samples in them.

    Raises
    ------
    InputError
        ``root`` is not a dataset, is newer than this fastunlc, holds an unfinished build,
        or a shard is missing or unreadable.
    """
    if is_url(root):
        raise InputError(root, "upgrade rewrites a dataset in place on a local disk only: "
                               "copy it to one, upgrade it there and copy it back")
    root = Path(root)
    record = root / "build.json"
    if not record.is_file() or not (root / dataset.MANIFEST).is_dir():
        raise InputError(root, "not a fastunlc dataset (no build.json and manifest/)")
    try:
        plan = json.loads(record.read_text())
        found = int(plan.get("format", 1))
    except (ValueError, TypeError, AttributeError) as err:
        raise InputError(record, f"unreadable ({err})") from None
    if found > dataset.FORMAT:
        raise InputError(root, f"dataset format {found} is newer than this fastunlc "
                               f"({dataset.FORMAT}): upgrade fastunlc")
    work = root / WORK
    if work.is_dir() and any(p.is_file() or any(p.iterdir()) for p in work.iterdir()):
        raise InputError(root, "holds an unfinished build (.work/): finish it with the "
                               "fastunlc that started it, then upgrade")
    threshold = plan.get("options", {}).get("config", {}).get(
        "foreground_threshold", REFERENCE.foreground_threshold)
    parts = sorted((root / dataset.MANIFEST).glob("samples-*.parquet"))
    upgraded = samples = 0
    for done, part in enumerate(parts, 1):
        shard = int(part.stem.removeprefix("samples-"))
        count = _upgrade_shard(root, shard, part, threshold)
        upgraded += count is not None
        samples += count or 0
        if on_shard is not None:
            on_shard(done, len(parts))
    if found != dataset.FORMAT:
        plan["format"] = dataset.FORMAT
        atomic_write(record, json.dumps(plan, indent=1) + "\n")
    return {"from_format": found, "shards": len(parts), "upgraded": upgraded,
            "samples": samples}


def _upgrade_shard(root: Path, shard: int, part: Path, threshold: float) -> int | None:
    """Rewrite one shard; returns its sample count, or None when it was already done."""
    tar = root / dataset.shard_file(shard)
    pending = tar.with_name(tar.name + UPGRADE_SUFFIX)
    try:
        table = pq.read_table(part)
    except (OSError, pa.ArrowException) as err:
        raise InputError(part, f"unreadable manifest part ({err})") from None
    if dataset.span_columns("mask.jpg")[0] in table.column_names:
        if pending.is_file():  # interrupted between the part and the tar: finish
            os.replace(pending, tar)
        return None
    if not tar.is_file():
        raise InputError(tar, "missing: the manifest lists its samples")
    rows = table.to_pylist()
    with atomic_path(pending) as tmp, open(tar, "rb") as old:
        writer = dataset.ShardWriter(tmp)
        try:
            for row in rows:
                jpg, png = (_read_span(old, tar, row, member) for member in ("jpg", "png"))
                grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
                if grey is None:
                    raise InputError(tar, f"sample {row['key']}: undecodable mask PNG")
                mask_jpg, boxes = dataset.training_fields(grey, threshold)
                row.update(boxes)
                meta = json.dumps({name: row[name] for name in dataset.SAMPLE_META_FIELDS})
                placed = writer.add(row["key"], {"jpg": jpg, "png": png, "mask.jpg": mask_jpg,
                                                 "json": meta.encode()})
                for member in dataset.MEMBERS:
                    offset, size = dataset.span_columns(member)
                    row[offset], row[size] = placed[member]
        finally:
            writer.close()
    with atomic_path(part) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=dataset.SAMPLE_SCHEMA), tmp)
    os.replace(pending, tar)
    return len(rows)


def _read_span(f, path: Path, row: dict, member: str) -> bytes:
    offset, size = (row[c] for c in dataset.span_columns(member))
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise InputError(path, f"truncated at sample {row['key']}.{member}")
    return data
