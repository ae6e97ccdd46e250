"""Dominant-motion test and per-pair deviation maps, compiled over all pairs of a shot."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._histograms import bin_index

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
