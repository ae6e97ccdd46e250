"""Average precision of ranked lists: one class's scores over a set of images, as the
classification benchmarks score them.

Labels follow the VOC devkit's classification lists: 1 positive, -1 negative, 0
ignored (VOC's "difficult"-only images), left out of the ranking altogether. Tied
scores are ranked negatives first (the pessimistic order), so that an AP does not depend
on the order the images come in; a constant score thus gets the lowest AP it can have.
"""

from __future__ import annotations

import numpy as np


def ranked_ap(scores: np.ndarray, labels: np.ndarray, use_07: bool = False) -> float:
    """Average precision of one class.

    Parameters
    ----------
    scores : (n,) array_like
        Higher ranks first.
    labels : (n,) array_like
        1 positive, -1 (or any negative value) negative, 0 ignored.
    use_07 : bool
        False: the mean of the precision at each positive's rank (the area under the
        non-interpolated precision-recall curve; ``sklearn``'s
        ``average_precision_score``, which Krähenbühl et al.'s VOC 2007 classification
        protocol reports). True: VOC 2007's 11-point AP, the mean over recall
        thresholds ``t = 0, 0.1, …, 1`` of the highest precision at recall ≥ t.

    Returns
    -------
    float
        In [0, 1]; NaN when no positive is left.
    """
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have one value per image, got "
                         f"{scores.shape} and {labels.shape}")
    keep = labels != 0
    scores, positive = scores[keep], labels[keep] > 0
    if not positive.any():
        return float("nan")
    order = np.lexsort((positive, -scores))  # by score, falling; ties: negatives first
    hits = positive[order]
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    if not use_07:
        return float(precision[hits].mean())
    recall = true_positives / true_positives[-1]
    return float(np.mean([precision[recall >= t].max() for t in np.linspace(0, 1, 11)]))


def class_aps(scores: np.ndarray, labels: np.ndarray, use_07: bool = False) -> np.ndarray:
    """:func:`ranked_ap` of each column: ``(n, C)`` scores and labels → ``(C,)`` float64
    (NaN for a class without positives)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f"scores and labels must be (n, C) alike, got {scores.shape} and "
                         f"{labels.shape}")
    return np.array([ranked_ap(scores[:, c], labels[:, c], use_07)
                     for c in range(scores.shape[1])])


def one_vs_rest(classes: np.ndarray, count: int) -> np.ndarray:
    """``(n,)`` class indices → ``(n, count)`` int8 labels, 1 for the image's class and -1
    for the others (single-label benchmarks such as Stanford 40 scored per class)."""
    classes = np.asarray(classes)
    out = np.full((len(classes), count), -1, np.int8)
    out[np.arange(len(classes)), classes] = 1
    return out
