"""SLIC superpixels (spec section 3): scikit-image's ``slic`` reimplemented in C++.

The reference calls ``skimage.segmentation.slic(frame / 255., n_segments=400,
compactness=10, max_num_iter=10, sigma=5, convert2lab=True, enforce_connectivity=True,
start_label=0)``. This module sets up what scikit-image's Python driver computes (the
seed grid, the step, the Gaussian kernel, the connectivity size bounds, the colour
table of the frame's rescaling) and runs the algorithm in
:mod:`fastunlc._kernels.cpu.slic`, in float32. Agreement with scikit-image on real frames
is measured in ``tests/test_superpixels.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .backend import kernels
from .config import REFERENCE, UNLCConfig

# scipy.ndimage.gaussian_filter's default truncation, in standard deviations.
_TRUNCATE = 4.0


class _Grid(NamedTuple):
    """Everything of a SLIC run that depends only on the frame size and the config."""

    centres: np.ndarray  # (k, 5) float32: y, x of the seeds, colours 0
    windows: np.ndarray  # (2,) int64: 2 * step along y and x
    spatial_weight: np.float32  # 1 / step**2
    guess: np.ndarray  # (bands, tiles) int32: the seed nearest to each tile's middle
    min_size: int
    max_size: int
    weights: np.ndarray  # (2 r + 1,) float32 Gaussian kernel
    scale: np.float32  # 1 / compactness


def regular_grid(shape: tuple[int, ...], n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and steps of about ``n_points`` regularly spaced points in an array of ``shape``.

    ``skimage.util.regular_grid``'s rule: steps of ``(size / n_points) ** (1 / ndim)``,
    except that dimensions too short for that step take a step of their whole length
    and the others share the rest; a dimension's first point is at half its step.

    Returns
    -------
    starts, steps : (ndim,) int64
        The points are ``range(starts[d], shape[d], steps[d])`` along dimension ``d``.
    """
    dims = np.asarray(shape)
    ndim = len(shape)
    space_size = float(np.prod(dims))
    if space_size <= n_points:
        return np.zeros(ndim, np.int64), np.ones(ndim, np.int64)
    unsort = np.argsort(np.argsort(dims))
    sorted_dims = np.sort(dims)
    steps = np.full(ndim, (space_size / n_points) ** (1.0 / ndim))
    if (sorted_dims < steps).any():
        for d in range(ndim):
            steps[d] = sorted_dims[d]
            rest = float(np.prod(sorted_dims[d + 1:]))
            steps[d + 1:] = (rest / n_points) ** (1.0 / (ndim - d - 1))
            if (sorted_dims >= steps).all():
                break
    starts = (steps // 2).astype(np.int64)
    steps = np.round(steps).astype(np.int64)
    return starts[unsort], steps[unsort]


def gaussian_weights(sigma: float, truncate: float = _TRUNCATE) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter``'s kernel, ``(2 r + 1,)`` float64 summing to 1 with
    ``r = int(truncate * sigma + 0.5)``; ``[1.]`` for ``sigma == 0`` (no smoothing)."""
    if sigma <= 0:
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


@lru_cache(maxsize=16)
def _grid(height: int, width: int, config: UNLCConfig) -> _Grid:
    """scikit-image's seeds and constants for a ``height x width`` frame (the 2-D image is
    its ``(1, height, width)`` volume, as in ``slic``), from ``config``'s ``n_segments``,
    ``slic_compactness``, ``slic_sigma`` and ``slic_{min,max}_size_factor``."""
    shape = (1, height, width)
    slic = kernels(config.device).slic
    starts, steps = regular_grid(shape, config.n_segments)
    ys, xs = np.meshgrid(np.arange(starts[1], height, steps[1]),
                         np.arange(starts[2], width, steps[2]), indexing="ij")
    n = ys.size
    # Seed nearest to the middle pixel of each kernel tile: the first centre it tries.
    mid_y = np.minimum(np.arange(0, height, slic.BAND) + slic.BAND // 2, height - 1)
    mid_x = np.minimum(np.arange(0, width, slic.TILE) + slic.TILE // 2, width - 1)
    iy = np.clip(np.rint((mid_y - starts[1]) / steps[1]), 0, ys.shape[0] - 1).astype(np.int64)
    ix = np.clip(np.rint((mid_x - starts[2]) / steps[2]), 0, ys.shape[1] - 1).astype(np.int64)
    centres = np.zeros((n, 5), np.float32)
    centres[:, 0] = ys.ravel()
    centres[:, 1] = xs.ravel()
    # slic's spatial scale is the largest initial step; the search windows use the steps
    # of a grid recomputed for the seeds actually placed.
    step = np.float32(steps.max())
    _, window_steps = regular_grid(shape, n)
    segment_size = height * width / n
    return _Grid(
        centres=centres,
        windows=2 * window_steps[1:].astype(np.int64),
        spatial_weight=np.float32(1.0 / (float(step) * float(step))),
        guess=(iy[:, None] * ys.shape[1] + ix[None, :]).astype(np.int32),
        min_size=int(config.slic_min_size_factor * segment_size),
        max_size=int(config.slic_max_size_factor * segment_size),
        weights=gaussian_weights(config.slic_sigma).astype(np.float32),
        scale=np.float32(1.0 / config.slic_compactness),
    )


_SPARE_LOCK = threading.Lock()
_SPARE: dict[tuple[int, int, int, str], list[tuple[np.ndarray, ...]]] = {}


@contextmanager
def _workspace(height: int, width: int, workers: int, device: str
               ) -> Iterator[tuple[np.ndarray, ...]]:
    """The SLIC kernel's ``workspace``, reused across calls: allocating its ~12 MB per
    worker afresh costs each frame some 2,000 page faults (~3 ms). Spares are kept for
    one frame size at a time; concurrent callers get separate workspaces."""
    key = (height, width, workers, device)
    with _SPARE_LOCK:
        spare = _SPARE.get(key)
        arrays = spare.pop() if spare else None
    if arrays is None:
        arrays = kernels(device).slic.workspace(height, width, workers)
    try:
        yield arrays
    finally:
        with _SPARE_LOCK:
            if key not in _SPARE:
                _SPARE.clear()
            _SPARE.setdefault(key, []).append(arrays)


def _colour_tables(frames: np.ndarray) -> np.ndarray:
    """Linearised sRGB value of every uint8 level, per frame: ``(n, 256)`` float32.

    ``slic`` rescales ``frame / 255.`` by its minimum and maximum (over all channels),
    then ``rgb2lab`` undoes the sRGB gamma; both act level by level, so they are done
    here once per level, in float64 with the same NumPy operations.
    """
    flat = frames.reshape(len(frames), -1)
    lo = flat.min(axis=1)[:, None] / 255.0
    hi = flat.max(axis=1)[:, None] / 255.0
    levels = np.arange(256) / 255.0 - lo
    span = hi - lo
    levels = np.divide(levels, span, out=levels, where=span != 0)
    high = levels > 0.04045
    levels[high] = np.power((levels[high] + 0.055) / 1.055, 2.4)
    levels[~high] /= 12.92
    return levels.astype(np.float32)


def _check(frames: np.ndarray, ndim: int, what: str) -> np.ndarray:
    shape = "(h, w, 3)" if ndim == 3 else "(n, h, w, 3)"
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise ValueError(f"{what} must be a uint8 {shape} array, got dtype {dtype}")
    if frames.ndim != ndim or frames.shape[-1] != 3 or 0 in frames.shape[:-1]:
        raise ValueError(f"{what} must be a uint8 {shape} array, got shape {frames.shape}")
    return np.ascontiguousarray(frames)


def slic_superpixels(frame: np.ndarray, config: UNLCConfig = REFERENCE) -> tuple[np.ndarray, int]:
    """SLIC superpixels of one frame, labels 0-based and contiguous.

    Parameters
    ----------
    frame : (h, w, 3) uint8
        RGB frame.
    config : UNLCConfig
        Uses ``n_segments`` (400), ``slic_compactness`` (10), ``slic_max_iter`` (10),
        ``slic_sigma`` (5, Gaussian pre-smoothing in pixels) and
        ``slic_min_size_factor`` / ``slic_max_size_factor`` (0.5 / 3, the connectivity
        step's size bounds relative to the mean segment size).

    Returns
    -------
    labels : (h, w) int32
        Superpixel of every pixel, in ``[0, n_labels)``, every label used, each
        superpixel 4-connected.
    n_labels : int

    Raises
    ------
    ValueError
        ``frame`` is not a non-empty uint8 ``(h, w, 3)`` array.

    Notes
    -----
    scikit-image's SLIC (``slic(frame / 255., ..., convert2lab=True,
    enforce_connectivity=True, start_label=0)``), computed in float32: the one-frame
    case of :func:`slic_superpixels_batch`, which the pipeline runs. See
    :mod:`fastunlc._kernels.cpu.slic`.
    """
    labels, counts = slic_superpixels_batch(_check(frame, 3, "frame")[None], config)
    return labels[0], int(counts[0])


def slic_superpixels_batch(frames: np.ndarray, config: UNLCConfig = REFERENCE
                           ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`slic_superpixels` of every frame of a shot, frames in parallel.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8
        RGB frames of one size.
    config : UNLCConfig
        As for :func:`slic_superpixels`.

    Returns
    -------
    labels : (n, h, w) int32
        Per-frame labels, each frame's in ``[0, counts[i])``; equal to
        :func:`slic_superpixels` frame by frame.
    counts : (n,) int64
        Superpixels per frame.

    Raises
    ------
    ValueError
        ``frames`` is not a non-empty uint8 ``(n, h, w, 3)`` array.
    """
    frames = _check(frames, 4, "frames")
    if config.device == "cuda":  # every frame at once, labels equal to the CPU's
        labels, counts = kernels("cuda").slic.slic_superpixels_batch(frames, config)
        return labels.copy_to_host(), counts
    n, h, w = frames.shape[:3]
    grid = _grid(h, w, config)
    labels = np.empty((n, h, w), np.int32)
    counts = np.empty(n, np.int64)
    slic = kernels(config.device).slic
    with _workspace(h, w, min(slic.max_threads(), n), config.device) as arrays:
        slic.slic_frames(
            frames, _colour_tables(frames), grid.weights, grid.scale, grid.centres,
            grid.windows, grid.spatial_weight, grid.guess, config.slic_max_iter,
            grid.min_size, grid.max_size, *arrays, labels, counts)
    return labels, counts
