"""Oracle of the neighbour graph (spec section 5): a dense transition matrix, small shots only."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..config import REFERENCE, UNLCConfig


def knn_lists(
    descriptors: np.ndarray, frame_offsets: np.ndarray, config: UNLCConfig = REFERENCE
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per superpixel: (indices, distances) of its ``min(M, c)`` nearest window candidates.

    Float64 k-d tree search over frames ``f - temporal_radius .. f + temporal_radius``;
    distances are L2 (not squared), nearest first.
    """
    descriptors = np.asarray(descriptors, dtype=np.float64)
    offsets = np.asarray(frame_offsets, dtype=np.int64)
    n = offsets.size - 1
    result = []
    for f in range(n):
        lo = offsets[max(0, f - config.temporal_radius)]
        hi = offsets[min(n, f + config.temporal_radius + 1)]
        tree = cKDTree(descriptors[lo:hi])
        m = min(config.n_neighbours, hi - lo)
        # A list of ranks keeps the output 2-D even when m == 1.
        dist, idx = tree.query(descriptors[offsets[f]:offsets[f + 1]], k=list(range(1, m + 1)))
        result.extend(zip(idx + lo, dist, strict=True))
    return result


def transition_matrix(
    descriptors: np.ndarray, frame_offsets: np.ndarray, config: UNLCConfig = REFERENCE
) -> np.ndarray:
    """Dense (k, k) float64 row-stochastic transition matrix.

    Weight ``exp(-d² / weight_variance)`` for each of a superpixel's nearest window
    candidates, 1 on the diagonal, rows divided by their sums. Unlike the reference
    code, a neighbour at distance exactly 0 keeps its weight 1 (see
    :func:`fastunlc.graph.transition_matrix`).
    """
    k = np.asarray(descriptors).shape[0]
    dense = np.zeros((k, k))
    for r, (idx, dist) in enumerate(knn_lists(descriptors, frame_offsets, config)):
        dense[r, idx] = np.exp(-dist**2 / config.weight_variance)
    dense[np.arange(k), np.arange(k)] = 1.0
    return dense / dense.sum(axis=1, keepdims=True)
