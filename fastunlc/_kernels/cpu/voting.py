"""Per-pixel kernels of the consensus voting: painting votes, pixel counts, blob edits.

Every kernel walks a frame's pixels in raster order, so sums accumulate in exactly the
order of ``np.bincount`` over the flattened frame and agree with it bit for bit.
Callers guarantee label ranges (no bounds checks here).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def paint(votes: np.ndarray, labels: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[f, y, x] = votes[offsets[f] + labels[f, y, x]]``; ``out`` float64 (n, h, w)."""
    n, h, w = labels.shape
    for f in prange(n):
        base = offsets[f]
        for y in range(h):
            for x in range(w):
                out[f, y, x] = votes[base + labels[f, y, x]]


@njit(cache=True, parallel=True)
def pixel_counts(labels: np.ndarray, offsets: np.ndarray, counts: np.ndarray) -> None:
    """Add each superpixel's pixel count into ``counts`` (k,) int64, zero on entry."""
    n, h, w = labels.shape
    for f in prange(n):
        base = offsets[f]
        for y in range(h):
            for x in range(w):
                counts[base + labels[f, y, x]] += 1


@njit(cache=True)
def suppress_small(
    mask: np.ndarray, components: np.ndarray, n_components: int, relative_size: float,
    value: float
) -> None:
    """Set, in ``mask`` (h, w) float64, every component with fewer pixels than
    ``relative_size`` x the largest component's to ``value``.

    ``components`` (h, w) int32 numbers the components 1 .. n_components - 1; 0 is
    background and never changed.
    """
    h, w = mask.shape
    size = np.zeros(n_components, dtype=np.int64)
    for y in range(h):
        for x in range(w):
            size[components[y, x]] += 1
    largest = 0
    for c in range(1, n_components):
        largest = max(largest, size[c])
    kill = size < relative_size * largest
    kill[0] = False
    for y in range(h):
        for x in range(w):
            if kill[components[y, x]]:
                mask[y, x] = value


@njit(cache=True, parallel=True)
def foreground(
    votes: np.ndarray, labels: np.ndarray, offsets: np.ndarray, threshold: float,
    out: np.ndarray
) -> None:
    """``out[f, y, x] = votes[offsets[f] + labels[f, y, x]] > threshold`` as uint8 0/1:
    the binarised painted mask, without painting it."""
    n, h, w = labels.shape
    for f in prange(n):
        base = offsets[f]
        for y in range(h):
            for x in range(w):
                out[f, y, x] = 1 if votes[base + labels[f, y, x]] > threshold else 0


@njit(cache=True, parallel=True)
def low_energy_means(
    votes: np.ndarray, labels: np.ndarray, offsets: np.ndarray, components: np.ndarray,
    n_components: np.ndarray, energy_fraction: float, value: float, out: np.ndarray
) -> None:
    """Superpixel means (k,) of the painted votes after low-energy blob removal, in one go.

    Equals painting ``votes``, setting each component of frame f (``components[f]``
    numbered 1 .. n_components[f] - 1, background 0) whose summed mask is below
    ``energy_fraction`` x its size to ``value``, and averaging per superpixel, with the
    same sums in the same order, so bit for bit. ``components[f]`` is not read when
    ``n_components[f] <= 1`` (no foreground, or the caller skipped labelling because
    no component can qualify). Writes ``out`` (k,) float64.
    """
    n, h, w = labels.shape
    for f in prange(n):
        base = offsets[f]
        nc = n_components[f]
        kill = np.zeros(max(nc, 1), dtype=np.bool_)
        any_kill = False
        if nc > 1:
            energy = np.zeros(nc)
            size = np.zeros(nc)
            for y in range(h):
                for x in range(w):
                    c = components[f, y, x]
                    energy[c] += votes[base + labels[f, y, x]]
                    size[c] += 1.0
            for c in range(1, nc):
                kill[c] = energy[c] < energy_fraction * size[c]
                any_kill = any_kill or kill[c]
        n_f = offsets[f + 1] - base
        sums = np.zeros(n_f)
        counts = np.zeros(n_f, dtype=np.int64)
        for y in range(h):
            for x in range(w):
                s = labels[f, y, x]
                if any_kill and kill[components[f, y, x]]:
                    sums[s] += value
                else:
                    sums[s] += votes[base + s]
                counts[s] += 1
        for s in range(n_f):
            out[base + s] = sums[s] / counts[s]


@njit(cache=True, parallel=True)
def label_ranges(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest label of each frame of ``labels`` (n, h, w), as two (n,) int64."""
    n, h, w = labels.shape
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    for f in prange(n):
        a = labels[f, 0, 0]
        b = a
        for y in range(h):
            for x in range(w):
                v = labels[f, y, x]
                if v < a:
                    a = v
                if v > b:
                    b = v
        lo[f] = a
        hi[f] = b
    return lo, hi
