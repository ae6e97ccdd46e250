"""SLIC kernels reproducing scikit-image 0.26's ``slic`` on RGB frames, in float32.

The kernels are C++ (``csrc/slic/``, bound as ``fastunlc._C.slic``); this module gives
them their names here, allocates their working arrays (:func:`workspace`) and keeps the
constants the CUDA backend (:mod:`fastunlc._kernels.cuda.slic`) builds on.

scikit-image's steps, in its order, and what is done for each:

1. the image is rescaled by its global minimum and maximum and converted to CIELAB
   (D65, 2 degrees): a 256-entry table ``lut`` (built by the caller in float64 with
   NumPy's own operations) maps a uint8 level to its rescaled, linearised sRGB value;
   :func:`lab_rows` applies the XYZ matrix (:data:`_XYZN_FROM_RGB`), CIELAB's ``f``
   (:data:`_F_KNEE`, :data:`_F_SLOPE`, :data:`_F_OFFSET`; the cube root by three Halley
   steps from ``t ** (5/16)``) and the L, a, b formulas;
2. a Gaussian blur of each CIELAB channel along y then x (``scipy.ndimage``'s
   ``gaussian_filter``, mode ``'reflect'``: ``dcba|abcd|dcba``, :func:`reflect_table`)
   and a scaling by ``1 / compactness``: :func:`smooth_rows` (scikit-image also blurs
   along the depth axis of its one-slice volume, which is the identity up to rounding);
3. k-means in (y, x, L, a, b), always ``n_iter`` steps: every pixel goes to the first
   centre, in centre order, at the smallest distance ``((cy - y)**2 + (cx - x)**2) /
   step**2 + |colour - centre colour|**2`` among the centres whose window ``[c - 2 step,
   c + 2 step]`` (:func:`centre_windows`) holds it (it keeps its label if none does);
   centres then move to their pixels' means (:func:`kmeans_step`,
   :func:`update_centres`). The first step uses black centres, as scikit-image's does. A
   centre left without pixels is dead for good (scikit-image's becomes NaN and never
   wins a pixel again);
4. :func:`enforce_connectivity`: scikit-image's raster-order breadth-first relabelling,
   neighbour order included, which merges components smaller than ``min_size`` into
   the last differently labelled neighbour it met.

Step 3 does not try every centre of every window: tiles of ``BAND x TILE`` pixels,
stored contiguously, skip the centres that provably cannot take any of their pixels
(their distance's lower bound from the tile's colour box, :func:`colour_boxes`, exceeds
the tile's largest distance), so its result is the exhaustive search's, bit for bit.
Centre sums are integers (colours in units of ``1 / FIXED_ONE``), exact in any order.
Computing in float32 where scikit-image uses float64 (the type of ``frame / 255.``)
moves a few pixels per frame at most.

:func:`slic_frames` runs steps 1 to 4 on many frames, in parallel with OpenMP (at most
:func:`max_threads` threads, one :func:`workspace` slice each). The labels are those of
the former Numba kernels bit for bit: the same float32 operations in the same order.
"""

from __future__ import annotations

import numpy as np

from ..._C import max_threads
from ..._C import slic as _C_slic

__all__ = [
    "BAND", "FIXED_ONE", "TILE", "TILE_SIZE", "centre_windows", "colour_boxes",
    "enforce_connectivity", "kmeans_step", "lab_rows", "max_threads", "reflect_table",
    "slic_frames", "smooth_rows", "update_centres", "workspace",
]

BAND: int = _C_slic.BAND
"""Rows per band, the height of a tile (16 x 16 tiles measured fastest)."""
TILE: int = _C_slic.TILE
"""Columns per tile: one 512-bit vector of float32."""
TILE_SIZE = BAND * TILE
FIXED_ONE = 2.0**32
"""Colours are summed as integers in units of ``1 / FIXED_ONE``."""

# sRGB -> XYZ (skimage.color.colorconv.xyz_from_rgb), each row divided by the D65 white
# point's component (0.95047, 1, 1.08883) as ``xyz2lab`` divides XYZ by it. The C++
# kernel has the same float32 values (tests/test_cuda_slic.py compares the CIELAB of
# the CUDA kernels, built on these, with the C++ kernel's bit for bit).
_XYZN_FROM_RGB = (
    np.array([[0.412453, 0.357580, 0.180423],
              [0.212671, 0.715160, 0.072169],
              [0.019334, 0.119193, 0.950227]])
    / np.array([[0.95047], [1.0], [1.08883]])
).astype(np.float32)

# CIELAB's f: the cube root above the knee, SLOPE * t + OFFSET below.
_F_KNEE = np.float32(0.008856)
_F_SLOPE = np.float32(7.787)
_F_OFFSET = np.float32(16.0 / 116.0)

lab_rows = _C_slic.lab_rows
reflect_table = _C_slic.reflect_table
smooth_rows = _C_slic.smooth_rows
colour_boxes = _C_slic.colour_boxes
centre_windows = _C_slic.centre_windows
kmeans_step = _C_slic.kmeans_step
update_centres = _C_slic.update_centres
enforce_connectivity = _C_slic.enforce_connectivity
slic_frames = _C_slic.slic_frames


def workspace(h: int, w: int, workers: int) -> tuple[np.ndarray, ...]:
    """Working arrays of :func:`slic_frames` for ``workers`` frames of ``h x w`` at a time
    (index 0: worker), reused from frame to frame so that large arrays are not allocated
    (and their pages faulted in) again for every frame.

    Returns
    -------
    lab : (workers, 3, h, w) float32
        CIELAB.
    image : (workers, bands, tiles, 3, TILE_SIZE) float32
        The tiled smoothed image, ``bands = ceil(h / BAND)``, ``tiles = ceil(w / TILE)``;
        zero, since tile pixels outside the frame are computed on (then ignored).
    distance : (workers, bands, tiles, TILE_SIZE) float32
    labels : (workers, bands, tiles, TILE_SIZE) int32
        Tiled k-means distances and labels.
    raster : (workers, h, w) int32
        Raster labels before the connectivity pass.
    boxes : (workers, bands, tiles, 6) float32
        The tiles' colour boxes.
    """
    n_bands = (h + BAND - 1) // BAND
    n_tiles = (w + TILE - 1) // TILE
    return (
        np.empty((workers, 3, h, w), np.float32),
        np.zeros((workers, n_bands, n_tiles, 3, TILE_SIZE), np.float32),
        np.empty((workers, n_bands, n_tiles, TILE_SIZE), np.float32),
        np.empty((workers, n_bands, n_tiles, TILE_SIZE), np.int32),
        np.empty((workers, h, w), np.int32),
        np.empty((workers, n_bands, n_tiles, 6), np.float32),
    )
