"""Per-pixel kernels of the consensus voting: painting votes, pixel counts, blob edits.

The kernels are C++ (``csrc/regions/voting.cpp``, in :mod:`fastunlc._C`); their
docstrings give the shapes and dtypes. Every kernel walks a frame's pixels in raster
order, so sums accumulate in exactly the order of ``np.bincount`` over the flattened
frame and agree with it bit for bit. Callers guarantee label ranges (no bounds checks
on labels or components).
"""

from __future__ import annotations

from ..._C import (
    foreground,
    label_ranges,
    low_energy_means,
    paint,
    pixel_counts,
    suppress_small,
)

__all__ = ["foreground", "label_ranges", "low_energy_means", "paint", "pixel_counts",
           "suppress_small"]
