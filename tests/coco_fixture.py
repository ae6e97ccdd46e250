"""A tiny COCO folder written from scratch, with the answers drawn independently.

Masks are drawn with ``cv2.fillPoly`` from the same integer vertices the annotations
carry, not with pycocotools, so that a test compares :class:`CocoSource` with a second
rasteriser (the two may disagree on boundary pixels only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SIZES = ((64, 80), (72, 56))
"""``(h, w)`` of the images, in turn."""


@dataclass
class CocoImage:
    """What the source should make of one used image.

    ``boxes`` ``(k, 4)`` float32 ``x0, y0, x1, y1`` of its instances, largest first;
    ``instances`` the ``(h, w)`` uint8 0/255 mask of each instance drawn with cv2 and
    ``mask`` their union; ``crowd`` ``(h, w)`` bool the crowd region, if it has one.
    """

    id: int
    file_name: str
    size: tuple[int, int]
    boxes: np.ndarray
    instances: list[np.ndarray]
    mask: np.ndarray
    crowd: np.ndarray | None = None


@dataclass
class CocoFolder:
    """The folder and its used images in id order (the source's sample order)."""

    root: Path
    split: str
    used: list[CocoImage]
    unannotated_id: int
    fileless_id: int


def _uncompressed_rle(region: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a ``(h, w)`` bool region: run lengths in column-major
    order, starting with a run of zeros."""
    flat = region.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], edges])).tolist()
    return {"size": list(region.shape), "counts": counts}


def _instance(rng: np.random.Generator, height: int, width: int, shape: str
              ) -> tuple[np.ndarray, tuple[int, int]]:
    """``(n, 2)`` int vertices ``x, y`` of a polygon star-shaped about a centre (5 px or
    more from its edges) or of an axis-aligned box, and that centre ``(x, y)``."""
    if shape == "rectangle":
        w, h = rng.integers(16, width // 2), rng.integers(16, height // 2)
        x, y = rng.integers(2, width - w - 2), rng.integers(2, height - h - 2)
        return (np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]),
                (int(x + w // 2), int(y + h // 2)))
    radius = rng.uniform(7, min(height, width) / 4, 9)
    angles = (np.arange(9) + rng.uniform(-0.3, 0.3, 9)) * 2 * np.pi / 9  # gaps < 65°
    cx = rng.uniform(radius.max() + 1, width - radius.max() - 1)
    cy = rng.uniform(radius.max() + 1, height - radius.max() - 1)
    vertices = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1)
    return vertices.round().astype(np.int64), (round(cx), round(cy))


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    noise = rng.uniform(0, 255, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)


def make_coco_folder(root: Path, split: str = "train2017", images: int = 8, seed: int = 0,
                     shape: str = "polygon", instances: tuple[int, int] = (1, 3)
                     ) -> CocoFolder:
    """Write ``root/annotations/instances_{split}.json`` and ``root/{split}/*.jpg``.

    ``images`` images (at least 4) with ids out of order in the file and of
    :data:`SIZES` in turn, each with ``instances`` (a closed range) non-crowd instances of
    ``shape`` ("polygon" or "rectangle"); the last image has no annotation and the one
    before has no file. With polygons, the second and third images' first instance is
    stored as an uncompressed and a compressed RLE of its cv2 drawing, and the first
    image also has a crowd region (an uncompressed RLE) and, inside its first instance,
    annotations that are no object: a sliver 0.5 px wide, a triangle of ``area`` 0 and a
    polygon of two vertices.
    """
    if images < 4:
        raise ValueError("make_coco_folder needs at least 4 images")
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / split).mkdir(parents=True, exist_ok=True)
    ids = [7 + 5 * k for k in range(images)]
    entries, annotations, used = [], [], []
    for k, image_id in enumerate(ids):
        height, width = SIZES[k % 2]
        name = f"{image_id:012d}.jpg"
        entries.append({"id": image_id, "file_name": name, "height": height, "width": width})
        if k != images - 2:
            cv2.imwrite(str(root / split / name), _texture(rng, height, width),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
        if k == images - 1:
            continue
        mask = np.zeros((height, width), np.uint8)
        boxes, drawings = [], []
        vertices = [_instance(rng, height, width, shape)
                    for _ in range(rng.integers(instances[0], instances[1] + 1))]
        for points, _ in vertices:
            drawn = cv2.fillPoly(np.zeros_like(mask), [points.astype(np.int32)], 255)
            mask |= drawn
            drawings.append(drawn)
            x0, y0 = points.min(0)
            x1, y1 = points.max(0)
            boxes.append((x0, y0, x1, y1))
            segmentation = [points.ravel().astype(float).tolist()]
            if shape == "polygon" and k in (1, 2) and len(drawings) == 1:
                segmentation = _uncompressed_rle(drawn > 0)
                if k == 2:
                    rle = mask_utils.encode(np.asfortranarray(drawn // 255))
                    segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
            annotations.append({"image_id": image_id, "iscrowd": 0, "category_id": 1,
                                "segmentation": segmentation,
                                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                                "area": float(np.count_nonzero(drawn))})
        crowd = None
        if k == 0 and shape == "polygon":
            crowd = np.zeros((height, width), bool)
            crowd[:14, :14] = True
            annotations.append({"image_id": image_id, "iscrowd": 1, "category_id": 1,
                                "segmentation": _uncompressed_rle(crowd),
                                "bbox": [0.0, 0.0, 14.0, 14.0], "area": 196.0})
            cx, cy = (float(v) for v in vertices[0][1])
            for polygon, area in (
                    ([cx, cy - 3, cx + 0.5, cy - 3, cx + 0.5, cy + 3, cx, cy + 3], 3.0),
                    ([cx - 2, cy - 2, cx + 2, cy - 2, cx, cy + 2], 0.0),
                    ([cx - 2, cy - 2, cx + 2, cy + 2], 8.0)):
                x0, y0 = min(polygon[0::2]), min(polygon[1::2])
                annotations.append({"image_id": image_id, "iscrowd": 0, "category_id": 1,
                                    "segmentation": [polygon], "area": area,
                                    "bbox": [x0, y0, max(polygon[0::2]) - x0,
                                             max(polygon[1::2]) - y0]})
        if k != images - 2:
            boxes_array = np.array(boxes, np.float32)
            area = (boxes_array[:, 2] - boxes_array[:, 0]) * (boxes_array[:, 3] - boxes_array[:, 1])
            used.append(CocoImage(image_id, name, (height, width),
                                  boxes_array[np.argsort(-area, kind="stable")], drawings, mask,
                                  crowd))
    for n, annotation in enumerate(annotations):
        annotation["id"] = 1000 + n
    order = rng.permutation(len(entries))
    document = {"images": [entries[k] for k in order], "annotations": annotations,
                "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    return CocoFolder(root, split, used, ids[-1], ids[-2])
