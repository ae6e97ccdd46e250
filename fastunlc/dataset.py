"""The pseudo-ground-truth dataset: WebDataset tar shards and a Parquet manifest.

Layout of a dataset folder, on local disk or at an fsspec URL such as
``s3://bucket/dataset`` (``fastunlc build`` writes it, :class:`PseudoGTDataset` reads it)::

    shards/000042.tar                 WebDataset shard 42: per sample KEY.jpg, KEY.png,
                                      KEY.mask.jpg, KEY.json
    manifest/samples-000042.parquet   one row per sample of shard 42 (SAMPLE_SCHEMA)
    manifest/videos-000042.parquet    one row per input video of shard 42 (VIDEO_SCHEMA)
    failures.jsonl                    the videos that failed, with the reason
    stats.json                        counts per outcome and pruning reason, throughput
    build.json                        what the dataset was built from (inputs, options)

A sample's ``KEY`` is ``<video key>_s<shot>_f<frame>``: letters, digits, ``-`` and ``_``
only (no dots, so that every WebDataset reader splits it from the extension, no path
separators). ``KEY.jpg`` is the frame at the working size (longer side at most 650 px),
RGB, JPEG quality :data:`JPEG_QUALITY`; ``KEY.png`` the soft mask of the same size,
8-bit grey, value ``round(255 p)``, lossless; ``KEY.mask.jpg`` the same 8-bit mask as a
greyscale JPEG (quality :data:`MASK_JPEG_QUALITY`), the copy that training decodes on the
GPU in batches beside the frames (8-bit PNG decoding runs on the CPU only); ``KEY.json``
its manifest row without the byte spans (:data:`SAMPLE_META_FIELDS`: key, video path,
video key, shot, frame, height, width, foreground fraction, object boxes and their pixel
counts, shard), so that a WebDataset reader sees where each sample comes from. The object
boxes (:func:`object_boxes`) are what training's crop sampler chooses from before any
pixel is decoded. Members are plain ustar entries with mtime 0, so the same inputs give the
same bytes. A manifest row holds the byte offset and length of each member's data in its
shard, for random access without reading the tar's index.

Files appear only complete (:mod:`fastunlc.storage`: renamed into place on a local disk,
uploaded whole to an object store), and a shard counts as built only once its videos part,
written last, commits it: readers (:func:`read_manifest`) take committed shards only.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError
from .files import encode_mask_png, mask_to_uint8
from .storage import Storage, as_storage

FORMAT = 3
"""Version of the dataset's layout, recorded in ``build.json``. 3: ``KEY.mask.jpg`` and the
object boxes; 2: ``KEY.json`` holds the sample's whole manifest row but its byte spans; 1:
``KEY.json`` held seven of its fields. ``fastunlc upgrade`` brings 1 and 2 to 3."""

JPEG_QUALITY = 95
"""Quality of the frames' JPEG encoding (OpenCV's scale, 0-100)."""

MASK_JPEG_QUALITY = 95
"""Quality of ``KEY.mask.jpg``. On the sample clips' masks the decoded JPEG was within
11 levels of 255 of the PNG (mean 0.4), and 0.07% of the training targets' cells changed
trimap class, all next to a threshold (benchmarks/mask_encoding.py, RESULTS.md)."""

MAX_BOXES = 16
"""Object boxes stored per sample at most, the largest first."""

MEMBERS = ("jpg", "png", "mask.jpg")
"""The members of a sample whose byte spans the manifest holds (columns
``<member with _ for .>_offset`` and ``_size``)."""

SHARDS = "shards"
MANIFEST = "manifest"

SAMPLE_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("video", pa.string()),
    ("video_key", pa.string()),
    ("shot", pa.int32()),
    ("frame", pa.int64()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("foreground_fraction", pa.float32()),
    ("boxes", pa.list_(pa.float32())),
    ("box_pixels", pa.list_(pa.int64())),
    ("shard", pa.string()),
    ("jpg_offset", pa.int64()),
    ("jpg_size", pa.int64()),
    ("png_offset", pa.int64()),
    ("png_size", pa.int64()),
    ("mask_jpg_offset", pa.int64()),
    ("mask_jpg_size", pa.int64()),
])
"""Manifest row of a sample; ``shard`` is the tar's path relative to the dataset folder;
``boxes`` the foreground's object boxes (:func:`object_boxes`), flattened ``x0, y0, x1,
y1`` per box, and ``box_pixels`` each box's component's pixel count."""

SAMPLE_META_FIELDS = tuple(name for name in SAMPLE_SCHEMA.names
                           if not name.endswith(("_offset", "_size")))
"""What ``KEY.json`` and :attr:`Sample.meta` hold: a sample's manifest row without the
byte spans of its members in the shard. The spans are left out because they are known only
when the shard is assembled, after ``KEY.json`` is written into the video's part (and a
reader of the tar, which streams it, has no use for them)."""

VIDEO_SCHEMA = pa.schema([
    ("video", pa.string()),
    ("video_key", pa.string()),
    ("shard", pa.int32()),
    ("status", pa.string()),
    ("reason", pa.string()),
    ("frames_read", pa.int64()),
    ("shots", pa.int32()),
    ("shots_processed", pa.int32()),
    ("frames_processed", pa.int64()),
    ("kept", pa.int64()),
    ("too_little_foreground", pa.int64()),
    ("too_much_foreground", pa.int64()),
    ("foreground_on_the_border", pa.int64()),
    ("samples", pa.int64()),
    ("seconds", pa.float64()),
])
"""Manifest row of an input video: ``status`` is ``"ok"`` (samples written), ``"empty"``
(processed, but no frame passed the pruning) or ``"failed"`` (``reason`` says why); the
pruning columns count processed frames by verdict."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, limit: int = 40) -> str:
    """``text`` reduced to letters, digits, ``-`` and ``_`` (runs of anything else become
    one ``_``), at most ``limit`` characters; ``"x"`` when nothing is left."""
    return _UNSAFE.sub("_", text).strip("_")[:limit] or "x"


def sample_key(video_key: str, shot: int, frame: int) -> str:
    """The WebDataset key of a sample: ``<video key>_s<shot:03d>_f<frame:07d>``."""
    if safe_name(video_key, len(video_key)) != video_key:
        raise ValueError(f"video key {video_key!r} holds characters outside [A-Za-z0-9_-]")
    return f"{video_key}_s{shot:03d}_f{frame:07d}"


def shard_name(index: int) -> str:
    return f"{index:06d}"


def shard_file(index: int) -> str:
    """Name of shard ``index``'s tar in the dataset folder."""
    return f"{SHARDS}/{shard_name(index)}.tar"


def samples_file(index: int) -> str:
    """Name of shard ``index``'s part of the samples manifest."""
    return f"{MANIFEST}/samples-{shard_name(index)}.parquet"


def videos_file(index: int) -> str:
    """Name of shard ``index``'s part of the videos manifest, written last: the record
    that commits the shard."""
    return f"{MANIFEST}/videos-{shard_name(index)}.parquet"


def span_columns(member: str) -> tuple[str, str]:
    """The manifest's offset and size columns of ``member`` (one of :data:`MEMBERS`)."""
    stem = member.replace(".", "_")
    return f"{stem}_offset", f"{stem}_size"


def object_boxes(mask: np.ndarray, threshold: float, limit: int = MAX_BOXES
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of the foreground's connected components (8-connected, ``mask >
    threshold``), the largest ``limit`` by pixel count, largest first (ties in scan order).

    Parameters
    ----------
    mask : ndarray
        ``(h, w)`` soft mask: float in [0, 1], or uint8 ``round(255 p)`` (then compared
        with ``255 * threshold``).
    threshold : float
        Foreground threshold (the spec's 0.7).

    Returns
    -------
    boxes : ndarray
        ``(k, 4)`` float32 ``x0, y0, x1, y1`` in pixels, end exclusive; ``k = 0`` for an
        empty foreground.
    pixels : ndarray
        ``(k,)`` int64 pixel count of each box's component.
    """
    level = 255 * threshold if mask.dtype == np.uint8 else threshold
    foreground = (mask > level).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    stats = stats[1:count]  # row 0 is the background
    order = np.argsort(-stats[:, cv2.CC_STAT_AREA], kind="stable")[:limit]
    x, y, w, h, area = (stats[order, k] for k in range(5))
    boxes = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32).reshape(-1, 4)
    return boxes, area.astype(np.int64)


def encode_mask_jpeg(mask: np.ndarray) -> bytes:
    """Greyscale JPEG bytes (quality :data:`MASK_JPEG_QUALITY`) of a soft mask ``(h, w)``:
    float in [0, 1] (stored as ``round(255 p)``, as in ``KEY.png``) or uint8."""
    grey = mask if mask.dtype == np.uint8 else mask_to_uint8(mask)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(grey),
                            [cv2.IMWRITE_JPEG_QUALITY, MASK_JPEG_QUALITY])
    if not ok:
        raise OSError("JPEG encoding failed")
    return data.tobytes()


def training_fields(mask: np.ndarray, threshold: float) -> tuple[bytes, dict[str, list]]:
    """What training needs of a sample beyond its frame: the ``KEY.mask.jpg`` bytes and the
    manifest's ``boxes`` and ``box_pixels`` values, from its soft mask ``(h, w)`` (float in
    [0, 1] or uint8 ``round(255 p)``)."""
    grey = mask if mask.dtype == np.uint8 else mask_to_uint8(mask)
    boxes, pixels = object_boxes(grey, threshold)
    return encode_mask_jpeg(grey), {"boxes": boxes.reshape(-1).tolist(),
                                    "box_pixels": pixels.tolist()}


def encode_sample(frame: np.ndarray, mask: np.ndarray) -> tuple[bytes, bytes]:
    """JPEG bytes of an RGB uint8 frame ``(h, w, 3)`` (quality :data:`JPEG_QUALITY`) and
    PNG bytes of its soft mask ``(h, w)`` in [0, 1] (:func:`fastunlc.files.encode_mask_png`:
    ``round(255 p)``, the encoding of ``fastunlc segment``'s masks too)."""
    ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError("JPEG encoding failed")
    return jpg.tobytes(), encode_mask_png(mask)


class ShardWriter:
    """Writes WebDataset samples into a tar file (plain ustar members, mtime 0).

    Parameters
    ----------
    path : Path
        The local file to write; publishing it is the caller's (``Storage.writing``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)

    @property
    def size(self) -> int:
        """Bytes of the members written so far (headers and padded data)."""
        return self._tar.offset

    def add(self, key: str, members: dict[str, bytes]) -> dict[str, tuple[int, int]]:
        """Append ``key.<ext>`` for each ``ext -> data``; returns ``ext -> (offset, size)``
        of each member's data in the tar, in bytes."""
        placed = {}
        for ext, data in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            header = len(info.tobuf(self._tar.format, self._tar.encoding, self._tar.errors))
            placed[ext] = (self._tar.offset + header, len(data))
            self._tar.addfile(info, io.BytesIO(data))
        return placed

    def close(self) -> None:
        """Finish the tar (its end-of-archive blocks)."""
        self._tar.close()


@dataclass
class Sample:
    """One training sample: ``frame`` (h, w, 3) uint8 RGB, ``mask`` (h, w) float32 soft
    mask in [0, 1] (foreground > 0.7), and ``meta``, its ``KEY.json``: the manifest row's
    :data:`SAMPLE_META_FIELDS`, the same whether read by index or shard by shard."""

    key: str
    frame: np.ndarray
    mask: np.ndarray
    meta: dict[str, Any]


def decode_sample(key: str, jpg: bytes, png: bytes, meta: dict[str, Any]) -> Sample:
    """A :class:`Sample` from its stored bytes."""
    frame = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if frame is None or grey is None:
        raise ValueError(f"sample {key}: undecodable image data")
    return Sample(key, frame[:, :, ::-1].copy(), grey.astype(np.float32) / 255.0, meta)


Location = Storage | str | os.PathLike[str]
"""A dataset folder: a :class:`~fastunlc.storage.Storage`, a local path or an fsspec URL."""


def check_trainable(root: Location, storage_options: dict[str, Any] | None = None) -> None:
    """Check that ``root`` is a dataset that training can read: a finished build of
    format :data:`FORMAT` with samples whose shards are all there.

    Raises
    ------
    InputError
        Missing folder, not a dataset, another format, an unreadable manifest, no sample,
        or a missing shard; the message says what to do.
    """
    storage = as_storage(root, storage_options)
    if storage.local and not os.path.isdir(storage.url):
        raise InputError(storage.url, "no such dataset folder")
    manifest = storage.list(MANIFEST, ".parquet")
    if not storage.is_file("build.json") or not manifest:
        raise InputError(storage.url, "not a fastunlc dataset (no build.json and manifest/; "
                                      "`fastunlc build --out` writes one)")
    try:
        version = json.loads(storage.read_text("build.json")).get("format", 1)
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(storage.where("build.json"), f"unreadable ({err})") from None
    if version < FORMAT:
        raise InputError(storage.url, f"dataset format {version} lacks the object boxes and "
                                      "mask JPEGs training reads; add them with `fastunlc "
                                      f"upgrade {storage.url}`")
    if version > FORMAT:
        raise InputError(storage.url, f"dataset format {version} is newer than this "
                                      f"fastunlc reads ({FORMAT}): upgrade fastunlc")
    try:
        shards = read_manifest(storage, "samples").column("shard").unique().to_pylist()
    except (OSError, pa.ArrowException) as err:
        raise InputError(storage.where(MANIFEST), f"unreadable manifest part ({err})") from None
    if not shards:
        raise InputError(storage.url, "the dataset holds no sample (is its build finished?)")
    missing = [s for s in shards if not storage.is_file(s)]
    if missing:
        raise InputError(storage.where(missing[0]), f"missing ({len(missing)} of "
                                                    f"{len(shards)} shards the manifest lists)")


def committed_shards(storage: Storage) -> list[int]:
    """The shards whose videos part, the record that commits a shard, is published."""
    prefix, suffix = f"{MANIFEST}/videos-", ".parquet"
    return sorted(int(name[len(prefix):-len(suffix)])
                  for name in storage.list(MANIFEST, suffix) if name.startswith(prefix))


def read_manifest(root: Location, kind: str = "samples") -> pa.Table:
    """The manifest parts of one kind (``"samples"`` or ``"videos"``) of the committed
    shards (:func:`committed_shards`), as one table in shard order; an empty table of the
    right schema when there is none. A reader opened during a build sees whole shards
    only: a shard's tar and samples part are published before the videos part that
    commits it."""
    storage = as_storage(root)
    schema = SAMPLE_SCHEMA if kind == "samples" else VIDEO_SCHEMA
    name = samples_file if kind == "samples" else videos_file
    tables = [pq.read_table(pa.BufferReader(storage.read(name(shard))), schema=schema)
              for shard in committed_shards(storage)]
    return pa.concat_tables(tables) if tables else schema.empty_table()


class PseudoGTDataset:
    """Reader of a dataset: random access by manifest row, or shard by shard.

    Parameters
    ----------
    root : Storage, str or PathLike
        The folder ``fastunlc build --out`` wrote: a local path or an fsspec URL
        (``s3://bucket/dataset``).
    storage_options : dict, optional
        The fsspec back end's keyword arguments (credentials, endpoint) for a URL.

    Raises
    ------
    FileNotFoundError
        ``root`` has neither ``build.json`` nor a manifest. A dataset whose build is
        running holds the shards committed so far (none, at first).

    Examples
    --------
    >>> data = PseudoGTDataset("dataset/")        # doctest: +SKIP
    >>> sample = data[0]; sample.frame.shape, sample.mask.dtype
    """

    def __init__(self, root: Location, storage_options: dict[str, Any] | None = None) -> None:
        self.storage = as_storage(root, storage_options)
        self.root = self.storage.url
        # A build in progress has build.json before its first shard is committed.
        if not (self.storage.is_file("build.json") or self.storage.list(MANIFEST, ".parquet")):
            raise FileNotFoundError(f"{self.root}: not a fastunlc dataset (no build.json or "
                                    f"{MANIFEST}/)")
        self.manifest = read_manifest(self.storage, "samples")
        # Columns, not a Python dict per row: manifests of millions of samples stay compact.
        self._keys = self.manifest["key"].to_pylist()
        self._shards = self.manifest["shard"].to_pylist()
        self._spans = {member: tuple(self.manifest[c].to_numpy()
                                     for c in span_columns(member)) for member in MEMBERS}

    def __len__(self) -> int:
        return len(self._keys)

    def row(self, index: int) -> dict[str, Any]:
        """The manifest row of sample ``index`` (SAMPLE_SCHEMA's columns)."""
        return self.manifest.slice(index, 1).to_pylist()[0]

    def member_bytes(self, index: int, ext: str) -> bytes:
        """The stored bytes of member ``ext`` (one of :data:`MEMBERS`) of sample ``index``."""
        offsets, sizes = self._spans[ext]
        offset, size = int(offsets[index]), int(sizes[index])
        data = self.storage.read(self._shards[index], offset, offset + size)
        if len(data) != size:
            raise ValueError(f"{self._shards[index]}: truncated at sample "
                             f"{self._keys[index]}.{ext}")
        return data

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} of {len(self)}")
        index %= len(self)
        row = self.row(index)
        return decode_sample(self._keys[index], self.member_bytes(index, "jpg"),
                             self.member_bytes(index, "png"),
                             {name: row[name] for name in SAMPLE_META_FIELDS})

    def iter_shards(self) -> Iterator[Sample]:
        """Every sample, reading each committed shard from start to end as a WebDataset
        reader does."""
        for shard in sorted(set(self._shards)):
            with self.storage.reading(shard) as f, tarfile.open(fileobj=f, mode="r|") as tar:
                group: dict[str, bytes] = {}
                current = None
                for member in tar:
                    key, _, ext = member.name.partition(".")
                    if key != current and group:
                        yield _from_group(current, group)
                        group = {}
                    current = key
                    group[ext] = tar.extractfile(member).read()
                if group:
                    yield _from_group(current, group)


def _from_group(key: str, group: dict[str, bytes]) -> Sample:
    return decode_sample(key, group["jpg"], group["png"], json.loads(group["json"]))


def preview(data: PseudoGTDataset, count: int = 16, seed: int = 0, columns: int = 4,
            config: Any = None) -> np.ndarray:
    """A contact sheet of ``count`` random samples (seeded): per sample the frame with its
    soft mask (red tint, foreground outlined in green) beside its trimap colouring (green
    foreground, yellow ignored, background as it is). RGB uint8.

    Raises ValueError when the dataset holds no sample.
    """
    from .config import REFERENCE
    from .output import contact_sheet, overlay, trimap_overlay
    from .pruning import trimap

    config = config or REFERENCE
    if len(data) == 0:
        raise ValueError(f"{data.root}: the dataset holds no sample")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(data), size=min(count, len(data)), replace=False))
    tiles = []
    for index in chosen:
        sample = data[int(index)]
        pair = np.hstack([overlay(sample.frame, sample.mask, config.foreground_threshold),
                          trimap_overlay(sample.frame, trimap(sample.mask, config))])
        tiles.append((f"{sample.meta['video_key'][:24]} f{sample.meta['frame']}", pair))
    return contact_sheet(tiles, columns=columns, width=480)
