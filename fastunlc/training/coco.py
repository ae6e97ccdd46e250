"""COCO instance masks as a training source, with the paper's two degradations (section 4).

The paper's supervised control trains the mask network on COCO's segmentations, class
labels discarded, and asks how much worse masks hurt it: boundary noise (each mask eroded
or dilated, at random, with a kernel of fixed size) and truncation (a strip of a fixed
share of the box area cut from one of the four sides). :class:`CocoSource` reads a COCO
folder in its standard layout and serves each image's mask as the union of its non-crowd
instances, degraded per instance when asked.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from ..errors import InputError
from .sources import Allocate, EncodedSample, read_file_into

log = logging.getLogger(__name__)


CROWD_VALUE = 128
"""Mask value of crowd regions: p ≈ 0.5, inside the trimap's ignored band (0.4 to 0.7)."""


class CocoSource:
    """Images and instance masks of one COCO split.

    The folder holds ``annotations/instances_{split}.json`` and ``{split}/`` with the
    images under their ``file_name``. An image is used when its file is in that folder
    and it has at least one non-crowd annotation whose box is at least 1 px wide and high
    and whose ``area`` (COCO's mask pixel count; taken as non-zero when absent) is above
    0. Used images are sorted by id; ``fraction`` keeps a seeded subset of them, in id
    order. Groups are runs of ``group_size`` consecutive used images.

    A sample's mask is the union of the image's non-crowd instance masks, ``(h, w)``
    uint8 in ``{0, 255}``, with :data:`CROWD_VALUE` where a crowd region is not covered by
    an instance: a crowd of people is foreground no instance outlines, so its pixels fall
    in the trimap's ignored band rather than teach that people are background. Its objects
    are the non-crowd annotations' boxes of at least 1 × 1 px.

    Degradations, applied to each instance's mask before the union, drawn from
    ``numpy.random.default_rng([seed, index])`` with ``seed`` the one ``read_group`` or
    ``read_sample`` gets (so both give the same mask for the same seed, and each epoch
    draws anew):

    * truncation (``truncate_fraction`` f > 0): one of the four sides of the instance's
      annotation box at random; the strip along it of depth ``f`` × the box's height
      (top, bottom) or width (left, right), which is f × the box area, rounded to whole
      pixels, is zeroed;
    * then boundary noise (``degrade_kernel`` k > 0): erosion or dilation, 50/50, with a
      ``k × k`` elliptic kernel (``cv2.MORPH_ELLIPSE``: the boundary moves by about
      ``k / 2`` px in every direction, where a square would move it further along the
      diagonals). The image's edge counts as foreground for erosion, so an object cut by
      the frame is not eroded from it.

    Parameters
    ----------
    root : str or PathLike
        The COCO folder.
    split : str
        The split, e.g. ``"train2017"``.
    fraction : float
        Share of the used images to keep, in (0, 1]; ``round(fraction × n)``, at least 1.
    seed : int
        Seed of the subset.
    degrade_kernel : int
        Side in pixels of the erosion / dilation kernel; 0 turns boundary noise off.
    truncate_fraction : float
        Share of each instance's box area cut from one side, in [0, 1); 0 turns it off.
    group_size : int
        Images per group.

    Attributes
    ----------
    paths : list of Path
        The used images' files, by sample index.
    groups : int
    group_of : ndarray
        ``(len,)`` int64 group of each sample (``index // group_size``).
    redraws_masks : bool
        Whether a degradation is on (masks then depend on the read's seed).

    Raises
    ------
    ValueError
        An argument out of its range.
    InputError
        The folder, its annotations file or its split's image folder is missing, the
        annotations are not a readable COCO file, or no image is usable.
    """

    group_size = 64

    def __init__(self, root: str | os.PathLike[str], split: str = "train2017",
                 fraction: float = 1.0, seed: int = 0, degrade_kernel: int = 0,
                 truncate_fraction: float = 0.0, group_size: int = group_size) -> None:
        checks = (("fraction", fraction, 0 < fraction <= 1, "in (0, 1]"),
                  ("degrade_kernel", degrade_kernel, degrade_kernel >= 0, ">= 0"),
                  ("truncate_fraction", truncate_fraction, 0 <= truncate_fraction < 1,
                   "in [0, 1)"),
                  ("group_size", group_size, group_size >= 1, ">= 1"))
        for name, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {value}")
        self.root = Path(root)
        self.name = str(root)
        self.split = split
        self.degrade_kernel = int(degrade_kernel)
        self.truncate_fraction = float(truncate_fraction)
        self.group_size = int(group_size)
        self.redraws_masks = self.degrade_kernel > 0 or self.truncate_fraction > 0
        images, annotations, files = self._load()
        self.paths: list[Path] = []
        self._sizes: list[tuple[int, int]] = []
        self._boxes: list[np.ndarray] = []
        self._instances: list[list[tuple[object, np.ndarray]]] = []
        self._crowds: list[list[object]] = []
        missing = []
        for image_id in sorted(images):
            name = self._add(images[image_id], annotations.get(image_id, []), files)
            if name is not None:
                missing.append(name)
        if missing:
            log.warning("%s: %d annotated image(s) not in %s, skipped (%s, ...)", self.name,
                        len(missing), self._image_folder, missing[0])
        if not self.paths:
            raise InputError(self._annotations_path,
                             f"no usable image in split {split!r} (none has both a file in "
                             f"{self._image_folder} and a non-crowd annotation)")
        if fraction < 1:
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(self.paths), max(1, round(fraction * len(
                self.paths))), replace=False))
            for attr in ("paths", "_sizes", "_boxes", "_instances", "_crowds"):
                setattr(self, attr, [getattr(self, attr)[k] for k in keep])
        self.group_of = np.arange(len(self.paths), dtype=np.int64) // self.group_size
        self.groups = int(self.group_of[-1]) + 1

    @property
    def _annotations_path(self) -> Path:
        return self.root / "annotations" / f"instances_{self.split}.json"

    @property
    def _image_folder(self) -> Path:
        return self.root / self.split

    def _load(self) -> tuple[dict[int, dict], dict[int, list[dict]], set[str]]:
        """The annotations file's images by id, their annotations by image id, and the
        names in the split's image folder."""
        if not self.root.is_dir():
            raise InputError(self.root, "no such COCO folder")
        path = self._annotations_path
        if not path.is_file():
            raise InputError(path, f"no annotations file for split {self.split!r} (a COCO "
                                   f"folder holds annotations/instances_{self.split}.json)")
        if not self._image_folder.is_dir():
            raise InputError(self._image_folder, f"no image folder for split {self.split!r}")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                coco = COCO(str(path))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(path, f"cannot read the annotations: {err}") from err
        except (AssertionError, KeyError, TypeError) as err:
            raise InputError(path, f"not a COCO annotations file ({type(err).__name__}: "
                                   f"{err})") from err
        with os.scandir(self._image_folder) as entries:
            files = {entry.name for entry in entries}
        return coco.imgs, coco.imgToAnns, files

    def _add(self, image: dict, annotations: list[dict], files: set[str]) -> str | None:
        """Append ``image`` to the used images if it has an object and a file; returns
        its file name when only the file is missing."""
        try:
            height, width = int(image["height"]), int(image["width"])
            instances, boxes, crowds = [], [], []
            for ann in annotations:
                segmentation = _compact(ann["segmentation"])
                if not segmentation:
                    continue
                if ann.get("iscrowd", 0):
                    crowds.append(segmentation)
                    continue
                x, y, w, h = (float(v) for v in ann["bbox"])
                if w >= 1 and h >= 1 and ann.get("area", 1) > 0:
                    boxes.append((x, y, x + w, y + h))
                instances.append((segmentation, np.array([x, y, w, h], np.float64)))
            name = image["file_name"]
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(self._annotations_path,
                             f"image {image.get('id')}: malformed entry ({type(err).__name__}: "
                             f"{err})") from err
        if not boxes:
            return None
        if name not in files:
            return name
        boxes_array = np.array(boxes, np.float32)
        area = (boxes_array[:, 2] - boxes_array[:, 0]) * (boxes_array[:, 3] - boxes_array[:, 1])
        self.paths.append(self._image_folder / name)
        self._sizes.append((height, width))
        self._boxes.append(boxes_array[np.argsort(-area, kind="stable")])
        self._instances.append(instances)
        self._crowds.append(crowds)
        return None

    def __len__(self) -> int:
        return len(self.paths)

    def image_size(self, index: int) -> tuple[int, int]:
        """``(h, w)`` in pixels, as the annotations give it."""
        return self._sizes[index]

    def objects(self, index: int) -> np.ndarray:
        """``(k, 4)`` float32 boxes ``x0, y0, x1, y1`` in pixels (end exclusive), largest
        area first."""
        return self._boxes[index]

    def mask(self, index: int, seed: int) -> np.ndarray:
        """``(h, w)`` uint8 mask: 255 on the union of the (degraded) instances, else
        :data:`CROWD_VALUE` on crowd regions, else 0."""
        height, width = self._sizes[index]
        rles = [_rle(segmentation, height, width) for segmentation, _ in self._instances[index]]
        if not self.redraws_masks:
            # pycocotools decodes column-major; cv2 transposes to row-major far faster
            # than numpy's strided copy.
            union = cv2.transpose(mask_utils.decode(mask_utils.merge(rles)).T)
        else:
            rng = np.random.default_rng([seed, index])
            union = np.zeros((height, width), np.uint8)
            for rle, (_, box) in zip(rles, self._instances[index], strict=True):
                self._degrade_into(union, rle, box, rng)
        union *= 255
        if self._crowds[index]:
            crowd = mask_utils.merge([_rle(c, height, width) for c in self._crowds[index]])
            union[(cv2.transpose(mask_utils.decode(crowd).T) > 0) & (union == 0)] = CROWD_VALUE
        return union

    def _degrade_into(self, union: np.ndarray, rle: dict, box: np.ndarray,
                      rng: np.random.Generator) -> None:
        """OR one instance's degraded mask into ``union`` (``(h, w)`` uint8 0/1).

        The work is done on the instance's extent padded by the kernel's side, not on the
        whole frame; the result is the same as on the whole frame."""
        height, width = union.shape
        instance = mask_utils.decode(rle)
        x, y, w, h = box
        if self.truncate_fraction > 0:
            side = int(rng.integers(4))
            depth = self.truncate_fraction * (h if side < 2 else w)
            if side == 0:  # top
                instance[:max(0, round(y + depth))] = 0
            elif side == 1:  # bottom
                instance[max(0, round(y + h - depth)):] = 0
            elif side == 2:  # left
                instance[:, :max(0, round(x + depth))] = 0
            else:  # right
                instance[:, max(0, round(x + w - depth)):] = 0
        k = self.degrade_kernel
        if k == 0:
            union |= instance
            return
        erode = bool(rng.integers(2))
        bx, by, bw, bh = mask_utils.toBbox(rle)
        x0, y0 = max(0, int(bx) - k), max(0, int(by) - k)
        x1, y1 = min(width, int(np.ceil(bx + bw)) + k), min(height, int(np.ceil(by + bh)) + k)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        part = np.ascontiguousarray(instance[y0:y1, x0:x1])
        part = cv2.erode(part, kernel) if erode else cv2.dilate(part, kernel)
        union[y0:y1, x0:x1] |= part

    def read_group(self, group: int, seed: int, allocate: Allocate) -> list[EncodedSample]:
        """The group's images read into one buffer from ``allocate``, with their masks."""
        members = range(group * self.group_size, min(len(self), (group + 1) * self.group_size))
        sizes = [os.path.getsize(self.paths[k]) for k in members]
        buffer = allocate(sum(sizes))
        out, at = [], 0
        for k, size in zip(members, sizes, strict=True):
            view = buffer[at:at + size]
            read_file_into(self.paths[k], view)
            out.append(EncodedSample(k, view, self.mask(k, seed), False))
            at += size
        return out

    def read_sample(self, index: int, seed: int) -> EncodedSample:
        """Sample ``index`` read on its own; the same bytes and mask as ``read_group``'s."""
        return EncodedSample(index, np.fromfile(self.paths[index], np.uint8),
                             self.mask(index, seed), False)


def _compact(segmentation: list | dict) -> list[np.ndarray] | dict:
    """Polygons as float64 arrays (a fraction of the memory of lists of Python floats;
    pycocotools takes either), those of fewer than 3 vertices dropped (pycocotools would
    read 2 as a box); RLE as it is. An empty list: no usable polygon."""
    if isinstance(segmentation, list):
        return [np.asarray(polygon, np.float64) for polygon in segmentation
                if len(polygon) >= 6]
    return segmentation


def _rle(segmentation: list[np.ndarray] | dict, height: int, width: int) -> dict:
    """One instance's compressed RLE, as ``COCO.annToRLE`` makes it."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation
