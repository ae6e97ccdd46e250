"""Tiny folders of human masks in the DAVIS, FBMS and SegTrack v2 layouts, and
predictions in ``fastunlc segment``'s layout, each with what a reader should make of it.

The shapes are drawn here with numpy (a square moving right, a disc moving down, a
void band around the square), and the expected foregrounds are kept from the drawing,
not read back, so that a test compares a reader with what was meant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fastunlc.output import ResultWriter

SIZE = (48, 64)
"""``(h, w)`` of every fixture frame."""


def square(t: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """bool ``(h, w)``: a 12-pixel square at ``(10, 6 + 3 t)``."""
    mask = np.zeros(size, bool)
    mask[10:22, 6 + 3 * t:18 + 3 * t] = True
    return mask


def disc(t: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """bool ``(h, w)``: a disc of radius 7 centred at ``(14 + 2 t, 44)``."""
    y, x = np.mgrid[:size[0], :size[1]]
    return (y - 14 - 2 * t) ** 2 + (x - 44) ** 2 <= 49


def void_band(t: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """bool ``(h, w)``: a 2-pixel band just outside :func:`square` (DAVIS marks such
    bands void)."""
    grown = np.zeros(size, bool)
    grown[8:24, 4 + 3 * t:20 + 3 * t] = True
    return grown & ~square(t, size)


def davis_labels(t: int) -> np.ndarray:
    """uint8 ``(h, w)`` DAVIS 2017 labels of frame ``t``: 1 square, 2 disc, 255 void."""
    labels = np.zeros(SIZE, np.uint8)
    labels[square(t)] = 1
    labels[disc(t)] = 2
    labels[void_band(t)] = 255
    return labels


def _palette_png(labels: np.ndarray, path: Path) -> None:
    image = Image.fromarray(labels)
    # Any palette does: the labels are the indices. 255 is DAVIS's void colour.
    colours = [(37 * i % 256, 91 * i % 256, 53 * i % 256) for i in range(255)] + [(224, 224, 192)]
    image.putpalette([c for colour in colours for c in colour])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_davis(root: Path, sequences: tuple[str, ...] = ("bear", "dogs"), frames: int = 6,
                split: tuple[str, ...] = ("dogs",), folder: str = "Annotations/480p"
                ) -> dict[str, dict[int, np.ndarray]]:
    """DAVIS 2017: ``ROOT/FOLDER/SEQ/00000.png`` palette PNGs of :func:`davis_labels`
    and ``ImageSets/2017/val.txt`` listing ``split``. Returns the labels by sequence and
    frame index."""
    written = {}
    for seq in sequences:
        written[seq] = {t: davis_labels(t) for t in range(frames)}
        for t, labels in written[seq].items():
            _palette_png(labels, root / folder / seq / f"{t:05d}.png")
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{s}\n" for s in split))
    return written


def write_davis2016(root: Path, sequence: str = "bear", frames: int = 4
                    ) -> dict[int, np.ndarray]:
    """DAVIS 2016: grey 0 / 255 PNGs of one object (the square). Returns the masks."""
    masks = {t: square(t) for t in range(frames)}
    for t, mask in masks.items():
        path = root / "Annotations" / "480p" / sequence / f"{t:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return masks


def _frame_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*SIZE, 3), 90, np.uint8)).save(path)


def write_fbms(root: Path) -> dict[str, dict[int, np.ndarray]]:
    """FBMS: ``ROOT/SEQ/GroundTruth/`` annotations and, for two sequences, the images.

    - ``cars1``: images ``cars1_01.jpg`` .. ``cars1_08.jpg`` (numbered from 1); grey
      ``_gt.pgm`` annotations of frames 1 and 5, object 255 and object 128 on black,
      and a ``_PROB`` file that is no annotation;
    - ``tennis``: images ``tennis000.jpg`` .. ``tennis005.jpg`` (numbered from 0); the
      annotation of frame 3;
    - ``marple1``: no images; colour annotations ``marple1_001_gt.ppm`` and
      ``marple1_021_gt.png``, red and green objects on white.

    Returns the expected foreground by sequence and frame index.
    """
    expected: dict[str, dict[int, np.ndarray]] = {"cars1": {}, "tennis": {}, "marple1": {}}
    for n in range(1, 9):
        _frame_image(root / "cars1" / f"cars1_{n:02d}.jpg")
    for n in (1, 5):
        grey = np.zeros(SIZE, np.uint8)
        grey[square(n)] = 255
        grey[disc(n)] = 128
        gt = root / "cars1" / "GroundTruth"
        gt.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey).save(gt / f"cars1_{n:02d}_gt.pgm")
        expected["cars1"][n - 1] = square(n) | disc(n)
    Image.fromarray(np.full(SIZE, 200, np.uint8)).save(gt / "cars1_05_gt_PROB.pgm")

    for n in range(6):
        _frame_image(root / "tennis" / f"tennis{n:03d}.jpg")
    (root / "tennis" / "GroundTruth").mkdir()
    grey = np.zeros(SIZE, np.uint8)
    grey[disc(3)] = 255
    Image.fromarray(grey).save(root / "tennis" / "GroundTruth" / "tennis003_gt.pgm")
    expected["tennis"][3] = disc(3)

    (root / "marple1" / "GroundTruth").mkdir(parents=True)
    for n, suffix in ((1, "ppm"), (21, "png")):
        rgb = np.full((*SIZE, 3), 255, np.uint8)
        rgb[square(n % 10)] = (255, 0, 0)
        rgb[disc(n % 10)] = (0, 160, 0)
        Image.fromarray(rgb).save(root / "marple1" / "GroundTruth" / f"marple1_{n:03d}_gt.{suffix}")
        expected["marple1"][n - 1] = square(n % 10) | disc(n % 10)
    return expected


def write_segtrack(root: Path) -> dict[str, dict[int, np.ndarray]]:
    """SegTrack v2: ``GroundTruth/bird/bird_8.png`` .. ``bird_11.png`` (one object,
    names that sort naturally, not as text) and ``GroundTruth/bmx/1/`` and ``bmx/2/``
    (two objects, the second's as white RGB). Returns the expected foregrounds."""
    expected: dict[str, dict[int, np.ndarray]] = {"bird": {}, "bmx": {}}
    for index, n in enumerate(range(8, 12)):
        path = root / "GroundTruth" / "bird" / f"bird_{n}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(square(index).astype(np.uint8) * 255).save(path)
        expected["bird"][index] = square(index)
    for index in range(3):
        name = f"bmx_{6668 + index:05d}.png"
        for obj, mask in (("1", square(index)), ("2", disc(index))):
            path = root / "GroundTruth" / "bmx" / obj / name
            path.parent.mkdir(parents=True, exist_ok=True)
            grey = mask.astype(np.uint8) * 255
            Image.fromarray(grey if obj == "1" else np.repeat(grey[..., None], 3, 2)).save(path)
        expected["bmx"][index] = square(index) | disc(index)
    return expected


def write_predictions(pred_root: Path, name: str, masks: dict[int, np.ndarray]) -> Path:
    """``PRED/NAME/masks/00042.png`` of soft masks in [0, 1] (or bool), written by
    ``fastunlc segment``'s own writer."""
    writer = ResultWriter(pred_root, name)
    for index, mask in masks.items():
        writer.write_mask(index, np.asarray(mask, np.float64))
    return writer.commit()
