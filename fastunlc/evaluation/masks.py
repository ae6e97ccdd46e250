"""Mask quality against human masks: J (region similarity) and F (boundary measure),
computed as the DAVIS 2017 toolkit computes them (paper, section 5).

Predictions are a folder in ``fastunlc segment``'s layout, ``PRED/SEQ/masks/00042.png``
(8-bit grey, ``round(255 p)``; foreground is ``value / 255 > threshold``), from uNLC or
from the ConvNet. Human masks are read from the datasets' own layouts:

========  ===============================================  ==================================
layout    files                                            frame index, foreground
========  ===============================================  ==================================
davis     ``ROOT/Annotations_unsupervised/480p/SEQ/*.png``  the file's stem (``00042.png`` is
          (else ``Annotations/480p``, then the             frame 42); palette PNGs (DAVIS
          ``Full-Resolution`` folders)                     2017): any label but 0 and 255,
                                                           255 is void; DAVIS 2016's 0 / 255
                                                           PNGs: any non-zero pixel
fbms      ``ROOT/SEQ/GroundTruth/*_gt.pgm|ppm|png``         the position, in ``segment``'s
                                                           order, of the image in ``ROOT/SEQ``
                                                           with the file's number
                                                           (``cars1_03_gt.pgm`` → the image
                                                           ``cars1_03.jpg``); ``number - 1``
                                                           when ``ROOT/SEQ`` holds no images
                                                           (FBMS numbers frames from 1);
                                                           any colour but the background's
segtrack  ``ROOT/GroundTruth/SEQ/*.png`` or                the position in natural order of
          ``ROOT/GroundTruth/SEQ/OBJ/*.png``               the file name; grey > 127 in any
                                                           object's folder
========  ===============================================  ==================================

Multi-object annotations are merged into one foreground, since uNLC predicts one; so
the toolkit's per-object averages become per-sequence ones. The DAVIS folder order
puts ``Annotations_unsupervised`` first because this is the toolkit's unsupervised
task: its annotations, all annotated frames (the toolkit drops the first and last
frame only in the semi-supervised task, where the first is given: ``skip_ends``), and
void pixels (label 255) left out of both measures (``void="exclude"``; ``"background"``
counts them as background, as its semi-supervised task does). FBMS colours each region
(grey levels, or RGB in ``.ppm``) and reserves no colour for the background
(conversion scripts in use assume black in ``.pgm`` files and white in ``.ppm`` ones);
so the background is the colour most frequent along the borders of the sequence's
annotated frames. ``*PROB*`` files (probability
maps) are not annotations.

A ground-truth frame without a predicted mask counts as an empty prediction
(``missing_frames``): ``segment`` skips shots shorter than ``min_shot`` and subsamples
longer ones than ``max_shot``, and the frames it did not process have no masks. A
prediction of another size than its human mask is resized to it (nearest neighbour,
``resized_frames``).

References
----------
DAVIS 2017 evaluation toolkit, https://github.com/davisvideochallenge/davis2017-evaluation:
``davis2017/metrics.py`` (``db_eval_iou``, ``db_eval_boundary``, ``f_measure``,
``_seg2bmap``), ``davis2017/utils.py`` (``db_statistics``) and ``davis2017/evaluation.py``
(which frames each task evaluates). Reimplemented here, not copied.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from PIL import Image
from skimage.morphology import disk

from ..errors import InputError
from ..video import IMAGE_EXTENSIONS, _natural_key  # segment's own frame order

LAYOUTS = ("davis", "fbms", "segtrack")
VOID_MODES = ("exclude", "background")
DAVIS_ANNOTATIONS = ("Annotations_unsupervised/480p", "Annotations/480p",
                     "Annotations_unsupervised/Full-Resolution", "Annotations/Full-Resolution")
"""DAVIS annotation folders, in the order they are looked for."""
DAVIS_VOID = 255
FBMS_EXTENSIONS = (".ppm", ".png", ".pgm")
"""FBMS annotation files; when one frame has several, the first kind here is read."""
SEGTRACK_FOREGROUND = 127
"""SegTrack v2's masks are black and white: foreground is grey > 127."""

EXPECTED = ("not a folder of human masks in a known layout: expected DAVIS "
            "(Annotations/480p/SEQ/00000.png), FBMS (SEQ/GroundTruth/SEQ_01_gt.pgm) or "
            "SegTrack v2 (GroundTruth/SEQ/*.png)")


class HumanMask(NamedTuple):
    """One annotated frame: ``foreground`` bool ``(h, w)``, the union of its objects, and
    ``void`` bool ``(h, w)`` (DAVIS's label 255, never foreground) or None."""

    foreground: np.ndarray
    void: np.ndarray | None


class Statistics(NamedTuple):
    """Per-sequence summary of per-frame J or F values (``db_statistics``)."""

    mean: float
    recall: float
    """Fraction of frames with a value above 0.5."""
    decay: float
    """Mean of the first quarter of the frames minus the mean of the last quarter."""


# -- measures ---------------------------------------------------------------------------

def _masks(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"pred and gt must be (h, w) masks of one size, got {pred.shape} "
                         f"and {gt.shape}")
    if void is not None:
        void = np.asarray(void, bool)
        if void.shape != gt.shape:
            raise ValueError(f"void must be a {gt.shape} mask like gt, got {void.shape}")
    return pred, gt, void


def region_similarity(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None
                      ) -> float:
    """J: intersection over union of two masks (``db_eval_iou``).

    Parameters
    ----------
    pred, gt : (h, w) bool ndarray
        Predicted and human foreground.
    void : (h, w) bool ndarray, optional
        Pixels left out of both the intersection and the union.

    Returns
    -------
    float in [0, 1]; 1 when both masks are empty (outside ``void``).
    """
    pred, gt, void = _masks(pred, gt, void)
    keep = np.ones_like(gt) if void is None else ~void
    union = np.count_nonzero((pred | gt) & keep)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt & keep) / union


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary map of a mask, as the toolkit's ``_seg2bmap`` at the mask's own size.

    A pixel is on the boundary when it differs from its right, bottom or bottom-right
    neighbour, among those inside the image: so the last column is compared with the
    pixel below only, the last row with the pixel to the right only, and a mask edge
    lying on the image border is no boundary. Boundaries fall half a pixel towards the
    origin from the true edge.

    Parameters
    ----------
    mask : (h, w) bool ndarray

    Returns
    -------
    (h, w) bool ndarray
    """
    mask = np.asarray(mask, bool)
    bmap = np.zeros_like(mask)
    bmap[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    bmap[:-1, :] |= mask[:-1, :] != mask[1:, :]
    bmap[:-1, :-1] |= mask[:-1, :-1] != mask[1:, 1:]
    return bmap


def boundary_tolerance(shape: tuple[int, int], bound_th: float = 0.008) -> int:
    """Matching radius in pixels: ``ceil(bound_th * diagonal)`` for ``bound_th < 1``,
    else ``bound_th`` itself (an integer number of pixels)."""
    if not bound_th > 0:
        raise ValueError(f"bound_th must be > 0, got {bound_th}")
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"bound_th >= 1 is a radius in pixels and must be an integer, "
                             f"got {bound_th}")
        return int(bound_th)
    h, w = shape
    return math.ceil(bound_th * math.sqrt(h * h + w * w))


def boundary_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008,
                     void: np.ndarray | None = None) -> float:
    """F: the boundary F-measure of two masks (``db_eval_boundary`` / ``f_measure``).

    Boundaries come from :func:`seg2bmap`; a boundary pixel of one mask is matched
    when the other's boundary passes within :func:`boundary_tolerance` pixels of it
    (dilation with ``skimage.morphology.disk``). Precision is the matched fraction of
    the predicted boundary, recall that of the human one.

    Parameters
    ----------
    pred, gt : (h, w) bool ndarray
        Predicted and human foreground.
    bound_th : float
        Tolerance as a fraction of the image diagonal (< 1) or in pixels (>= 1).
    void : (h, w) bool ndarray, optional
        Pixels removed from both masks before their boundaries are taken.

    Returns
    -------
    float in [0, 1]: 1 when neither mask has a boundary, 0 when only one has.
    """
    pred, gt, void = _masks(pred, gt, void)
    radius = boundary_tolerance(gt.shape, bound_th)
    if void is not None:
        pred, gt = pred & ~void, gt & ~void
    pred_bmap, gt_bmap = seg2bmap(pred), seg2bmap(gt)
    n_pred, n_gt = np.count_nonzero(pred_bmap), np.count_nonzero(gt_bmap)
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    kernel = disk(radius)
    near_pred = cv2.dilate(pred_bmap.view(np.uint8), kernel).view(bool)
    near_gt = cv2.dilate(gt_bmap.view(np.uint8), kernel).view(bool)
    precision = np.count_nonzero(pred_bmap & near_gt) / n_pred
    recall = np.count_nonzero(gt_bmap & near_pred) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def statistics(values: Sequence[float]) -> Statistics:
    """Mean, recall and decay of one sequence's per-frame values (``db_statistics``).

    Decay splits the frames into 4 bins at ``round(linspace(1, n, 5)) - 1`` (halves
    rounded up), each bin running from its start to the next one's, inclusive, and
    subtracts the last bin's mean from the first's. (The toolkit stores those bounds as
    uint8, which wraps past 255 frames; they are plain integers here.)

    Parameters
    ----------
    values : sequence of float, in frame order, at least one.
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"statistics needs a non-empty list of values, got shape {v.shape}")
    bounds = np.round(np.linspace(1, v.size, 5) + 1e-10).astype(np.int64) - 1
    first, last = v[bounds[0]:bounds[1] + 1], v[bounds[3]:bounds[4] + 1]
    return Statistics(float(v.mean()), float(np.mean(v > 0.5)),
                      float(first.mean() - last.mean()))


# -- human masks ------------------------------------------------------------------------

def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural_key(p.name))


def _images(folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files of ``folder`` in natural order (``segment``'s frame order)."""
    extensions = tuple(extensions)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in extensions),
                  key=lambda p: _natural_key(p.name))


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as an image ({err})") from None
    return image


def _rgb(path: Path) -> np.ndarray:
    """``(h, w, 3)`` uint8 colours of any image (grey repeated, palette looked up)."""
    with _open(path) as image:
        return np.asarray(image.convert("RGB"))


def davis_annotations(root: str | Path) -> Path:
    """The first of :data:`DAVIS_ANNOTATIONS` that ``root`` holds."""
    root = Path(root)
    for name in DAVIS_ANNOTATIONS:
        if (root / name).is_dir():
            return root / name
    raise InputError(root, f"no {' or '.join(DAVIS_ANNOTATIONS[:2])} folder (DAVIS layout)")


def detect_layout(root: str | Path) -> str:
    """``"davis"``, ``"fbms"`` or ``"segtrack"``: which layout the folder ``root`` has.

    Raises
    ------
    InputError
        ``root`` is no folder, or fits none of the layouts.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder")
    if any((root / name).is_dir() for name in DAVIS_ANNOTATIONS):
        return "davis"
    if (root / "GroundTruth").is_dir() and _subfolders(root / "GroundTruth"):
        return "segtrack"
    if any((seq / "GroundTruth").is_dir() for seq in _subfolders(root)):
        return "fbms"
    raise InputError(root, EXPECTED)


def _split_names(root: Path, split: str) -> list[str]:
    """Sequence names of a DAVIS ``ImageSets`` list: ``split`` is ``NAME`` (``2017/NAME``)
    or ``YEAR/NAME``; lines are names, or DAVIS 2016's frame paths."""
    path = root / "ImageSets" / (split if "/" in split else f"2017/{split}")
    path = path.with_name(path.name + ".txt")
    if not path.is_file():
        raise InputError(path, "no such split list (DAVIS's ImageSets/YEAR/NAME.txt)")
    names: dict[str, None] = {}  # ordered, without repeats
    for line in path.read_text().splitlines():
        if line.strip():
            token = line.split()[0]  # "bear", or "/JPEGImages/480p/bear/00000.jpg ..."
            names[Path(token).parent.name if "/" in token else token] = None
    return list(names)


def list_sequences(root: str | Path, layout: str, split: str | None = None) -> list[str]:
    """Names of the annotated sequences in ``root`` (natural order), or those of a DAVIS
    ``split`` (:func:`_split_names`) in its order.

    Raises
    ------
    InputError
        ``root`` does not have the layout, or the split names a missing sequence.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if split is not None and layout != "davis":
        raise InputError(root, f"--split selects DAVIS sequences; this is a {layout} folder")
    if not root.is_dir():
        raise InputError(root, "no such folder")
    if layout == "davis":
        folder = davis_annotations(root)
        names = [p.name for p in _subfolders(folder)]
        if split is not None:
            wanted = _split_names(root, split)
            absent = [n for n in wanted if n not in names]
            if absent:
                raise InputError(folder, f"split {split} names {len(absent)} sequences without "
                                         f"annotations here, first {absent[0]}")
            names = wanted
    elif layout == "fbms":
        names = [p.name for p in _subfolders(root) if (p / "GroundTruth").is_dir()]
        if not names:
            raise InputError(root, "no SEQ/GroundTruth/ folder (FBMS layout)")
    else:
        if not (root / "GroundTruth").is_dir():
            raise InputError(root, "no GroundTruth/SEQ/ folder (SegTrack v2 layout)")
        names = [p.name for p in _subfolders(root / "GroundTruth")]
    if not names:
        raise InputError(root, f"holds no annotated sequences ({layout} layout)")
    return names


def read_davis(root: str | Path, sequence: str) -> dict[int, HumanMask]:
    """A DAVIS sequence's annotations: frame index (the file's stem) → :class:`HumanMask`.

    Palette PNGs (DAVIS 2017) hold labels: 0 background, 1..k objects, 255 void. A
    sequence whose files hold no label but 0 and 255 is DAVIS 2016's one object (its
    PNGs are 0 / 255), as is any grey PNG: there every non-zero pixel is foreground.
    """
    folder = davis_annotations(root) / sequence
    files = _images(folder, (".png",))
    if not files:
        raise InputError(folder, "holds no annotation PNGs (DAVIS layout)")
    labels, palette = {}, True
    for path in files:
        if not path.stem.isdigit():
            raise InputError(path, "DAVIS annotations are named by frame number (00000.png)")
        with _open(path) as image:
            labels[int(path.stem)] = np.asarray(image)
            palette &= image.mode == "P"
    objects = palette and any(np.any((a != 0) & (a != DAVIS_VOID)) for a in labels.values())
    masks = {}
    for index, a in sorted(labels.items()):
        if objects:
            void = a == DAVIS_VOID
            masks[index] = HumanMask((a != 0) & ~void, void if void.any() else None)
        else:
            masks[index] = HumanMask((a.max(axis=2) if a.ndim == 3 else a) > 0, None)
    return masks


def _number(path: Path) -> int:
    """The last integer in a file's stem, after dropping FBMS's ``_gt`` suffix."""
    digits = re.findall(r"\d+", re.sub(r"_gt$", "", path.stem, flags=re.IGNORECASE))
    if not digits:
        raise InputError(path, "no frame number in the file name (FBMS names frames "
                               "like cars1_01_gt.pgm)")
    return int(digits[-1])


def read_fbms(root: str | Path, sequence: str) -> dict[int, HumanMask]:
    """An FBMS sequence's annotations: frame index → :class:`HumanMask`.

    The frame index is the position, in ``segment``'s natural order, of the image in
    ``ROOT/SEQ`` whose number is the annotation's (``cars1_03_gt.pgm`` ↔
    ``cars1_03.jpg``); ``number - 1`` when the folder holds no images. Foreground is
    every pixel not of the background colour: the colour most frequent along the
    borders of the sequence's annotated frames.
    """
    folder = Path(root) / sequence
    files: dict[int, Path] = {}
    for path in sorted(_images(folder / "GroundTruth", FBMS_EXTENSIONS),
                       key=lambda p: FBMS_EXTENSIONS.index(p.suffix.lower())):
        if "prob" not in path.name.lower():
            files.setdefault(_number(path), path)
    if not files:
        raise InputError(folder / "GroundTruth", "holds no annotations (FBMS layout: "
                                                 "SEQ_01_gt.pgm, .ppm or .png)")
    positions = {}
    for position, image in enumerate(_images(folder)):
        if re.search(r"\d", image.stem):
            positions.setdefault(_number(image), position)
    if positions:
        absent = sorted(set(files) - set(positions))
        if absent:
            raise InputError(files[absent[0]], f"no image numbered {absent[0]} in {folder}")
    # One int per colour, so that grey and colour files compare alike.
    codes = {}
    for number, path in files.items():
        rgb = _rgb(path).astype(np.int32)
        codes[positions[number] if positions else number - 1] = (
            (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    border = np.concatenate([np.concatenate([c[0], c[-1], c[:, 0], c[:, -1]])
                             for c in codes.values()])
    colours, counts = np.unique(border, return_counts=True)
    background = colours[np.argmax(counts)]
    return {index: HumanMask(code != background, None) for index, code in sorted(codes.items())}


def read_segtrack(root: str | Path, sequence: str) -> dict[int, HumanMask]:
    """A SegTrack v2 sequence's annotations: frame index → :class:`HumanMask`.

    ``GroundTruth/SEQ/*.png`` holds one object; ``GroundTruth/SEQ/OBJ/*.png`` one per
    object folder, merged by file name. Frames are the file names in natural order
    (SegTrack annotates every frame), numbered from 0; foreground is grey > 127.
    """
    folder = Path(root) / "GroundTruth" / sequence
    objects = [p for p in _subfolders(folder) if _images(p)] or [folder]
    frames: dict[str, list[Path]] = {}
    for obj in objects:
        for path in _images(obj):
            frames.setdefault(path.stem, []).append(path)
    if not frames:
        raise InputError(folder, "holds no annotation images (SegTrack v2 layout)")
    masks = {}
    for index, stem in enumerate(sorted(frames, key=_natural_key)):
        union = None
        for path in frames[stem]:
            fg = _rgb(path).max(axis=2) > SEGTRACK_FOREGROUND
            if union is not None and union.shape != fg.shape:
                raise InputError(path, f"size {fg.shape[1]}x{fg.shape[0]} differs from the "
                                       f"other objects' {union.shape[1]}x{union.shape[0]}")
            union = fg if union is None else union | fg
        masks[index] = HumanMask(union, None)
    return masks


READERS: dict[str, Callable[[str | Path, str], dict[int, HumanMask]]] = {
    "davis": read_davis, "fbms": read_fbms, "segtrack": read_segtrack}


# -- predictions ------------------------------------------------------------------------

def prediction_files(pred_root: str | Path, sequence: str) -> dict[int, Path] | None:
    """``PRED/SEQ/masks/NNNNN.png`` by frame index, or None without a ``masks/`` folder."""
    folder = Path(pred_root) / sequence / "masks"
    if not folder.is_dir():
        return None
    return {int(p.stem): p for p in folder.glob("*.png") if p.stem.isdigit()}


def read_prediction(path: str | Path, threshold: float, size: tuple[int, int]
                    ) -> tuple[np.ndarray, bool]:
    """A predicted mask, ``value / 255 > threshold``, at ``size`` ``(h, w)``.

    Returns the bool ``(h, w)`` foreground and whether it had to be resized (nearest
    neighbour) to ``size``.
    """
    grey = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if grey is None:
        raise InputError(path, "cannot be read as an image")
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise InputError(path, "not an 8-bit grey mask (fastunlc segment's masks/*.png)")
    resized = grey.shape != tuple(size)
    if resized:
        grey = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return (np.arange(256) / 255.0 > threshold)[grey], resized


# -- evaluation -------------------------------------------------------------------------

def evaluate_masks(pred_root: str | Path, gt_root: str | Path, layout: str | None = None,
                   threshold: float = 0.7, bound_th: float = 0.008, *,
                   sequences: Sequence[str] | None = None, split: str | None = None,
                   skip_ends: bool = False, void: str = "exclude",
                   on_sequence: Callable[[dict[str, Any], int], None] | None = None
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """J and F of the predictions in ``pred_root`` against the human masks in ``gt_root``.

    Parameters
    ----------
    pred_root : path
        ``fastunlc segment``'s output folder: ``SEQ/masks/00042.png``.
    gt_root : path
        Human masks in one of :data:`LAYOUTS` (see the module notes).
    layout : str, optional
        ``gt_root``'s layout; found by :func:`detect_layout` when None.
    threshold : float in [0, 1)
        A predicted pixel is foreground when ``value / 255 > threshold``.
    bound_th : float
        F's tolerance (:func:`boundary_tolerance`).
    sequences : sequence of str, optional
        Evaluate only these (each must be annotated).
    split : str, optional
        DAVIS only: the sequences of ``ImageSets/2017/SPLIT.txt`` (or ``YEAR/SPLIT``).
    skip_ends : bool
        Leave out each sequence's first and last annotated frame (the toolkit's
        semi-supervised task); False evaluates all, as its unsupervised task does.
    void : {"exclude", "background"}
        DAVIS's void pixels are left out of J and F, or count as background.
    on_sequence : callable, optional
        Called after each sequence with its row and the number of sequences evaluated.

    Returns
    -------
    metrics : dict
        ``J&F_mean``, ``J_mean``, ``J_recall``, ``J_decay``, ``F_mean``, ``F_recall``,
        ``F_decay`` (each the mean over sequences of the per-sequence value, as DAVIS
        averages), ``sequences``, ``frames``, ``missing_frames`` (annotated frames without
        a prediction, scored as empty masks), ``missing_sequences`` (annotated sequences
        without ``PRED/SEQ/masks/``, not scored), ``resized_frames``, ``void_frames``
        (frames with void pixels) and ``layout``.
    rows : list of dict
        One per sequence: ``sequence``, ``frames``, ``J_mean``, ``J_recall``, ``J_decay``,
        ``F_mean``, ``F_recall``, ``F_decay``, ``missing_frames``.

    Raises
    ------
    InputError
        A folder is missing or in no known layout, a named sequence is not annotated,
        or no annotated sequence has predictions.
    """
    pred_root, gt_root = Path(pred_root), Path(gt_root)
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    boundary_tolerance((1, 1), bound_th)  # checks bound_th before any file is read
    if void not in VOID_MODES:
        raise ValueError(f"void must be one of {', '.join(VOID_MODES)}, got {void!r}")
    if not pred_root.is_dir():
        raise InputError(pred_root, "no such folder (expected fastunlc segment's output, "
                                    "SEQ/masks/00000.png)")
    layout = detect_layout(gt_root) if layout is None else layout
    names = list_sequences(gt_root, layout, split)
    if sequences:
        unknown = [n for n in sequences if n not in names]
        if unknown:
            raise InputError(gt_root, f"no annotated sequence {unknown[0]} ({layout} layout)")
        chosen = set(sequences)
        names = [n for n in names if n in chosen]
    predicted = {n: prediction_files(pred_root, n) for n in names}
    evaluated = [n for n in names if predicted[n] is not None]
    if not evaluated:
        raise InputError(pred_root, f"no SEQ/masks/ folder for any of the {len(names)} "
                                    f"annotated sequences (such as {names[0]}/masks/)")
    reader = READERS[layout]
    rows, missing, resized, void_frames = [], 0, 0, 0
    for name in evaluated:
        human = reader(gt_root, name)
        frames = sorted(human)
        if skip_ends:
            if len(frames) < 3:
                raise InputError(gt_root / name, f"has {len(frames)} annotated frames; "
                                                 "skip_ends needs 3 or more")
            frames = frames[1:-1]
        j_values, f_values, seq_missing = [], [], 0
        for index in frames:
            gt = human[index]
            path = predicted[name].get(index)
            if path is None:
                pred = np.zeros_like(gt.foreground)
                seq_missing += 1
            else:
                pred, was_resized = read_prediction(path, threshold, gt.foreground.shape)
                resized += was_resized
            void_frames += gt.void is not None
            excluded = gt.void if void == "exclude" else None
            j_values.append(region_similarity(pred, gt.foreground, excluded))
            f_values.append(boundary_measure(pred, gt.foreground, bound_th, excluded))
        j, f = statistics(j_values), statistics(f_values)
        row = {"sequence": name, "frames": len(frames),
               "J_mean": j.mean, "J_recall": j.recall, "J_decay": j.decay,
               "F_mean": f.mean, "F_recall": f.recall, "F_decay": f.decay,
               "missing_frames": seq_missing}
        rows.append(row)
        missing += seq_missing
        if on_sequence is not None:
            on_sequence(row, len(evaluated))

    def average(key: str) -> float:
        return float(np.mean([row[key] for row in rows]))

    metrics = {"J&F_mean": (average("J_mean") + average("F_mean")) / 2,
               **{key: average(key) for key in ("J_mean", "J_recall", "J_decay",
                                                "F_mean", "F_recall", "F_decay")},
               "sequences": len(rows), "frames": sum(row["frames"] for row in rows),
               "missing_frames": missing,
               "missing_sequences": [n for n in names if predicted[n] is None],
               "resized_frames": resized, "void_frames": void_frames, "layout": layout}
    return metrics, rows
