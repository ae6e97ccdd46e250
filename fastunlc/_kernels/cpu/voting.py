"""Kernels of the consensus voting: vote propagation, pixel counts, blob edits, painting.

The kernels are C++ (``csrc/regions/voting.cpp``, in :mod:`fastunlc._C`); their
docstrings give the shapes and dtypes. Every per-superpixel sum equals a walk over the
frame's pixels in raster order (the order of ``np.bincount`` over the flattened frame)
bit for bit. Callers guarantee label ranges (no bounds checks on labels or components).
"""

from __future__ import annotations

from ..._C import (
    foreground,
    label_ranges,
    low_energy_means,
    paint_masks,
    pixel_counts,
    propagate,
)

__all__ = ["foreground", "label_ranges", "low_energy_means", "paint_masks", "pixel_counts",
           "propagate"]
