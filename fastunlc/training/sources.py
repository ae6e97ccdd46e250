"""Where training samples come from: built datasets, COCO, and a synthetic source.

Every source speaks one protocol, :class:`Source`, that the loader reads. Samples are
grouped into *groups* (a built dataset's shards; runs of COCO images; chunks of the
synthetic set), the unit that is read at once, with large sequential reads, into memory
the loader provides (pinned host memory when it feeds a GPU) and that a rank owns: ranks
split the groups, never the samples of a group. Before any pixel is decoded, the crop
sampler needs only a sample's image size and object boxes, which every source holds in
memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..errors import InputError

Allocate = Callable[[int], np.ndarray]
"""``allocate(nbytes)`` → a writable ``(nbytes,)`` uint8 array to read into."""

READ_CHUNK = 64 << 20
"""Bytes per ``readinto`` call when a group's file is read whole."""


@dataclass(frozen=True)
class EncodedSample:
    """One sample as stored, before decoding.

    Attributes
    ----------
    index : int
        The sample's index in its source.
    image : ndarray
        ``(n,)`` uint8: the RGB image's JPEG bytes (a view into its group's buffer).
    mask : ndarray
        ``(n,)`` uint8 JPEG bytes of the greyscale mask when ``mask_is_jpeg``, else the
        decoded ``(h, w)`` uint8 mask; values ``round(255 p)``.
    mask_is_jpeg : bool
    """

    index: int
    image: np.ndarray
    mask: np.ndarray
    mask_is_jpeg: bool


class Source(Protocol):
    """What the loader reads. ``group_of`` is ``(len,)`` int64, non-decreasing."""

    name: str
    groups: int
    group_of: np.ndarray
    redraws_masks: bool
    """Whether ``read_group``'s masks depend on its ``seed`` (COCO's degradations), so
    that a group read in one epoch cannot be reused in the next."""

    def __len__(self) -> int: ...

    def image_size(self, index: int) -> tuple[int, int]:
        """``(h, w)`` in pixels of the stored image."""

    def objects(self, index: int) -> np.ndarray:
        """``(k, 4)`` float32 candidate object boxes ``x0, y0, x1, y1`` in pixels (end
        exclusive), ``k >= 1``."""

    def read_group(self, group: int, seed: int, allocate: Allocate) -> list[EncodedSample]:
        """Every sample of ``group``, read into memory from ``allocate``."""

    def read_sample(self, index: int, seed: int) -> EncodedSample:
        """One sample, read on its own (the reference loader's random access)."""


def read_file_into(path: Path, buffer: np.ndarray) -> None:
    """Fill ``buffer`` with the first ``len(buffer)`` bytes of ``path``.

    Raises InputError when the file is shorter."""
    view = memoryview(buffer)
    done = 0
    with open(path, "rb", buffering=0) as f:
        while done < len(view):
            got = f.readinto(view[done:done + READ_CHUNK])
            if not got:
                raise InputError(path, f"truncated: {done} of {len(view)} bytes")
            done += got


def _encode_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    bgr = image[:, :, ::-1] if image.ndim == 3 else image
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY,
                                                                 quality])
    if not ok:
        raise OSError("JPEG encoding failed")
    return data.reshape(-1)


class SyntheticSource:
    """Generated frames with one moving-object-like blob each, stored as a built dataset
    stores them (RGB JPEG, greyscale mask JPEG): for tests and benchmarks.

    Each image is a smooth random texture with a textured ellipse of another colour; the
    soft mask is 1 inside the ellipse, 0 outside, with a blurred band along the edge (so
    the trimap has an ignored band, as uNLC's masks do).

    Parameters
    ----------
    count : int
        Number of samples.
    size : (int, int)
        ``(h, w)`` of every image in pixels.
    group_size : int
        Samples per group.
    seed : int
        Seed of the generation: the same arguments give the same bytes.
    """

    name = "synthetic"
    redraws_masks = False

    def __init__(self, count: int = 256, size: tuple[int, int] = (240, 320),
                 group_size: int = 16, seed: int = 0) -> None:
        if count < 1 or group_size < 1:
            raise ValueError(f"count and group_size must be >= 1, got {count}, {group_size}")
        self.size = size
        self.group_of = np.arange(count, dtype=np.int64) // group_size
        self.groups = int(self.group_of[-1]) + 1
        self._images: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []
        self._boxes = np.zeros((count, 1, 4), np.float32)
        height, width = size
        for k in range(count):
            rng = np.random.default_rng([seed, k])
            image, mask = _synthetic_frame(rng, height, width)
            ys, xs = np.nonzero(mask > 178)
            self._boxes[k, 0] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            self._images.append(_encode_jpeg(image, 90))
            self._masks.append(_encode_jpeg(mask, 95))

    def __len__(self) -> int:
        return len(self.group_of)

    def image_size(self, index: int) -> tuple[int, int]:
        return self.size

    def objects(self, index: int) -> np.ndarray:
        return self._boxes[index]

    def read_group(self, group: int, seed: int, allocate: Allocate) -> list[EncodedSample]:
        members = np.flatnonzero(self.group_of == group)
        parts = [part for k in members for part in (self._images[k], self._masks[k])]
        buffer = allocate(sum(len(p) for p in parts))
        out, at = [], 0
        for k in members:
            views = []
            for part in (self._images[k], self._masks[k]):
                buffer[at:at + len(part)] = part
                views.append(buffer[at:at + len(part)])
                at += len(part)
            out.append(EncodedSample(int(k), views[0], views[1], True))
        return out

    def read_sample(self, index: int, seed: int) -> EncodedSample:
        return EncodedSample(index, self._images[index].copy(), self._masks[index].copy(), True)


def _synthetic_frame(rng: np.random.Generator, height: int, width: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 ``(h, w, 3)`` frame and its ``(h, w)`` uint8 soft mask."""
    def texture(colour: np.ndarray) -> np.ndarray:
        noise = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
        noise = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        return np.clip(colour + 40 * noise, 0, 255)

    background = texture(rng.uniform(40, 215, 3))
    blob = texture(rng.uniform(40, 215, 3))
    mask = np.zeros((height, width), np.uint8)
    centre = (int(rng.uniform(0.3, 0.7) * width), int(rng.uniform(0.3, 0.7) * height))
    axes = (int(rng.uniform(0.12, 0.3) * width), int(rng.uniform(0.12, 0.3) * height))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    image = (background * (1 - alpha) + blob * alpha).astype(np.uint8)
    return image, mask


class BuiltSource:
    """A dataset that ``fastunlc build`` wrote (format 3 or later); a group is a shard.

    Objects are the foreground's connected components the manifest lists, those of at
    least :attr:`min_object_share` of the largest one's pixels (uNLC's masks carry small
    stray blobs that are not objects to centre a crop on).

    Raises
    ------
    InputError
        The folder is missing, not a dataset, empty, of an older format, or lacks shards.
    """

    redraws_masks = False
    min_object_share = 0.1

    def __init__(self, root: str | os.PathLike[str],
                 storage_options: dict[str, Any] | None = None) -> None:
        from ..dataset import check_trainable, read_manifest
        from ..storage import as_storage

        self.storage = as_storage(root, storage_options)
        self.root = self.name = self.storage.url
        check_trainable(self.storage)
        table = read_manifest(self.storage, "samples").sort_by([("shard", "ascending"),
                                                              ("jpg_offset", "ascending")])
        shards = table["shard"].to_numpy(zero_copy_only=False)
        self.shard_files, self.group_of = np.unique(shards, return_inverse=True)
        self.group_of = self.group_of.astype(np.int64)
        self.groups = len(self.shard_files)
        self._size = np.stack([table["height"].to_numpy(), table["width"].to_numpy()], 1)
        self._spans = {name: (table[f"{name}_offset"].to_numpy(), table[f"{name}_size"].to_numpy())
                       for name in ("jpg", "mask_jpg")}
        self._boxes = [np.asarray(b, np.float32).reshape(-1, 4)
                       for b in table["boxes"].to_pylist()]
        self._pixels = [np.asarray(p, np.int64) for p in table["box_pixels"].to_pylist()]
        self._first = np.searchsorted(self.group_of, np.arange(self.groups))
        for k, boxes in enumerate(self._boxes):
            if len(boxes) == 0:
                raise InputError(self.root, f"sample {table['key'][k]} lists no object box")

    def __len__(self) -> int:
        return len(self.group_of)

    def image_size(self, index: int) -> tuple[int, int]:
        return int(self._size[index, 0]), int(self._size[index, 1])

    def objects(self, index: int) -> np.ndarray:
        pixels = self._pixels[index]
        return self._boxes[index][pixels >= self.min_object_share * pixels.max()]

    def read_group(self, group: int, seed: int, allocate: Allocate) -> list[EncodedSample]:
        name = str(self.shard_files[group])
        members = range(self._first[group], self._first[group] + np.count_nonzero(
            self.group_of == group))
        (jpg_at, jpg_n), (mask_at, mask_n) = self._spans["jpg"], self._spans["mask_jpg"]
        # One sequential read of the shard up to its last needed byte.
        end = int(max(max(jpg_at[k] + jpg_n[k], mask_at[k] + mask_n[k]) for k in members))
        size = self.storage.size(name)
        if size < end:
            raise InputError(self.storage.where(name), f"truncated: {size} bytes, the "
                                                       f"manifest needs {end}")
        buffer = allocate(end)
        if self.storage.local:
            read_file_into(Path(self.storage.path(name)), buffer)
        else:  # one ranged request
            buffer[:] = np.frombuffer(self.storage.read(name, 0, end), np.uint8)
        return [EncodedSample(int(k), buffer[jpg_at[k]:jpg_at[k] + jpg_n[k]],
                              buffer[mask_at[k]:mask_at[k] + mask_n[k]], True) for k in members]

    def read_sample(self, index: int, seed: int) -> EncodedSample:
        shard = str(self.shard_files[self.group_of[index]])
        parts = []
        for member in ("jpg", "mask_jpg"):
            offsets, sizes = self._spans[member]
            start, size = int(offsets[index]), int(sizes[index])
            data = self.storage.read(shard, start, start + size)
            if len(data) != size:
                raise InputError(self.storage.where(shard), "truncated")
            parts.append(np.frombuffer(data, np.uint8))
        return EncodedSample(index, parts[0], parts[1], True)


class ConcatSource:
    """Several sources as one: indices and groups follow one another in order."""

    def __init__(self, sources: Sequence[Source]) -> None:
        if not sources:
            raise ValueError("ConcatSource needs at least one source")
        self.sources = list(sources)
        self.name = " + ".join(s.name for s in sources)
        self.redraws_masks = any(s.redraws_masks for s in sources)
        self._starts = np.cumsum([0] + [len(s) for s in sources])
        self._group_starts = np.cumsum([0] + [s.groups for s in sources])
        self.group_of = np.concatenate([s.group_of + g for s, g in
                                        zip(sources, self._group_starts, strict=False)])
        self.groups = int(self._group_starts[-1])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int) -> tuple[Source, int]:
        k = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.sources[k], int(index - self._starts[k])

    def image_size(self, index: int) -> tuple[int, int]:
        source, local = self._locate(index)
        return source.image_size(local)

    def objects(self, index: int) -> np.ndarray:
        source, local = self._locate(index)
        return source.objects(local)

    def read_group(self, group: int, seed: int, allocate: Allocate) -> list[EncodedSample]:
        k = int(np.searchsorted(self._group_starts, group, side="right") - 1)
        shift = int(self._starts[k])
        return [EncodedSample(s.index + shift, s.image, s.mask, s.mask_is_jpeg) for s in
                self.sources[k].read_group(group - int(self._group_starts[k]), seed, allocate)]

    def read_sample(self, index: int, seed: int) -> EncodedSample:
        source, local = self._locate(index)
        sample = source.read_sample(local, seed)
        return EncodedSample(index, sample.image, sample.mask, sample.mask_is_jpeg)
