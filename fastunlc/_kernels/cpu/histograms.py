"""Six-channel colour histograms (R, G, B, L, a, b) with ``np.histogram``'s exact binning.

The reference builds each histogram with ``np.histogram(x, bins, range=(lo, hi))``:
values outside ``[lo, hi]`` are dropped (a CIELAB L a hair above 100, which other
colour conversions can give for white, falls out of ``(0, 100)``), the last bin is
closed, and a value is moved to its neighbour bin when rounding put it on the wrong
side of an edge. ``bin_index`` states that rule; the compiled kernels
(``csrc/descriptors``, ``csrc/shots``, ``csrc/regions``) follow it, so their histograms
equal NumPy's count for count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHANNEL_RANGES", "bin_index", "channel_edges"]

# Value ranges of the six channels, in the order of the descriptor.
CHANNEL_RANGES = np.array(
    [[0.0, 255.0], [0.0, 255.0], [0.0, 255.0], [0.0, 100.0], [-128.0, 127.0], [-128.0, 127.0]]
)


def channel_edges(bins: int) -> np.ndarray:
    """Bin edges ``(6, bins + 1)`` float64, the ``np.linspace`` that ``np.histogram`` uses."""
    return np.stack([np.linspace(lo, hi, bins + 1) for lo, hi in CHANNEL_RANGES])


# Plain Python: the rule the C++ kernels follow, and the source the CUDA kernels compile.
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
