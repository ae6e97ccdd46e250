"""Dynamic programme of Kernel Temporal Segmentation over one block of segment ends.

With the linear kernel ``K = X Xᵀ`` the scatter of the frames ``[t, l)`` is
``(Q[l] - Q[t]) - ‖S[l] - S[t]‖² / (l - t)``, where ``S`` are the prefix sums of
the feature rows and ``Q`` the prefix sums of their squared norms. The caller
hands the inner products ``S[l] · S[t]`` for a block of ends ``l`` (one BLAS
product), so no N×N matrix is ever held: the block is overwritten with the
scatters and consumed at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit


# Serial on purpose: the DP costs about half the BLAS product that feeds it,
# and Numba's OpenMP workers spinning beside OpenBLAS's threads made the whole
# 10,000-frame run four times slower on a 2-core machine.
@njit(cache=True)
def kts_block(
    gram: np.ndarray,
    first_end: int,
    norms: np.ndarray,
    sq_prefix: np.ndarray,
    cost: np.ndarray,
    back: np.ndarray,
) -> None:
    """Fill ``cost[:, l]`` and ``back[:, l]`` for the segment ends of one block.

    Parameters
    ----------
    gram : (B, >= first_end + B) float64
        ``gram[r, t] = S[first_end + r] · S[t]`` for ``t <= first_end + r``; overwritten
        with the scatter of frames ``[t, first_end + r)``.
    first_end : int
        The end ``l`` (exclusive, in frames, >= 1) of row 0 of ``gram``.
    norms : (N + 1,) float64
        ``‖S[t]‖²``.
    sq_prefix : (N + 1,) float64
        ``Q[t]``, the sum of ``‖x‖²`` over the first ``t`` frames.
    cost : (m + 1, N + 1) float64
        ``cost[k, l]``: least total scatter of the first ``l`` frames cut by ``k``
        change points; entries for ends before ``first_end`` must be final.
    back : (m + 1, N + 1) int64
        ``back[k, l]``: the last change point of that optimum (the first one among ties).
    """
    n_rows = gram.shape[0]
    n_levels = cost.shape[0]

    for r in range(n_rows):
        end = first_end + r
        for t in range(end):
            sq = norms[end] + norms[t] - 2.0 * gram[r, t]
            gram[r, t] = (sq_prefix[end] - sq_prefix[t]) - sq / (end - t)

    # Level k needs level k - 1 at every earlier end, including those of this block.
    for r in range(n_rows):
        cost[0, first_end + r] = gram[r, 0]
    for k in range(1, n_levels):
        for r in range(n_rows):
            end = first_end + r
            if end < k + 1:
                continue
            best = np.inf
            best_t = k
            for t in range(k, end):
                c = cost[k - 1, t] + gram[r, t]
                if c < best:
                    best = c
                    best_t = t
            cost[k, end] = best
            back[k, end] = best_t
