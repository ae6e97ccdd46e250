"""A tiny Stanford 40 Actions folder in its real layout, made by the tests.

Each image is a smooth random background with a filled rectangle whose colour depends
on the action (so that a network can learn something in a few steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fastunlc.evaluation.toy import class_colour


@dataclass
class Stanford40Fixture:
    root: Path
    actions: list[str]
    splits: dict[str, list[tuple[str, int]]]
    """Per split: ``(file name, action index)`` in the lists' order."""


def make_stanford40(root: Path, actions: tuple[str, ...] = ("applauding", "blowing_bubbles",
                                                             "brushing_teeth"),
                    train: int = 2, test: int = 2, size: tuple[int, int] = (96, 128),
                    seed: int = 0) -> Stanford40Fixture:
    """Write ``root/Stanford40/`` with ``train + test`` images per action: JPEGImages,
    ImageSplits/actions.txt (header, then ``<action>\\t<count>``), per-action
    ``<action>_train.txt`` / ``<action>_test.txt`` and the overall train.txt / test.txt."""
    rng = np.random.default_rng(seed)
    base = root / "Stanford40"
    (base / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (base / "ImageSplits").mkdir(exist_ok=True)
    height, width = size
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for k, action in enumerate(actions):
        names = [f"{action}_{n:03d}.jpg" for n in range(1, train + test + 1)]
        for name in names:
            noise = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
            image = np.clip(128 + 30 * cv2.resize(noise, (width, height)), 0, 255)
            image = image.astype(np.uint8)
            y, x = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
            image[y:y + height // 2, x:x + width // 2] = class_colour(k + 1)
            Image.fromarray(image).save(base / "JPEGImages" / name, quality=95)
        for split, members in (("train", names[:train]), ("test", names[train:])):
            (base / "ImageSplits" / f"{action}_{split}.txt").write_text(
                "\n".join(members) + "\n")
            splits[split] += [(name, k) for name in members]
    (base / "ImageSplits" / "actions.txt").write_text(
        "action_name\tnumber_of_images\n"
        + "".join(f"{action}\t{train + test}\n" for action in actions))
    for split, members in splits.items():
        (base / "ImageSplits" / f"{split}.txt").write_text(
            "".join(f"{name}\n" for name, _ in members))
    return Stanford40Fixture(base, list(actions), splits)
