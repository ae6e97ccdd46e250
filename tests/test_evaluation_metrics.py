"""VOC detection AP: a ranked list worked out by hand (both AP variants, a difficult
object, a duplicate), and agreement with py-faster-rcnn's ``voc_eval`` re-typed plainly
on random inputs."""

import numpy as np
import pytest

from fastunlc.evaluation.metrics import (
    Detections,
    box_iou,
    evaluate_detections,
    match_detections,
    precision_recall,
    voc_ap,
)
from fastunlc.evaluation.voc import Annotation


def annotation(boxes, labels, difficult) -> Annotation:
    return Annotation("x", (200, 200), np.array(boxes, np.float32).reshape(-1, 4),
                      np.array(labels, np.int64), np.array(difficult, bool))


# Image 0: class 1 at A = (0, 0, 10, 10) and a difficult one at B = (20, 0, 30, 10).
# Image 1: class 1 at C = (0, 0, 10, 10) and D = (50, 50, 60, 60); class 2 at (70, 70, 80, 80).
# npos of class 1 = 3 (A, C, D; B is difficult).
HAND_TRUTH = [annotation([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 1], [False, True]),
              annotation([[0, 0, 10, 10], [50, 50, 60, 60], [70, 70, 80, 80]], [1, 1, 2],
                         [False, False, False])]
# Class 1's detections, ranked by score:
#   0.9 img0 (0,0,10,10)     A                   TP   tp=1 fp=0  rec 1/3 prec 1
#   0.8 img0 (0,0,10,9)      A again (IoU 0.9)   FP   tp=1 fp=1  rec 1/3 prec 1/2
#   0.7 img0 (20,0,30,10)    B, difficult        ignored (counts stay)
#   0.6 img1 (100,...)       nothing             FP   tp=1 fp=2  rec 1/3 prec 1/3
#   0.5 img1 (0,0,10,10)     C                   TP   tp=2 fp=2  rec 2/3 prec 1/2
#   0.3 img1 (50,50,60,60)   D                   TP   tp=3 fp=2  rec 1   prec 3/5
# Class 2: one detection in image 0 over A (a class-1 object): FP; its object is missed.
HAND_DETECTIONS = [
    Detections(np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 0, 30, 10], [0, 0, 10, 10]],
                        float), np.array([0.9, 0.8, 0.7, 0.95]), np.array([1, 1, 1, 2])),
    Detections(np.array([[50, 50, 60, 60], [0, 0, 10, 10], [100, 100, 110, 110]], float),
               np.array([0.3, 0.5, 0.6]), np.array([1, 1, 1])),
]
HAND_RECALL = [1 / 3, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1.0]
HAND_PRECISION = [1.0, 0.5, 0.5, 1 / 3, 0.5, 0.6]
# Area AP: the envelope is 1 up to recall 1/3 and 0.6 after (the 0.6 at recall 1 lifts
# the 1/2 at 2/3): 1/3 · 1 + 1/3 · 0.6 + 1/3 · 0.6 = 0.7333…
HAND_AP_AREA = 1 / 3 + 2 / 3 * 0.6
# 11-point: thresholds 0, 0.1, 0.2, 0.3 are reached at recall 1/3 (precision 1); 0.4 … 1.0
# (7 of them) only at recall 2/3 or 1, where the best precision is 0.6: (4 + 7 · 0.6) / 11.
HAND_AP_07 = (4 + 7 * 0.6) / 11


def test_hand_ranked_list_gives_the_hand_computed_curves_and_aps():
    result = evaluate_detections(HAND_DETECTIONS, HAND_TRUTH, ("a", "b", "c"))
    first, second, third = result.classes
    assert (first.positives, first.detections) == (3, 6)
    np.testing.assert_allclose(first.recall, HAND_RECALL)
    np.testing.assert_allclose(first.precision, HAND_PRECISION)
    assert first.ap_area == pytest.approx(HAND_AP_AREA)
    assert first.ap_voc07 == pytest.approx(HAND_AP_07)
    assert voc_ap(np.array(HAND_RECALL), np.array(HAND_PRECISION), True) == pytest.approx(
        HAND_AP_07)
    assert (second.positives, second.ap_voc07, second.ap_area) == (1, 0.0, 0.0)
    assert third.positives == 0 and np.isnan(third.ap_area)  # no positive: not in the mean
    assert result.map_area == pytest.approx(HAND_AP_AREA / 2)
    assert result.map_voc07 == pytest.approx(HAND_AP_07 / 2)


def test_difficult_objects_neither_count_nor_penalise_and_duplicates_do():
    truth = [(np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float), np.array([False, True]))]
    boxes = np.array([[20, 0, 30, 10], [20, 0, 30, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    tp, fp = match_detections(np.zeros(4, int), np.array([0.9, 0.8, 0.7, 0.6]), boxes, truth)
    # The difficult object is matched twice and ignored both times; the last is a duplicate.
    assert tp.tolist() == [0, 0, 1, 0] and fp.tolist() == [0, 0, 0, 1]
    recall, precision = precision_recall(tp, fp, 1)
    assert recall.tolist() == [0, 0, 1, 1] and precision.tolist() == [0, 0, 1, 0.5]
    assert voc_ap(recall, precision) == 1.0
    assert voc_ap(recall, precision, True) == pytest.approx(1.0)
    # IoU exactly 0.5 (100 / 200) is not a match: voc_eval's threshold is strict.
    tp, fp = match_detections(np.zeros(1, int), np.ones(1), np.array([[0, 0, 10, 20.0]]), truth)
    assert (tp.tolist(), fp.tolist()) == ([0], [1])


def test_iou_uses_end_exclusive_boxes_without_the_plus_one():
    iou = box_iou(np.array([0, 0, 10, 10.0]), np.array([[5, 0, 15, 10.0], [10, 0, 20, 10.0]]))
    np.testing.assert_allclose(iou, [50 / 150, 0.0])  # touching boxes share no pixel


def reference_voc_eval(dets, gts, label, ovthresh=0.5, use_07_metric=False):
    """py-faster-rcnn's voc_eval for one class, on VOC's 1-based inclusive boxes (with
    its +1), re-typed loop by loop; the sort is stable (the devkit's MATLAB sort is)."""
    class_recs = []
    npos = 0
    for boxes, labels, difficult in gts:
        keep = labels == label
        class_recs.append({"bbox": boxes[keep], "difficult": difficult[keep],
                           "det": [False] * int(keep.sum())})
        npos += int((~difficult[keep]).sum())
    image_ids, confidence, bb_list = [], [], []
    for i, (boxes, scores, labels) in enumerate(dets):
        for box, score, lab in zip(boxes, scores, labels, strict=True):
            if lab == label:
                image_ids.append(i)
                confidence.append(score)
                bb_list.append(box)
    confidence = np.array(confidence)
    BB = np.array(bb_list).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence, kind="stable")
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                   + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            if np.sum(rec >= t) == 0:
                p = 0
            else:
                p = np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def random_case(rng, images=10, classes=3):
    """Integer VOC boxes (1-based inclusive) for the reference and the same boxes end
    exclusive (``x0 = xmin - 1``) for evaluate_detections; detections are jittered copies
    of the objects (some duplicated) and random boxes."""
    gts, dets, annotations, detections = [], [], [], []
    for _ in range(images):
        m = int(rng.integers(0, 5))
        mins = rng.integers(1, 80, (m, 2))
        boxes = np.concatenate([mins, mins + rng.integers(4, 40, (m, 2))], 1).astype(float)
        labels = rng.integers(1, classes + 1, m)
        difficult = rng.random(m) < 0.2
        copies = rng.integers(0, 3, m)
        jittered = np.repeat(boxes, copies, 0) + rng.integers(-4, 5, (int(copies.sum()), 4))
        jittered[:, 2:] = np.maximum(jittered[:, 2:], jittered[:, :2] + 1)
        noise_mins = rng.integers(1, 100, (int(rng.integers(0, 4)), 2))
        noise = np.concatenate([noise_mins, noise_mins + rng.integers(4, 40, noise_mins.shape)],
                               1)
        det_boxes = np.concatenate([jittered, noise]).astype(float)
        det_labels = np.concatenate([np.repeat(labels, copies),
                                     rng.integers(1, classes + 1, len(noise))])
        det_labels = np.where(rng.random(len(det_labels)) < 0.1,
                              rng.integers(1, classes + 1, len(det_labels)), det_labels)
        scores = rng.random(len(det_boxes))
        gts.append((boxes, labels, difficult))
        dets.append((det_boxes, scores, det_labels))
        exclusive = boxes - [1, 1, 0, 0]
        annotations.append(annotation(exclusive, labels, difficult))
        detections.append(Detections(det_boxes - [1, 1, 0, 0], scores, det_labels))
    return gts, dets, annotations, detections


@pytest.mark.parametrize("seed", range(6))
def test_evaluate_detections_agrees_with_voc_eval(seed):
    rng = np.random.default_rng(seed)
    gts, dets, annotations, detections = random_case(rng)
    result = evaluate_detections(detections, annotations, ("a", "b", "c"))
    for k, scored in enumerate(result.classes):
        if scored.positives == 0:
            assert np.isnan(scored.ap_area) and np.isnan(scored.ap_voc07)
            continue
        assert scored.ap_area == pytest.approx(reference_voc_eval(dets, gts, k + 1), abs=1e-12)
        assert scored.ap_voc07 == pytest.approx(
            reference_voc_eval(dets, gts, k + 1, use_07_metric=True), abs=1e-12)
    assert 0 < result.map_area < 1  # the cases hold both hits and misses
