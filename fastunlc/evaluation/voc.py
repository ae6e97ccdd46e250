"""PASCAL VOC and SBD, read from the user's copies in their standard layouts.

VOC: ``VOCdevkit/VOC<year>/`` with ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg``,
``ImageSets/Main/<split>.txt``, and for segmentation ``ImageSets/Segmentation/<split>.txt``
and ``SegmentationClass/<id>.png`` (palette indices: 0 background, 1-20 the classes, 255
the void band along object outlines). SBD (Hariharan et al. 2011):
``benchmark_RELEASE/dataset/`` with ``img/<id>.jpg``, ``cls/<id>.mat`` (``GTcls``'s
``Segmentation``: class indices, no void) and ``train.txt`` / ``val.txt``.

Boxes are converted from VOC's 1-based inclusive pixel coordinates to ``x0, y0, x1, y1``
floats with ``x0 = xmin - 1`` and ``x1 = xmax`` (end exclusive), torchvision's
convention.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
"""The 20 classes in the devkit's order; class ``k`` is label ``k + 1`` (0: background)."""
VOID = 255
"""Label of VOC segmentation's void pixels (ignored in training and scoring)."""


@dataclass(frozen=True)
class Annotation:
    """One image's objects.

    Attributes
    ----------
    image_id : str
    size : (int, int)
        ``(h, w)`` in pixels.
    boxes : ndarray
        ``(n, 4)`` float32 ``x0, y0, x1, y1`` in pixels, end exclusive.
    labels : ndarray
        ``(n,)`` int64 in 1..20.
    difficult : ndarray
        ``(n,)`` bool: VOC's "difficult" flag (ignored in training and scoring).
    """

    image_id: str
    size: tuple[int, int]
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


def voc_folder(devkit: str | os.PathLike[str], year: str) -> Path:
    """``devkit/VOC<year>``, checked.

    Raises InputError naming what is missing."""
    devkit = Path(devkit)
    if not devkit.is_dir():
        raise InputError(devkit, "no such VOCdevkit folder")
    root = devkit / f"VOC{year}"
    if not root.is_dir():
        found = sorted(p.name for p in devkit.glob("VOC*") if p.is_dir())
        raise InputError(devkit, f"no VOC{year}/ inside (found: {', '.join(found) or 'none'}"
                                 "; give the VOCdevkit folder that holds VOC<year>/)")
    return root


def image_ids(root: Path, split: str, task: str = "Main") -> list[str]:
    """The ids of ``ImageSets/<task>/<split>.txt``.

    Raises InputError when the list is missing or empty."""
    path = root / "ImageSets" / task / f"{split}.txt"
    if not path.is_file():
        raise InputError(path, f"missing: the {task} image list of split {split!r}")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise InputError(path, "lists no image")
    return ids


def image_path(root: Path, image_id: str) -> Path:
    return root / "JPEGImages" / f"{image_id}.jpg"


def read_annotation(root: Path, image_id: str) -> Annotation:
    """The objects of ``Annotations/<image_id>.xml``.

    Raises InputError for a missing or malformed file or an unknown class."""
    path = root / "Annotations" / f"{image_id}.xml"
    try:
        tree = ElementTree.parse(path).getroot()
        size = tree.find("size")
        height, width = int(size.findtext("height")), int(size.findtext("width"))
        boxes, labels, difficult = [], [], []
        for obj in tree.iter("object"):
            name = obj.findtext("name").strip()
            if name not in VOC_CLASSES:
                raise InputError(path, f"unknown class {name!r}")
            box = obj.find("bndbox")
            x0, y0, x1, y1 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((x0 - 1, y0 - 1, x1, y1))
            labels.append(VOC_CLASSES.index(name) + 1)
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
    except FileNotFoundError:
        raise InputError(path, "missing annotation file") from None
    except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(path, f"malformed annotation ({type(err).__name__}: {err})") from None
    return Annotation(image_id, (height, width), np.array(boxes, np.float32).reshape(-1, 4),
                      np.array(labels, np.int64), np.array(difficult, bool))


def image_labels(annotation: Annotation) -> np.ndarray:
    """``(20,)`` int8 classification labels as the devkit's ``<class>_<split>.txt`` give
    them: 1 when a non-difficult object of the class is in the image, 0 (ignored) when
    only difficult ones are, -1 otherwise."""
    out = np.full(len(VOC_CLASSES), -1, np.int8)
    for label, hard in zip(annotation.labels, annotation.difficult, strict=True):
        k = label - 1
        out[k] = max(out[k], 0 if hard else 1)
    return out


def read_segmentation(root: Path, image_id: str) -> np.ndarray:
    """``(h, w)`` uint8 class indices of ``SegmentationClass/<image_id>.png`` (255 void).

    Raises InputError for a missing file or one that is not a palette PNG."""
    from PIL import Image

    path = root / "SegmentationClass" / f"{image_id}.png"
    try:
        with Image.open(path) as image:
            if image.mode != "P":
                raise InputError(path, f"not a palette PNG (mode {image.mode}): VOC's "
                                       "SegmentationClass holds class indices")
            return np.asarray(image, np.uint8).copy()
    except FileNotFoundError:
        raise InputError(path, "missing segmentation") from None


def sbd_folder(path: str | os.PathLike[str]) -> Path:
    """SBD's ``dataset/`` folder from ``benchmark_RELEASE`` or ``benchmark_RELEASE/dataset``.

    Raises InputError when neither holds ``cls/`` and ``img/``."""
    path = Path(path)
    for root in (path / "dataset", path):
        if (root / "cls").is_dir() and (root / "img").is_dir():
            return root
    raise InputError(path, "not an SBD folder (expected dataset/cls/ and dataset/img/, as "
                           "benchmark_RELEASE holds them)")


def sbd_ids(root: Path, split: str) -> list[str]:
    path = root / f"{split}.txt"
    if not path.is_file():
        raise InputError(path, f"missing: SBD's {split} list")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_sbd_segmentation(root: Path, image_id: str) -> np.ndarray:
    """``(h, w)`` uint8 class indices of SBD's ``cls/<image_id>.mat``."""
    from scipy.io import loadmat

    path = root / "cls" / f"{image_id}.mat"
    try:
        labels = loadmat(path)["GTcls"]["Segmentation"][0, 0]
    except FileNotFoundError:
        raise InputError(path, "missing SBD segmentation") from None
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise InputError(path, f"not an SBD class segmentation ({type(err).__name__})"
                         ) from None
    return np.asarray(labels, np.uint8)
