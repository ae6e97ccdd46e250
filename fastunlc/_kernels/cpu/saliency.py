"""Dominant-motion test and per-pair deviation maps, compiled over all pairs of a shot."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .histograms import bin_index

STATIC = 1
TRANSLATING = 2
NOT_DOMINANT = 0


@njit(cache=True, parallel=True)
def pair_deviations(
    flows: np.ndarray,
    static_magnitude: float,
    dominant_direction: float,
    direction_edges: np.ndarray,
    deviation: np.ndarray,
    kind: np.ndarray,
) -> None:
    """Classify each flow field and write its (unsmoothed) deviation map.

    Parameters
    ----------
    flows : (P, h, w, 2) float32
        Flow fields (u, v) in pixels.
    static_magnitude : float
        Median magnitude below which the pair is "static".
    dominant_direction : float
        Share of the magnitude-weighted direction histogram above which the pair
        is "translating".
    direction_edges : (bins + 1,) float64
        ``np.linspace(-pi, pi, bins + 1)``, the histogram's edges.
    deviation : (P, h, w) float64
        Output: ``m**2`` for static pairs, the squared wrapped angle to the dominant
        direction for translating pairs, untouched otherwise.
    kind : (P,) int8
        Output: STATIC, TRANSLATING or NOT_DOMINANT.
    """
    n_pairs, h, w, _ = flows.shape
    bins = direction_edges.shape[0] - 1
    lo = direction_edges[0]
    hi = direction_edges[bins]
    two_pi = 2.0 * np.pi
    for p in prange(n_pairs):
        mag = np.empty((h, w))
        for y in range(h):
            for x in range(w):
                u = np.float64(flows[p, y, x, 0])
                v = np.float64(flows[p, y, x, 1])
                mag[y, x] = np.sqrt(u * u + v * v)
        if np.median(mag) < static_magnitude:
            kind[p] = STATIC
            for y in range(h):
                for x in range(w):
                    deviation[p, y, x] = mag[y, x] * mag[y, x]
            continue
        theta = np.empty((h, w))
        hist = np.zeros(bins)
        for y in range(h):
            for x in range(w):
                t = np.arctan2(np.float64(flows[p, y, x, 1]), np.float64(flows[p, y, x, 0]))
                theta[y, x] = t
                b = bin_index(t, lo, hi, direction_edges)
                if b >= 0:
                    hist[b] += mag[y, x]
        total = hist.sum()
        if total == 0.0:
            kind[p] = NOT_DOMINANT
            continue
        best = np.argmax(hist)
        if hist[best] / total <= dominant_direction:
            kind[p] = NOT_DOMINANT
            continue
        kind[p] = TRANSLATING
        target = 0.5 * (direction_edges[best] + direction_edges[best + 1])
        for y in range(h):
            for x in range(w):
                d = theta[y, x] - target
                a = d * d
                b2 = (d + two_pi) * (d + two_pi)
                c = (d - two_pi) * (d - two_pi)
                deviation[p, y, x] = min(a, b2, c)


@njit(cache=True, parallel=True)
def superpixel_sums(
    saliency: np.ndarray,
    labels: np.ndarray,
    offsets: np.ndarray,
    rows: np.ndarray,
    columns: np.ndarray,
    border: int,
    sums: np.ndarray,
    counts: np.ndarray,
    peaks: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Bilinear upsampling of each frame's saliency, border zeroed, summed per superpixel.

    ``saliency`` (n, s_h, s_w) float64 at flow resolution; ``labels`` (n, h, w) int32 with
    frame f's labels in ``[0, offsets[f + 1] - offsets[f])``; ``rows`` (h,) and ``columns``
    (w,) float64 are the source coordinates of the output pixels (``scipy.ndimage.zoom``
    with ``order=1``: index times ``(s - 1) / (out - 1)``); pixels within ``border`` of an
    edge are 0. Writes ``sums`` (k,) float64 and ``counts`` (k,) int64 of every superpixel,
    each frame's maximum upsampled value into ``peaks`` (n,), and flags frames holding a
    label outside their range in ``bad`` (n,) bool. Frames run in parallel; the upsampled
    frame is never stored.
    """
    n, h, w = labels.shape
    s_h, s_w = saliency.shape[1], saliency.shape[2]
    x0 = np.empty(w, np.int64)
    x1 = np.empty(w, np.int64)
    tx = np.empty(w)
    for x in range(w):
        x0[x] = min(int(np.floor(columns[x])), s_w - 1)
        x1[x] = min(x0[x] + 1, s_w - 1)
        tx[x] = columns[x] - x0[x]
    for f in prange(n):
        start = offsets[f]
        n_labels = offsets[f + 1] - start
        peak = -np.inf
        for y in range(h):
            y0 = min(int(np.floor(rows[y])), s_h - 1)
            y1 = min(y0 + 1, s_h - 1)
            ty = rows[y] - y0
            inside_y = border <= y < h - border
            for x in range(w):
                value = 0.0
                if inside_y and border <= x < w - border:
                    top = (1.0 - tx[x]) * saliency[f, y0, x0[x]] + tx[x] * saliency[f, y0, x1[x]]
                    low = (1.0 - tx[x]) * saliency[f, y1, x0[x]] + tx[x] * saliency[f, y1, x1[x]]
                    value = (1.0 - ty) * top + ty * low
                peak = max(peak, value)
                label = labels[f, y, x]
                if label < 0 or label >= n_labels:
                    bad[f] = True
                    continue
                sums[start + label] += value
                counts[start + label] += 1
        peaks[f] = peak
        for label in range(n_labels):
            if counts[start + label] == 0:
                bad[f] = True
