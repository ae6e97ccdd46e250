"""Superpixel descriptor kernels: bounding boxes, patch placement, HOG and colour histograms.

The kernels are compiled C++ (``csrc/descriptors``, ``fastunlc._C.descriptors``); their
docstrings give the contracts. The HOG reproduces ``skimage.feature.hog`` (checked
against scikit-image 0.26) on a grey patch with one block covering all cells, bit for
bit: central differences zero on the patch border, ``hypot`` magnitudes, unsigned
orientations ``degrees(atan2(g_row, g_col)) % 180`` with Python's modulo, float32 cell
sums as scikit-image's Cython kernel, and NumPy's pairwise summation for the block
normalisation (``pairwise_sum``).
"""

from __future__ import annotations

from ..._C import descriptors as _descriptors

gather_patches = _descriptors.gather_patches
pairwise_sum = _descriptors.pairwise_sum
patch_descriptors = _descriptors.patch_descriptors
place_patches = _descriptors.place_patches
region_boxes = _descriptors.region_boxes

__all__ = [
    "BLOCK_NORMS",
    "gather_patches",
    "pairwise_sum",
    "patch_descriptors",
    "place_patches",
    "region_boxes",
]

# Block normalisations, numbered for the kernels (scikit-image's names).
BLOCK_NORMS = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}


def _place_1d(lo: int, hi: int, size: int, extent: int) -> tuple[int, int]:
    """Patch start along one axis for a box ``[lo, hi]``: ``(unclipped, clipped)``.

    The unclipped start is the reference's ``int((lo + hi - size) / 2)``: true
    division, then truncation toward zero (not floor: -6.5 gives -6). The reference
    then clips start and end to ``[0, extent - 1]`` and shifts a patch cut at the
    low border to ``[0, size)`` and one cut at the high border to
    ``[extent - 1 - size, extent - 1)``: the last row or column is never in a patch.

    The rule of ``place_patches`` in plain Python, the source that the CUDA kernels
    compile (``fastunlc._kernels.cuda.descriptors``).
    """
    start = int((lo + hi - size) / 2)
    first = max(0, min(start, extent - 1))
    end = max(0, min(start + size, extent - 1))
    if first == 0:
        end = size
    if end == extent - 1:
        first = end - size
    return start, first
