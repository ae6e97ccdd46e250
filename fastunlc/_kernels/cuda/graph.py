"""Nearest-neighbour transition matrix on the GPU: exact distances and top-k in one launch.

Every superpixel of frame f gets its ``M = config.n_neighbours`` nearest candidates
among the superpixels of frames ``f - temporal_radius .. f + temporal_radius``
(clipped), by L2 distance between descriptors, as :func:`fastunlc.graph.knn_graph`
does on the CPU. One block per tile of up to 32 queries of one frame; the
block streams the frame's candidate window through shared memory in tiles of 32
candidates x 32 dimensions, each thread accumulates its query's float64 squared
distances and keeps a sorted top-M list in local memory.

Ranking rule: candidates are ordered by (squared distance, global index), and the
superpixel itself always comes first. That is the CPU's rule: its kernel keeps the
smaller index among equal distances, and puts the superpixel itself in place of the last
neighbour when more than M - 1 exact duplicates come before it. Distances here are
float64 sums of ``(x - y)²``; the CPU's are float32 ``|x|² + |y|² - 2 x·y``, so
candidates within about 1e-5 relative of each other may rank differently, and weights
agree to about 1e-4 relative (measured in the simulator: 4.8e-5 on random 12-d
descriptors, 7.2e-6 on real 176-d ones; 1e-14 against the float64 oracle).

Rows are returned in fixed width: ``(k, M)`` arrays with ``-1`` / 0 padding after a
row's ``counts[r] = min(M, window)`` entries. :func:`to_csr` turns them into the CPU's
scipy CSR matrix and :func:`rows_from_csr` the other way.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import cuda, float64, int64

from ...config import REFERENCE, UNLCConfig
from .arrays import as_device, grid_1d

TILE = 32
"""Queries per block, and candidates per shared-memory tile."""
CHUNK = 32
"""Descriptor dimensions per shared-memory tile."""
_ROW = CHUNK + 1  # a shared tile's row, padded by one so that a warp's rows hit distinct banks


class Transition(NamedTuple):
    """Row-stochastic transition matrix T in fixed-width rows (device arrays).

    Attributes
    ----------
    indices : (k, M) int64
        Columns of each row's entries, ascending (CSR order), ``-1`` after the row's
        ``counts[r]`` entries.
    weights : (k, M) float64
        ``T[r, indices[r, j]]``; 0 where ``indices`` is -1. Each row sums to 1.
    counts : (k,) int64
        Entries per row: ``min(M, c_r)``, c_r the superpixels in r's window.
    """

    indices: object
    weights: object
    counts: object


@cache
def _knn_kernel(m: int):
    """The top-``m`` kernel (local arrays need a compile-time length)."""

    @cuda.jit
    def knn(descriptors, tiles, indices, sq_distances):
        t = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        q0, q1, c0, c1 = tiles[t, 0], tiles[t, 1], tiles[t, 2], tiles[t, 3]
        q = q0 + tid
        active = q < q1
        dims = descriptors.shape[1]
        queries = cuda.shared.array((TILE, _ROW), float64)
        candidates = cuda.shared.array((TILE, _ROW), float64)
        # Each thread's distances to the tile, handed from its registers (``acc``, only
        # ever indexed by unrolled loops) to the top-M scan, which indexes them freely.
        found = cuda.shared.array((TILE, _ROW), float64)
        acc = cuda.local.array(TILE, float64)
        best_d = cuda.local.array(m, float64)
        best_i = cuda.local.array(m, int64)
        size = 0
        for start in range(c0, c1, TILE):
            width = min(TILE, c1 - start)
            for j in range(TILE):
                acc[j] = 0.0
            for d0 in range(0, dims, CHUNK):
                # Zero padding past the last query, candidate and dimension adds exact
                # zeros, and keeps both inner loops at constant length: the accumulators
                # stay in registers and each step is one broadcast shared load.
                for e in range(tid, TILE * CHUNK, nt):
                    a = e // CHUNK
                    b = e - a * CHUNK
                    inside = d0 + b < dims
                    queries[a, b] = descriptors[q0 + a, d0 + b] if inside and q0 + a < q1 else 0.0
                    candidates[a, b] = (descriptors[start + a, d0 + b] if inside and a < width
                                        else 0.0)
                cuda.syncthreads()
                if active:
                    for b in range(CHUNK):
                        x = queries[tid, b]
                        for j in range(TILE):
                            diff = x - candidates[j, b]
                            acc[j] += diff * diff
                cuda.syncthreads()
            if active:
                for j in range(TILE):
                    found[tid, j] = acc[j]
                # Candidates arrive by ascending index, so among equal distances the
                # earlier stays ahead; the superpixel itself ranks first (key -1).
                for j in range(width):
                    c = start + j
                    dist = -1.0 if c == q else found[tid, j]
                    if size < m:
                        pos = size
                        size += 1
                    elif dist < best_d[m - 1]:
                        pos = m - 1
                    else:
                        continue
                    while pos > 0 and best_d[pos - 1] > dist:
                        best_d[pos] = best_d[pos - 1]
                        best_i[pos] = best_i[pos - 1]
                        pos -= 1
                    best_d[pos] = dist
                    best_i[pos] = c
        if active:
            for j in range(m):
                if j < size:
                    indices[q, j] = best_i[j]
                    sq_distances[q, j] = max(best_d[j], 0.0)
                else:
                    indices[q, j] = -1
                    sq_distances[q, j] = math.inf

    return knn


@cache
def _rows_kernel(m: int):
    """The kernel turning top-``m`` lists into normalised rows in column order."""

    @cuda.jit
    def rows(indices, sq_distances, weight_variance, out_indices, out_weights, counts):
        columns = cuda.local.array(m, int64)
        weights = cuda.local.array(m, float64)
        for r in range(cuda.grid(1), indices.shape[0], cuda.gridsize(1)):
            size = 0
            for j in range(m):
                c = indices[r, j]
                if c < 0:
                    break
                w = 1.0 if c == r else math.exp(-sq_distances[r, j] / weight_variance)
                pos = size
                while pos > 0 and columns[pos - 1] > c:
                    columns[pos] = columns[pos - 1]
                    weights[pos] = weights[pos - 1]
                    pos -= 1
                columns[pos] = c
                weights[pos] = w
                size += 1
            total = 0.0  # >= 1: the self weight
            for j in range(size):
                total += weights[j]
            for j in range(m):
                if j < size:
                    out_indices[r, j] = columns[j]
                    out_weights[r, j] = weights[j] / total
                else:
                    out_indices[r, j] = -1
                    out_weights[r, j] = 0.0
            counts[r] = size

    return rows


def _check_inputs(descriptors, offsets) -> tuple[object, np.ndarray]:
    """``descriptors`` (k, d) float on the device and ``offsets`` (n + 1,) int64 rising
    from 0 to k on the host, as :func:`fastunlc.graph.knn_graph` requires them."""
    offsets = np.asarray(offsets)
    if descriptors.ndim != 2 or descriptors.shape[1] < 1:
        raise ValueError(f"descriptors must be (k, d) with d >= 1, got shape {descriptors.shape}")
    if descriptors.dtype not in (np.float32, np.float64):
        raise ValueError(f"descriptors must be float32 or float64, got {descriptors.dtype}")
    if offsets.ndim != 1 or offsets.size < 2 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError("offsets must be a 1-D integer array (n + 1,) with n >= 1, got "
                         f"shape {offsets.shape} and dtype {offsets.dtype}")
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != descriptors.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must rise from 0 to k = descriptors.shape[0] = "
                         f"{descriptors.shape[0]}; got {offsets[0]} .. {offsets[-1]}")
    return descriptors, offsets


def _tiles(offsets: np.ndarray, radius: int, tile: int) -> np.ndarray:
    """``(n_tiles, 4)`` int64 rows ``query_start, query_stop, window_start, window_stop``:
    each frame's superpixels in runs of ``tile``, with the frame's candidate window."""
    n = offsets.size - 1
    sizes = np.diff(offsets)
    per_frame = -(-sizes // tile)
    frame = np.repeat(np.arange(n), per_frame)
    within = np.arange(frame.size) - np.repeat(np.cumsum(per_frame) - per_frame, per_frame)
    q0 = offsets[frame] + within * tile
    q1 = np.minimum(q0 + tile, offsets[frame + 1])
    c0 = offsets[np.maximum(frame - radius, 0)]
    c1 = offsets[np.minimum(frame + radius, n - 1) + 1]
    return np.stack([q0, q1, c0, c1], axis=1).astype(np.int64)


def neighbours(descriptors, offsets, config: UNLCConfig = REFERENCE, *, stream=0
               ) -> tuple[object, object]:
    """Nearest window candidates of every superpixel, exact, in one launch.

    Parameters
    ----------
    descriptors : (k, d) float32 or float64 device or host array
        One descriptor per superpixel, numbered frame by frame; finite (not checked).
    offsets : (n + 1,) int host array
        Frame f owns superpixels ``offsets[f] .. offsets[f + 1] - 1`` (frames may be
        empty).
    config : UNLCConfig
        Uses ``temporal_radius`` and ``n_neighbours`` (M).
    stream : numba.cuda.Stream or 0, keyword-only

    Returns
    -------
    indices : (k, M) int64 device array
        Global indices of each superpixel's nearest candidates: itself first, then by
        (squared distance, index); ``-1`` after the ``min(M, c)`` candidates of a window
        holding c < M.
    sq_distances : (k, M) float64 device array
        Squared L2 distances (descriptor units squared), 0 for the superpixel itself,
        ``inf`` where ``indices`` is -1.

    Raises
    ------
    ValueError
        If the shapes or dtypes disagree or ``offsets`` is not a rising 0 .. k sequence.
    """
    descriptors, offsets = _check_inputs(as_device(descriptors, stream=stream), offsets)
    k = descriptors.shape[0]
    m = config.n_neighbours
    indices = cuda.device_array((k, m), np.int64, stream=stream)
    sq_distances = cuda.device_array((k, m), np.float64, stream=stream)
    if k == 0:
        return indices, sq_distances
    # Tiny frames get blocks of just their size (the simulator runs every thread).
    tile = int(min(TILE, np.diff(offsets).max()))
    tiles = _tiles(offsets, config.temporal_radius, tile)
    _knn_kernel(m)[len(tiles), tile, stream](
        descriptors, cuda.to_device(tiles, stream=stream), indices, sq_distances)
    return indices, sq_distances


def transition(descriptors, offsets, config: UNLCConfig = REFERENCE, *, stream=0
               ) -> Transition:
    """Row-stochastic transition matrix T of the consensus voting, in fixed-width rows.

    The rows of :func:`fastunlc.graph.transition_matrix`: ``T[r, j] = w_rj / sum_j w_rj``
    with ``w_rj = exp(-d_rj² / weight_variance)`` over r's :func:`neighbours`, and
    ``w_rr = 1``; a neighbour at distance 0 keeps weight 1.

    Parameters
    ----------
    descriptors, offsets, config, stream
        As :func:`neighbours`; ``config`` also gives ``weight_variance``.

    Returns
    -------
    Transition
        ``indices`` ascending per row (CSR order), ``weights`` in [0, 1] summing to 1
        per row, ``counts`` entries per row.

    Raises
    ------
    ValueError
        As :func:`neighbours`.
    """
    indices, sq_distances = neighbours(descriptors, offsets, config, stream=stream)
    k, m = indices.shape
    out_indices = cuda.device_array((k, m), np.int64, stream=stream)
    out_weights = cuda.device_array((k, m), np.float64, stream=stream)
    counts = cuda.device_array(k, np.int64, stream=stream)
    if k:
        blocks, threads = grid_1d(k)
        _rows_kernel(m)[blocks, threads, stream](
            indices, sq_distances, float(config.weight_variance), out_indices, out_weights,
            counts)
    return Transition(out_indices, out_weights, counts)


def to_csr(transition: Transition) -> sp.csr_matrix:
    """The scipy CSR matrix of fixed-width rows, as :func:`fastunlc.graph.transition_matrix`
    returns it: (k, k) float64, canonical (sorted columns, no duplicates). Host side:
    copies the rows back."""
    indices = np.asarray(transition.indices.copy_to_host())
    weights = np.asarray(transition.weights.copy_to_host())
    counts = np.asarray(transition.counts.copy_to_host())
    k = indices.shape[0]
    indptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    valid = indices >= 0
    matrix = sp.csr_matrix((weights[valid], indices[valid], indptr), shape=(k, k))
    matrix.has_sorted_indices = True
    return matrix


def rows_from_csr(matrix: sp.spmatrix, *, stream=0) -> Transition:
    """Fixed-width device rows of a scipy sparse (k, k) matrix, entries in its stored order.

    The CPU's voting multiplies ``sp.csr_matrix(matrix, dtype=float64)`` by the votes
    summing each row in stored order; keeping that order lets
    :func:`fastunlc._kernels.cuda.voting.consensus_voting` sum the same products in the
    same order. Width: the longest row (at least 1).
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    k = matrix.shape[0]
    counts = np.diff(matrix.indptr).astype(np.int64)
    width = max(1, int(counts.max()) if k else 1)
    indices = np.full((k, width), -1, dtype=np.int64)
    weights = np.zeros((k, width))
    rows = np.repeat(np.arange(k), counts)
    position = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
    indices[rows, position] = matrix.indices
    weights[rows, position] = matrix.data
    return Transition(cuda.to_device(indices, stream=stream),
                      cuda.to_device(weights, stream=stream),
                      cuda.to_device(counts, stream=stream))
