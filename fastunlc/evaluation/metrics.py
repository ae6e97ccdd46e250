"""PASCAL VOC detection AP, as the VOC devkit and py-faster-rcnn's ``voc_eval`` compute it.

Per class, every detection of the test set is ranked by score (descending; ties keep
their input order, as the devkit's stable MATLAB ``sort`` does) and, in that order,
matched to the ground-truth box of its image that overlaps it most (IoU, the first such
box on ties):

* IoU above the threshold (0.5) with a box not matched yet: a true positive, and the
  box is taken;
* IoU above the threshold with a box taken already: a false positive (a duplicate),
  even when another box would have matched;
* IoU above the threshold with a *difficult* box: ignored (neither true nor false
  positive), and the box may be matched again;
* otherwise: a false positive.

Recall is the true positives over the non-difficult boxes of the class (``npos``);
precision is the true positives over the detections counted so far. AP is then either
VOC 2007's 11-point interpolated mean (``use_07_metric``) or, from VOC 2010 on, the area
under the monotone envelope of the precision-recall curve.

Boxes are ``x0, y0, x1, y1`` floats with end-exclusive ``x1, y1`` (see :mod:`.voc`), so
areas are ``(x1 - x0) · (y1 - y0)`` with no ``+1``: the devkit's ``+1`` on its 1-based
inclusive pixel coordinates gives the same numbers for its boxes (``x0 = xmin - 1``,
``x1 = xmax``).

Two details follow ``voc_eval`` where the MATLAB devkit differs at exact ties only: a
match needs IoU strictly above the threshold (the devkit: at least), and the 11 recall
thresholds are ``np.arange(0, 1.1, 0.1)`` (whose 0.30000000000000004 a recall of exactly
0.3 does not reach).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np


class Detections(NamedTuple):
    """One image's detections.

    Attributes
    ----------
    boxes : (n, 4) ndarray
        float ``x0, y0, x1, y1`` in the image's pixels, end exclusive.
    scores : (n,) ndarray
        float confidences (higher ranks first).
    labels : (n,) ndarray
        int class labels, 1-based (label ``k + 1`` is ``classes[k]``).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class GroundTruth(Protocol):
    """What :func:`evaluate_detections` reads of an image's objects (a
    :class:`.voc.Annotation` has it): ``(m, 4)`` boxes as above, ``(m,)`` 1-based
    labels and ``(m,)`` bool difficult flags."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


@dataclass(frozen=True)
class ClassAP:
    """One class's result.

    Attributes
    ----------
    name : str
    positives : int
        Non-difficult ground-truth boxes (``npos``).
    detections : int
    ap_voc07, ap_area : float
        The 11-point and the area AP in [0, 1]; NaN when the class has no positive.
    recall, precision : (detections,) ndarray
        float64 curves over the ranked detections (recall NaN without positives).
    """

    name: str
    positives: int
    detections: int
    ap_voc07: float
    ap_area: float
    recall: np.ndarray
    precision: np.ndarray


@dataclass(frozen=True)
class DetectionAP:
    """Per-class APs and their means over the classes that have positives."""

    classes: tuple[ClassAP, ...]
    map_voc07: float
    map_area: float


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """AP from a ranked list's recall and precision, ``(n,)`` float arrays in [0, 1].

    ``use_07_metric``: the mean over the recall thresholds 0, 0.1, …, 1 of the highest
    precision at a recall at least the threshold (0 where none reaches it), VOC 2007's.
    Otherwise the VOC 2010+ AP: the area under the precision envelope (precision made
    non-increasing in recall), summed over the points where recall changes.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for threshold in np.arange(0.0, 1.1, 0.1):  # voc_eval's thresholds, bit for bit
            reached = recall >= threshold
            ap += (precision[reached].max() if reached.any() else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the envelope: best precision to the right
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(m,)`` IoU of one ``(4,)`` box with ``(m, 4)`` boxes, end-exclusive coordinates."""
    width = np.maximum(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0.0)
    height = np.maximum(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0.0)
    inter = width * height
    union = ((box[2] - box[0]) * (box[3] - box[1])
             + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter)
    return inter / union


def match_detections(image: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
                     truth: Sequence[tuple[np.ndarray, np.ndarray]],
                     iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """True- and false-positive flags of one class's detections, in ranked order.

    Parameters
    ----------
    image : (n,) int ndarray
        Index into ``truth`` of each detection's image.
    scores : (n,) float ndarray
    boxes : (n, 4) float ndarray
    truth : sequence of ((m_i, 4) float ndarray, (m_i,) bool ndarray)
        Per image, the class's ground-truth boxes and their difficult flags.

    Returns
    -------
    tp, fp : (n,) float64 ndarray
        0/1 per detection sorted by descending score (stable); a detection matched to a
        difficult box has both 0.
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    taken = [np.zeros(len(b), bool) for b, _ in truth]
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for rank, d in enumerate(order):
        gt_boxes, difficult = truth[image[d]]
        if len(gt_boxes) == 0:
            fp[rank] = 1.0
            continue
        overlaps = box_iou(np.asarray(boxes[d], np.float64), np.asarray(gt_boxes, np.float64))
        best = int(np.argmax(overlaps))
        if overlaps[best] > iou_threshold:
            if difficult[best]:
                continue
            if taken[image[d]][best]:
                fp[rank] = 1.0
            else:
                tp[rank] = 1.0
                taken[image[d]][best] = True
        else:
            fp[rank] = 1.0
    return tp, fp


def precision_recall(tp: np.ndarray, fp: np.ndarray, positives: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, precision)``, ``(n,)`` float64 each, from ranked ``tp``/``fp`` flags and
    the number of positives (recall NaN when there is none; precision 0 before the first
    counted detection, as ``voc_eval``'s ``eps`` floor gives)."""
    tp = np.cumsum(tp)
    fp = np.cumsum(fp)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / float(positives)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return recall, precision


def evaluate_detections(detections: Sequence[Detections], annotations: Sequence[GroundTruth],
                        classes: Sequence[str], iou_threshold: float = 0.5) -> DetectionAP:
    """Per-class AP (both variants) and mAP of ``detections`` against ``annotations``.

    Parameters
    ----------
    detections : sequence of Detections
        One per image, in the order of ``annotations``.
    annotations : sequence of GroundTruth
        The test images' objects (difficult ones neither count as positives nor are
        penalised when detected).
    classes : sequence of str
        Class names; label ``k + 1`` is ``classes[k]``.
    iou_threshold : float
        A match needs IoU above this.

    Returns
    -------
    DetectionAP
        The means are over the classes with at least one positive (a VOC test set has
        positives of all 20).
    """
    if len(detections) != len(annotations):
        raise ValueError(f"{len(detections)} detection lists for {len(annotations)} images")
    if not annotations:
        raise ValueError("no image to evaluate")
    results = []
    for k, name in enumerate(classes):
        label = k + 1
        truth = [(np.asarray(a.boxes)[np.asarray(a.labels) == label],
                  np.asarray(a.difficult, bool)[np.asarray(a.labels) == label])
                 for a in annotations]
        positives = int(sum((~difficult).sum() for _, difficult in truth))
        picks = [np.asarray(d.labels) == label for d in detections]
        image = np.concatenate([np.full(int(p.sum()), i) for i, p in enumerate(picks)]
                               ).astype(np.int64)
        scores = np.concatenate([np.asarray(d.scores, np.float64)[p]
                                 for d, p in zip(detections, picks, strict=True)])
        boxes = np.concatenate([np.asarray(d.boxes, np.float64).reshape(-1, 4)[p]
                                for d, p in zip(detections, picks, strict=True)])
        tp, fp = match_detections(image, scores, boxes, truth, iou_threshold)
        recall, precision = precision_recall(tp, fp, positives)
        if positives:
            ap07, area = voc_ap(recall, precision, True), voc_ap(recall, precision, False)
        else:
            ap07 = area = float("nan")
        results.append(ClassAP(name, positives, len(scores), ap07, area, recall, precision))
    scored = [r for r in results if r.positives]
    mean07 = float(np.mean([r.ap_voc07 for r in scored])) if scored else float("nan")
    mean_area = float(np.mean([r.ap_area for r in scored])) if scored else float("nan")
    return DetectionAP(tuple(results), mean07, mean_area)
