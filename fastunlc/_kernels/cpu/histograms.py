"""Six-channel colour histograms (R, G, B, L, a, b) with ``np.histogram``'s exact binning.

The reference builds each histogram with ``np.histogram(x, bins, range=(lo, hi))``:
values outside ``[lo, hi]`` are dropped (a CIELAB L a hair above 100, which other
colour conversions can give for white, falls out of ``(0, 100)``), the last bin is
closed, and a value is moved to
its neighbour bin when rounding put it on the wrong side of an edge. ``bin_index``
reproduces that rule so the compiled histograms equal NumPy's count for count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Value ranges of the six channels, in the order of the descriptor. A module-level
# array: Numba freezes it into the compiled kernels as a constant.
CHANNEL_RANGES = np.array(
    [[0.0, 255.0], [0.0, 255.0], [0.0, 255.0], [0.0, 100.0], [-128.0, 127.0], [-128.0, 127.0]]
)


def channel_edges(bins: int) -> np.ndarray:
    """Bin edges ``(6, bins + 1)`` float64, the ``np.linspace`` that ``np.histogram`` uses."""
    return np.stack([np.linspace(lo, hi, bins + 1) for lo, hi in CHANNEL_RANGES])


@njit(cache=True, inline="always")
def bin_index(x: float, lo: float, hi: float, edges: np.ndarray) -> int:
    """Bin of ``x`` under ``np.histogram(..., range=(lo, hi))``; -1 when it is not counted."""
    if not (x >= lo and x <= hi):  # also drops NaN
        return -1
    n = edges.shape[0] - 1
    i = int(((x - lo) / (hi - lo)) * n)
    if i == n:
        i -= 1
    if x < edges[i]:
        i -= 1
    elif i != n - 1 and x >= edges[i + 1]:
        i += 1
    return i


@njit(cache=True, inline="always")
def accumulate_pixel(
    hist: np.ndarray, rgb: np.ndarray, lab: np.ndarray, y: int, x: int, edges: np.ndarray,
    weight: float = 1.0,
) -> None:
    """Add pixel ``(y, x)`` to ``hist`` ``(6, bins)``, ``weight`` times.

    ``rgb`` is uint8 and ``lab`` float64, both ``(h, w, 3)``.
    """
    for c in range(3):
        v = np.float64(rgb[y, x, c])
        b = bin_index(v, CHANNEL_RANGES[c, 0], CHANNEL_RANGES[c, 1], edges[c])
        if b >= 0:
            hist[c, b] += weight
        v = lab[y, x, c]
        b = bin_index(v, CHANNEL_RANGES[3 + c, 0], CHANNEL_RANGES[3 + c, 1], edges[3 + c])
        if b >= 0:
            hist[3 + c, b] += weight


@njit(cache=True, inline="always")
def normalise_rows(hist: np.ndarray) -> None:
    """L1-normalise each channel's histogram in place; an all-zero row stays zero.

    The reference divides by ``sum + (sum < 1e-4)``, kept here to the letter.
    """
    for c in range(hist.shape[0]):
        s = 0.0
        for b in range(hist.shape[1]):
            s += hist[c, b]
        d = s + (1.0 if s < 1e-4 else 0.0)
        for b in range(hist.shape[1]):
            hist[c, b] /= d


@njit(cache=True)
def colour_histograms(
    colours: np.ndarray, lab: np.ndarray, counts: np.ndarray, edges: np.ndarray, out: np.ndarray
) -> None:
    """Whole-image histograms from the image's distinct colours: ``colours`` uint8
    ``(k, 3)``, their CIELAB ``lab`` float64 ``(k, 3)`` and pixel ``counts`` ``(k,)``;
    writes the L1-normalised ``(6 * bins,)`` float64 row into ``out``. Counts are whole
    numbers, exact in float64 in any order, so this equals the pixel-by-pixel histograms."""
    bins = edges.shape[1] - 1
    k = colours.shape[0]
    rgb = colours.reshape(k, 1, 3)  # a one-column image, for accumulate_pixel
    lab = lab.reshape(k, 1, 3)
    hist = np.zeros((6, bins))
    for i in range(k):
        accumulate_pixel(hist, rgb, lab, i, 0, edges, np.float64(counts[i]))
    normalise_rows(hist)
    for c in range(6):
        for b in range(bins):
            out[c * bins + b] = hist[c, b]
