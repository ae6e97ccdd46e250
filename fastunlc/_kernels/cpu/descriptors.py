"""Superpixel descriptor kernels: bounding boxes, patch placement, HOG and colour histograms.

The HOG here reproduces ``skimage.feature.hog`` (checked against scikit-image 0.26) on a
grey patch with one block covering all cells, bit for bit:

- gradients are central differences, zero on the patch border;
- magnitude ``hypot(g_col, g_row)``, unsigned orientation
  ``degrees(atan2(g_row, g_col)) % 180`` (Python's modulo, so a tiny negative
  angle rounds up to exactly 180 and falls in no bin);
- a pixel goes to orientation bin ``i`` when ``180/n * i <= angle < 180/n * (i + 1)``;
- each cell's bin sums its pixels' magnitudes in row-major order in a C ``float``
  (float32) accumulator, then divides by the cell area in float32. scikit-image's
  Cython kernel declares the accumulator ``float`` whatever the image type; summing
  in float64 instead differs by up to ~5e-9, so it is reproduced;
- block normalisation sums with NumPy's pairwise summation (``pairwise_sum``) so
  that the normalising constant is NumPy's to the last bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .histograms import accumulate_pixel, normalise_rows

# Block normalisations, numbered for the kernels (scikit-image's names).
BLOCK_NORMS = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}

# scikit-image's block-normalisation epsilon.
_EPS = 1e-5
# NumPy's pairwise-summation block size (``PW_BLOCKSIZE`` in numpy/_core/src/umath/loops_utils.h).
_PW_BLOCKSIZE = 128


@njit(cache=True)
def region_boxes(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Bounding boxes of the labels of ``labels`` (h, w) int, labels in [0, n_labels).

    Returns ``(n_labels, 4)`` int64 rows ``(xmin, ymin, xmax, ymax)``, inclusive; a
    label with no pixel keeps ``xmin > xmax`` (``(w, h, -1, -1)``).
    """
    h, w = labels.shape
    boxes = np.empty((n_labels, 4), dtype=np.int64)
    boxes[:, 0] = w
    boxes[:, 1] = h
    boxes[:, 2] = -1
    boxes[:, 3] = -1
    for y in range(h):
        for x in range(w):
            s = labels[y, x]
            if x < boxes[s, 0]:
                boxes[s, 0] = x
            if x > boxes[s, 2]:
                boxes[s, 2] = x
            # Rows are visited in order: the first hit is the minimum.
            if boxes[s, 1] == h:
                boxes[s, 1] = y
            boxes[s, 3] = y
    return boxes


@njit(cache=True, inline="always")
def _place_1d(lo: int, hi: int, size: int, extent: int) -> tuple[int, int]:
    """Patch start along one axis for a box ``[lo, hi]``: ``(unclipped, clipped)``.

    The unclipped start is the reference's ``int((lo + hi - size) / 2)``: true
    division, then truncation toward zero (not floor: -6.5 gives -6). The reference
    then clips start and end to ``[0, extent - 1]`` and shifts a patch cut at the
    low border to ``[0, size)`` and one cut at the high border to
    ``[extent - 1 - size, extent - 1)``: the last row or column is never in a patch.
    """
    start = int((lo + hi - size) / 2)
    first = max(0, min(start, extent - 1))
    end = max(0, min(start + size, extent - 1))
    if first == 0:
        end = size
    if end == extent - 1:
        first = end - size
    return start, first


@njit(cache=True)
def place_patches(boxes: np.ndarray, size: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Patch starts for ``boxes`` (n, 4) ``(xmin, ymin, xmax, ymax)`` in an ``h x w`` frame.

    Returns ``starts`` (n, 2) int64 ``(y0, x0)`` before the shift inside the frame
    (may be negative; the location descriptor) and ``corners`` (n, 2) int64, the
    top-left ``(y, x)`` of the ``size x size`` patch actually read, inside the frame.
    Needs ``h, w >= size + 1``.
    """
    n = boxes.shape[0]
    starts = np.empty((n, 2), dtype=np.int64)
    corners = np.empty((n, 2), dtype=np.int64)
    for i in range(n):
        starts[i, 1], corners[i, 1] = _place_1d(boxes[i, 0], boxes[i, 2], size, w)
        starts[i, 0], corners[i, 0] = _place_1d(boxes[i, 1], boxes[i, 3], size, h)
    return starts, corners


@njit(cache=True)
def gather_patches(image: np.ndarray, corners: np.ndarray, out: np.ndarray) -> None:
    """Copy the ``size x size`` patches at ``corners`` (n, 2) of ``image`` (h, w, c) into
    ``out`` (n, size, size, c). Serial: a copy of ~0.1 ms gains nothing from threads."""
    size = out.shape[1]
    for i in range(corners.shape[0]):
        y0 = corners[i, 0]
        x0 = corners[i, 1]
        for y in range(size):
            for x in range(size):
                for c in range(out.shape[3]):
                    out[i, y, x, c] = image[y0 + y, x0 + x, c]


@njit(cache=True, inline="always")
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """NumPy's sum of at most ``_PW_BLOCKSIZE`` values ``a[lo:lo + n]``: 8 running sums."""
    if n < 8:
        total = 0.0
        for i in range(lo, lo + n):
            total += a[i]
        return total
    r = a[lo:lo + 8].copy()
    stop = n - n % 8
    for i in range(8, stop, 8):
        for j in range(8):
            r[j] += a[lo + i + j]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(stop, n):
        total += a[lo + i]
    return total


@njit(cache=True)
def pairwise_sum(a: np.ndarray) -> float:
    """``np.sum(a)`` of a 1-D float64 array, in NumPy's pairwise order, to the last bit.

    NumPy splits a run longer than ``_PW_BLOCKSIZE`` at ``n // 2`` rounded down to a
    multiple of 8 and adds the halves' sums. The recursion is unrolled onto explicit
    stacks: Numba's on-disk cache cannot reload self-recursive functions.
    """
    n = a.shape[0]
    if n <= _PW_BLOCKSIZE:
        return _block_sum(a, 0, n)
    depth = 64  # each split halves the run: 64 levels cover any array
    lo = np.empty(depth, dtype=np.int64)
    size = np.empty(depth, dtype=np.int64)
    visits = np.empty(depth, dtype=np.int64)  # 0: new, 1: left half done, 2: both done
    sums = np.empty(depth)
    lo[0], size[0], visits[0] = 0, n, 0
    top, n_sums = 0, 0
    while top >= 0:
        m = size[top]
        if m <= _PW_BLOCKSIZE:
            sums[n_sums] = _block_sum(a, lo[top], m)
            n_sums += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if visits[top] == 0:
            visits[top] = 1
            lo[top + 1], size[top + 1], visits[top + 1] = lo[top], half, 0
            top += 1
        elif visits[top] == 1:
            visits[top] = 2
            lo[top + 1], size[top + 1], visits[top + 1] = lo[top] + half, m - half, 0
            top += 1
        else:
            n_sums -= 1
            sums[n_sums - 1] += sums[n_sums]
            top -= 1
    return sums[0]


@njit(cache=True)
def _sum_of_squares(a: np.ndarray) -> float:
    return pairwise_sum(a * a)


@njit(cache=True)
def hog_patch(grey: np.ndarray, orientations: int, cell: int, norm: int, out: np.ndarray) -> None:
    """HOG of one square grey patch ``grey`` (size, size) float64 with one block of all cells.

    Writes ``orientations * (size // cell) ** 2`` values into ``out`` in the order
    (cell row, cell column, orientation); ``norm`` is a ``BLOCK_NORMS`` code.
    """
    size = grey.shape[0]
    n_cells = size // cell
    span = n_cells * cell
    bin_width = 180.0 / orientations
    # Float64 values that hold float32 partial sums (see the module docstring).
    hist = np.zeros(n_cells * n_cells * orientations)
    for y in range(span):
        for x in range(span):
            g_row = grey[y + 1, x] - grey[y - 1, x] if 0 < y < size - 1 else 0.0
            g_col = grey[y, x + 1] - grey[y, x - 1] if 0 < x < size - 1 else 0.0
            magnitude = math.hypot(g_col, g_row)
            # Python's (and NumPy's) modulo: a tiny negative angle becomes exactly 180.0.
            angle = (math.atan2(g_row, g_col) * (180.0 / math.pi)) % 180.0
            base = ((y // cell) * n_cells + x // cell) * orientations
            for o in range(orientations):
                if bin_width * o <= angle < bin_width * (o + 1):
                    hist[base + o] = np.float32(hist[base + o] + magnitude)
                    break
    area = float(cell * cell)
    for k in range(hist.shape[0]):
        hist[k] = np.float32(hist[k] / area)

    if norm == 0 or norm == 1:  # L1, L1-sqrt (values are >= 0: abs is a no-op)
        scale = pairwise_sum(hist) + _EPS
        for k in range(hist.shape[0]):
            out[k] = hist[k] / scale
            if norm == 1:
                out[k] = math.sqrt(out[k])
    else:  # L2, L2-Hys
        scale = math.sqrt(_sum_of_squares(hist) + _EPS * _EPS)
        for k in range(hist.shape[0]):
            out[k] = hist[k] / scale
        if norm == 3:
            clipped = np.minimum(out, 0.2)
            scale = math.sqrt(_sum_of_squares(clipped) + _EPS * _EPS)
            for k in range(hist.shape[0]):
                out[k] = clipped[k] / scale


@njit(cache=True, parallel=True)
def patch_descriptors(
    grey: np.ndarray,
    rgb: np.ndarray,
    lab: np.ndarray,
    edges: np.ndarray,
    orientations: int,
    cell: int,
    norm: int,
    out: np.ndarray,
) -> None:
    """HOG and colour histograms of ``n`` patches, in parallel over patches.

    ``grey`` (n, s, s) float64, ``rgb`` (n, s, s, 3) uint8, ``lab`` (n, s, s, 3)
    float64, ``edges`` (6, bins + 1) from ``channel_edges``. Writes the HOG into
    ``out[:, :n_hog]`` and the six L1-normalised histograms into
    ``out[:, n_hog:n_hog + 6 * bins]``; other columns are left untouched.
    """
    n, size = grey.shape[0], grey.shape[1]
    n_hog = orientations * (size // cell) ** 2
    bins = edges.shape[1] - 1
    for i in prange(n):
        hog_patch(grey[i], orientations, cell, norm, out[i, :n_hog])
        hist = np.zeros((6, bins))
        for y in range(size):
            for x in range(size):
                accumulate_pixel(hist, rgb[i], lab[i], y, x, edges)
        normalise_rows(hist)
        for c in range(6):
            for b in range(bins):
                out[i, n_hog + c * bins + b] = hist[c, b]
