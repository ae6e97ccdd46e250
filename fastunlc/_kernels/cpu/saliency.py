"""Dominant-motion test and per-pair deviation maps, compiled over all pairs of a shot.

The kernels are C++ (``csrc/regions/saliency.cpp``, bound as ``fastunlc._C.regions``):

- ``pair_deviations(flows, static_magnitude, dominant_direction, direction_edges,
  deviation, kind)``: classify each flow field (P, h, w, 2) float32 as STATIC,
  TRANSLATING or NOT_DOMINANT into ``kind`` (P,) int8, and write the (unsmoothed)
  deviation map of the dominant ones into ``deviation`` (P, h, w) float64: ``m**2`` (px²)
  for static pairs, the squared wrapped angle (rad²) to the dominant direction for
  translating pairs. The median is NumPy's, the direction histogram ``np.histogram``'s.
- ``superpixel_sums(saliency, labels, offsets, rows, columns, border, sums, counts,
  peaks, bad)``: bilinear upsampling of each frame's saliency, border zeroed, summed
  per superpixel without storing the upsampled frame.

Their docstrings give the shapes and dtypes. Frames and pairs run in parallel.
"""

from __future__ import annotations

from ..._C import regions as _regions

STATIC: int = _regions.STATIC
TRANSLATING: int = _regions.TRANSLATING
NOT_DOMINANT: int = _regions.NOT_DOMINANT

pair_deviations = _regions.pair_deviations
superpixel_sums = _regions.superpixel_sums

__all__ = ["NOT_DOMINANT", "STATIC", "TRANSLATING", "pair_deviations", "superpixel_sums"]
