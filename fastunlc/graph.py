"""Sparse nearest-neighbour transition matrix over a shot's superpixels (spec section 5).

Each superpixel of frame i is linked to its ``M = config.n_neighbours`` (62) nearest
superpixels by L2 distance between descriptors, searched among all superpixels of
frames ``i - temporal_radius .. i + temporal_radius`` (clipped to the shot; frame i and
the superpixel itself included). Edge weights are ``exp(-d**2 / weight_variance)``,
the self weight is 1, and rows are normalised to sum 1. The reference stores this
matrix dense (k x k, over 8 GB for a 110-frame shot); here it is a CSR matrix with
about M non-zeros per row, built frame by frame from FAISS exact k-NN searches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import faiss
import numpy as np
import scipy.sparse as sp

from .backend import cpu_threads, kernels
from .config import REFERENCE, UNLCConfig

logger = logging.getLogger(__name__)


def _check_inputs(descriptors: np.ndarray, frame_offsets: np.ndarray) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """Validate ``descriptors`` (k, d) and ``frame_offsets`` (n + 1,); return them as arrays."""
    descriptors = np.asarray(descriptors)
    offsets = np.asarray(frame_offsets)
    if descriptors.ndim != 2 or descriptors.shape[1] < 1:
        raise ValueError(f"descriptors must be (k, d) with d >= 1, got shape {descriptors.shape}")
    if not np.issubdtype(descriptors.dtype, np.floating):
        raise ValueError(f"descriptors must be floating point, got {descriptors.dtype}")
    if offsets.ndim != 1 or offsets.size < 2 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError("frame_offsets must be a 1-D integer array (n + 1,) with n >= 1, got "
                         f"shape {offsets.shape} and dtype {offsets.dtype}")
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != descriptors.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError("frame_offsets must rise from 0 to k = descriptors.shape[0] = "
                         f"{descriptors.shape[0]}; got {offsets[0]} .. {offsets[-1]}"
                         + (" (decreasing somewhere)" if np.any(np.diff(offsets) < 0) else ""))
    if not np.all(np.isfinite(descriptors)):
        raise ValueError("descriptors contain NaN or infinite values")
    return descriptors, offsets


def knn_graph(
    descriptors: np.ndarray, frame_offsets: np.ndarray, config: UNLCConfig = REFERENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest candidates of every superpixel within its temporal window.

    Parameters
    ----------
    descriptors : (k, d) float ndarray
        One descriptor per superpixel, superpixels numbered frame by frame.
    frame_offsets : (n + 1,) int ndarray
        Frame f owns superpixels ``frame_offsets[f] .. frame_offsets[f + 1] - 1``.
    config : UNLCConfig
        Uses ``temporal_radius`` and ``n_neighbours`` (M).

    Returns
    -------
    indices : (k, M) int64
        Global indices of each superpixel's nearest candidates, nearest first. The
        superpixel itself is always among them. A superpixel whose window holds
        ``c < M`` candidates has all c of them followed by ``-1`` padding.
    sq_distances : (k, M) float32
        Squared L2 distances (descriptor units squared, >= 0) as FAISS computes them in
        float32; ``inf`` where ``indices`` is ``-1``.

    Raises
    ------
    ValueError
        If the shapes disagree, ``frame_offsets`` is not a rising 0 .. k sequence, or a
        descriptor is not finite.

    Notes
    -----
    One exact FAISS search per frame: its superpixels against the 2R + 1 frames around
    it. FAISS has no per-query candidate range, so frames share a search only when
    their windows are equal: consecutive frames clipped at both ends, which happens in
    shots of at most 2R frames (all frames of a shot of R + 1 frames or fewer).

    For a batch of a frame's size (400 queries x 176 dims) FAISS 1.15 sums
    ``(x - y)²`` directly in float32 (relative error of d² about 1e-7); from
    ``queries x d >= 128,000`` (``faiss.cvar.distance_compute_blas_threshold``) it
    switches to ``|x|² + |y|² - 2 x·y`` through BLAS, about 1.5x faster here but with
    cancellation errors some 10x larger. The descriptors are centred on their mean
    before the float32 cast: distances do not change, and the smaller norms shrink that
    cancellation error wherever the BLAS form runs.
    """
    descriptors, offsets = _check_inputs(descriptors, frame_offsets)
    if config.device == "cuda":  # exact float64 distances, the same ties
        indices, sq_distances = kernels("cuda").graph.neighbours(descriptors, offsets, config)
        return indices.copy_to_host(), sq_distances.copy_to_host().astype(np.float32)
    k = descriptors.shape[0]
    m = config.n_neighbours
    radius = config.temporal_radius
    n = offsets.size - 1
    centred = np.ascontiguousarray(descriptors - descriptors.mean(axis=0), dtype=np.float32)
    indices = np.full((k, m), -1, dtype=np.int64)
    sq_distances = np.full((k, m), np.inf, dtype=np.float32)
    first = np.maximum(np.arange(n) - radius, 0)
    last = np.minimum(np.arange(n) + radius, n - 1)
    with _blas_distances():
        _search_windows(centred, offsets, first, last, m, indices, sq_distances)
    return indices, sq_distances


@contextmanager
def _blas_distances() -> Iterator[None]:
    """Make FAISS compute distances as ``|x|² + |y|² - 2 x·y`` through BLAS.

    FAISS picks BLAS only from ``queries x d >= 128,000``; a frame's 400 queries x 176
    dims fall below that and take the direct SIMD loop, which measured 4.5x slower
    here (2.0 s against 0.45 s for a 40-frame shot's graph). The setting is
    process-wide, so it is restored on exit.
    """
    previous = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 1
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = previous


def _search_windows(centred: np.ndarray, offsets: np.ndarray, first: np.ndarray,
                    last: np.ndarray, m: int, indices: np.ndarray,
                    sq_distances: np.ndarray) -> None:
    """Fill ``indices`` / ``sq_distances`` (k, M) with one exact search per window.

    Windows run on the CPU kernels' number of threads, each search on one OpenMP thread: FAISS's
    results (distances to the last bit, hence the order of near-ties) depend on how many
    OpenMP threads a search uses, and the graph must not depend on the machine.
    """
    n = offsets.size - 1
    windows = []
    f = 0
    while f < n:
        # Consecutive frames with the same window share one search.
        g = f + 1
        while g < n and first[g] == first[f] and last[g] == last[f]:
            g += 1
        if offsets[g] > offsets[f]:
            windows.append((offsets[f], offsets[g], offsets[first[f]], offsets[last[f] + 1]))
        f = g

    def search(window: tuple[int, int, int, int]) -> None:
        q0, q1, c0, c1 = window
        faiss.omp_set_num_threads(1)  # this thread's OpenMP setting only
        width = min(m, c1 - c0)
        dist, idx = faiss.knn(centred[q0:q1], centred[c0:c1], int(width))
        idx += c0
        rows = np.arange(q0, q1)
        # With more than M exact duplicates of a superpixel, FAISS may rank the copies
        # before the superpixel itself; any order of equal distances is valid, so the
        # farthest kept neighbour gives way to the superpixel itself.
        missing = ~np.any(idx == rows[:, None], axis=1)
        idx[missing, -1] = rows[missing]
        dist[missing, -1] = 0.0
        indices[q0:q1, :width] = idx
        sq_distances[q0:q1, :width] = np.maximum(dist, 0.0)

    with ThreadPoolExecutor(max(1, min(cpu_threads(), len(windows)))) as pool:
        list(pool.map(search, windows))


def transition_matrix(
    descriptors: np.ndarray, frame_offsets: np.ndarray, config: UNLCConfig = REFERENCE
) -> sp.csr_matrix:
    """Row-stochastic sparse transition matrix T of the consensus voting.

    Parameters
    ----------
    descriptors : (k, d) float ndarray
        One descriptor per superpixel, superpixels numbered frame by frame.
    frame_offsets : (n + 1,) int ndarray
        Frame f owns superpixels ``frame_offsets[f] .. frame_offsets[f + 1] - 1``.
    config : UNLCConfig
        Uses ``temporal_radius``, ``n_neighbours`` (M) and ``weight_variance``.

    Returns
    -------
    scipy.sparse.csr_matrix
        (k, k) float64 in canonical form (sorted column indices, no duplicates). Row r
        has ``min(M, c_r)`` stored entries, c_r being the superpixels in r's window:
        ``T[r, j] = w_rj / sum_j w_rj`` with ``w_rj = exp(-d_rj² / weight_variance)``
        and ``w_rr = 1``. Every row sums to 1 (within rounding); values in [0, 1] (a weight
        underflows to 0 only beyond d² of about 70 x weight_variance).

    Raises
    ------
    ValueError
        As :func:`knn_graph`.

    Notes
    -----
    Deliberate difference from the reference: the reference writes distances into a
    dense matrix and then weights its non-zero entries, so a neighbour at distance
    exactly 0 (an identical descriptor, e.g. two flat superpixels of a static
    background) silently loses its edge. Here such a neighbour keeps weight
    ``exp(0) = 1``, as the algorithm intends. Distances are FAISS's float32 ones, so
    entries agree with a float64 computation to about 1e-5 relative (6e-6 measured on
    176-d descriptors of real patches), and which of two candidates at nearly the same
    distance is kept can differ.
    """
    if config.device == "cuda":
        graph = kernels("cuda").graph
        return graph.to_csr(graph.transition(*_check_inputs(descriptors, frame_offsets),
                                             config))
    indices, sq_distances = knn_graph(descriptors, frame_offsets, config)
    k = indices.shape[0]
    rows = np.arange(k)[:, None]
    weights = np.exp(-sq_distances.astype(np.float64) / config.weight_variance)
    weights[indices == rows] = 1.0
    # Canonical CSR wants ascending columns per row; padding (-1) sorts last.
    order = np.argsort(np.where(indices < 0, k, indices), axis=1, kind="stable")
    indices = np.take_along_axis(indices, order, axis=1)
    weights = np.take_along_axis(weights, order, axis=1)
    valid = indices >= 0
    counts = valid.sum(axis=1)
    indptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    row_sums = weights.sum(axis=1)  # >= 1 thanks to the self weight; padding weighs 0
    data = (weights / row_sums[:, None])[valid]
    matrix = sp.csr_matrix((data, indices[valid], indptr), shape=(k, k))
    matrix.has_sorted_indices = True
    logger.debug("transition matrix: %d superpixels, %d edges", k, matrix.nnz)
    return matrix
