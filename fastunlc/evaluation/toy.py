"""Toy PASCAL VOC and SBD folders in their real layouts: for trying the evaluation
programs without the real datasets (``eval/toy_voc.py``) and for the tests.

Each image is a smooth random background with one to three filled rectangles, each of a
class (its colour depends on the class, so that a network can learn something in a few
steps); some objects are marked difficult. Segmentations paint each rectangle's class
with a 2-px void (255) band along its outline, as VOC's do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .voc import VOC_CLASSES, VOID


@dataclass
class VOCFixture:
    devkit: Path
    year: str
    splits: dict[str, list[str]]
    objects: dict[str, list[tuple[int, tuple[int, int, int, int], bool]]] = field(
        default_factory=dict)
    """Per image id: ``(label 1..20, (xmin, ymin, xmax, ymax) 1-based inclusive,
    difficult)``."""
    segmentations: dict[str, np.ndarray] = field(default_factory=dict)


def class_colour(label: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(label)
    return tuple(int(v) for v in rng.integers(30, 226, 3))


def _palette() -> list[int]:
    palette = [0, 0, 0]
    for label in range(1, 256):
        palette += list(class_colour(label)) if label <= 20 else [224, 224, 192]
    return palette


def make_voc_devkit(root: Path, year: str = "2007", images: int = 12, seed: int = 0,
                    classes: int = 4, size: tuple[int, int] = (96, 128),
                    segmentation: bool = False) -> VOCFixture:
    """Write ``root/VOCdevkit/VOC<year>/`` with ``images`` images of the first ``classes``
    classes, split half train, half val (trainval all; test = val), and, with
    ``segmentation``, SegmentationClass PNGs and ImageSets/Segmentation lists."""
    rng = np.random.default_rng(seed)
    base = root / "VOCdevkit" / f"VOC{year}"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main", "ImageSets/Segmentation",
                   "SegmentationClass"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    height, width = size
    ids = [f"{year}_{k:06d}" for k in range(images)]
    fixture = VOCFixture(root / "VOCdevkit", year, {})
    for image_id in ids:
        noise = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
        image = np.clip(128 + 30 * cv2.resize(noise, (width, height)), 0, 255).astype(np.uint8)
        labels = np.zeros((height, width), np.uint8)
        objects = []
        for _ in range(int(rng.integers(1, 4))):
            label = int(rng.integers(1, classes + 1))
            w, h = int(rng.integers(width // 5, width // 2)), int(rng.integers(height // 5,
                                                                            height // 2))
            x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            image[y0:y0 + h, x0:x0 + w] = class_colour(label)
            labels[y0:y0 + h, x0:x0 + w] = label
            objects.append((label, (x0 + 1, y0 + 1, x0 + w, y0 + h), bool(rng.random() < 0.15)))
        fixture.objects[image_id] = objects
        Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        _write_xml(base / "Annotations" / f"{image_id}.xml", image_id, (height, width), objects)
        if segmentation:
            edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
            labels[edges > 0] = VOID
            png = Image.fromarray(labels, mode="P")
            png.putpalette(_palette())
            png.save(base / "SegmentationClass" / f"{image_id}.png")
            fixture.segmentations[image_id] = labels
    half = images // 2
    splits = {"train": ids[:half], "val": ids[half:], "trainval": ids, "test": ids[half:]}
    for name, members in splits.items():
        (base / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(members) + "\n")
        if segmentation and name in ("train", "val", "trainval"):
            (base / "ImageSets" / "Segmentation" / f"{name}.txt").write_text(
                "\n".join(members) + "\n")
    fixture.splits = splits
    return fixture


def _write_xml(path: Path, image_id: str, size: tuple[int, int], objects) -> None:
    height, width = size
    parts = [f"<annotation><folder>VOC</folder><filename>{image_id}.jpg</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for label, (x0, y0, x1, y1), difficult in objects:
        parts.append(f"<object><name>{VOC_CLASSES[label - 1]}</name><pose>Unspecified</pose>"
                     f"<truncated>0</truncated><difficult>{int(difficult)}</difficult>"
                     f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                     f"<ymax>{y1}</ymax></bndbox></object>")
    path.write_text("".join(parts) + "</annotation>\n")


def make_sbd(root: Path, voc: VOCFixture, ids: list[str]) -> Path:
    """``root/benchmark_RELEASE/dataset/`` holding ``ids`` of ``voc`` (their images and
    segmentations, void set to background as SBD has none); train.txt lists them all."""
    from scipy.io import savemat

    base = root / "benchmark_RELEASE" / "dataset"
    (base / "img").mkdir(parents=True, exist_ok=True)
    (base / "cls").mkdir(exist_ok=True)
    images = voc.devkit / f"VOC{voc.year}" / "JPEGImages"
    for image_id in ids:
        (base / "img" / f"{image_id}.jpg").write_bytes((images / f"{image_id}.jpg").read_bytes())
        labels = np.where(voc.segmentations[image_id] == VOID, 0,
                          voc.segmentations[image_id]).astype(np.uint8)
        savemat(base / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": labels}})
    (base / "train.txt").write_text("\n".join(ids) + "\n")
    (base / "val.txt").write_text("")
    return base.parent
