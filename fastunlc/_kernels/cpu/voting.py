"""Kernels of the consensus voting: vote propagation, pixel counts, blob edits, painting.

The kernels are C++ (``csrc/regions/voting.cpp``, bound as ``fastunlc._C.regions``); their
docstrings give the shapes and dtypes. Every per-superpixel sum equals a walk over the
frame's pixels in raster order (the order of ``np.bincount`` over the flattened frame)
bit for bit. Callers guarantee label ranges (no bounds checks on labels or components).
"""

from __future__ import annotations

from ..._C import regions as _regions

foreground = _regions.foreground
label_ranges = _regions.label_ranges
low_energy_means = _regions.low_energy_means
paint_masks = _regions.paint_masks
pixel_counts = _regions.pixel_counts
propagate = _regions.propagate

__all__ = ["foreground", "label_ranges", "low_energy_means", "paint_masks", "pixel_counts",
           "propagate"]
