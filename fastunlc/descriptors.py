"""Superpixel descriptors: HOG, colour histograms and location of a patch per superpixel.

Spec section 4. Each superpixel is described by the ``patch_size x patch_size``
patch centred on its bounding box (shifted inside the frame where it would cross a
border): the HOG of the grey patch (54 dims by default), six colour histograms
(R, G, B, CIELAB L, a, b; 120 dims) and the patch's top-left corner relative to
the frame size (2 dims), in that order, 176 dims in all.

The values equal the reference's per-patch ``skimage.feature.hog`` /
``np.histogram`` computation (``fastunlc.reference.descriptors``): the histograms
count for count, the HOG to the last bit on the inputs tested. The work per frame
is one pass over the label map for the boxes, one gather of the patches, the grey
conversion of the gathered patches and the CIELAB conversion of their distinct colours
only, then a compiled loop over superpixels in parallel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from skimage.color import rgb2gray

from fastunlc.backend import kernels
from fastunlc.colour import distinct_colours_lab
from fastunlc.config import REFERENCE, UNLCConfig

log = logging.getLogger(__name__)


def descriptor_dim(config: UNLCConfig = REFERENCE) -> int:
    """Length of one descriptor for ``config``.

    ``hog_orientations * (patch_size // hog_cell)**2 + 6 * color_bins + 2``: 176 for
    the reference parameters (54 HOG + 120 colour + 2 location).
    """
    n_cells = config.patch_size // config.hog_cell
    return config.hog_orientations * n_cells * n_cells + 6 * config.color_bins + 2


def _check_frame(
    frame: np.ndarray, labels: np.ndarray, n_labels: int, config: UNLCConfig,
    lab: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate one frame's inputs; return C-contiguous frame, int32 labels and float64 lab."""
    frame = np.asarray(frame)
    labels = np.asarray(labels)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("frame must be a uint8 RGB array of shape (h, w, 3), got "
                         f"{frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    side = config.patch_size + 1
    if h < side or w < side:
        raise ValueError(f"frame must be at least {side}x{side} pixels (patch_size + 1) to "
                         f"hold a descriptor patch, got {h}x{w}")
    if labels.shape != (h, w):
        raise ValueError(f"labels must have the frame's shape {(h, w)}, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if int(n_labels) != n_labels or n_labels < 1:
        raise ValueError(f"n_labels must be a positive integer, got {n_labels!r}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n_labels:
        raise ValueError(f"labels must lie in [0, n_labels) = [0, {n_labels}), got "
                         f"{lo} .. {hi}")
    if lab is not None:
        lab = np.asarray(lab)
        if lab.shape != frame.shape:
            raise ValueError(f"lab must have the frame's shape {frame.shape}, got {lab.shape}")
        lab = np.ascontiguousarray(lab, dtype=np.float64)
    return np.ascontiguousarray(frame), np.ascontiguousarray(labels, dtype=np.int32), lab


def superpixel_descriptors(
    frame: np.ndarray,
    labels: np.ndarray,
    n_labels: int,
    config: UNLCConfig = REFERENCE,
    *,
    lab: np.ndarray | None = None,
) -> np.ndarray:
    """Descriptors of the superpixels of one frame.

    Parameters
    ----------
    frame : (h, w, 3) uint8 ndarray
        RGB frame, ``h, w >= config.patch_size + 1``.
    labels : (h, w) integer ndarray
        Superpixel label of every pixel, in ``[0, n_labels)``; every label present.
    n_labels : int
        Number of superpixels (>= 1).
    config : UNLCConfig, optional
        Uses ``patch_size``, ``hog_orientations``, ``hog_cell``, ``hog_block_norm``,
        ``color_bins`` and ``device``.
    lab : (h, w, 3) float64 ndarray, optional
        ``skimage.color.rgb2lab(frame)`` if the caller already has it. By default
        only the patches are converted (the same values: the conversion is per pixel).

    Returns
    -------
    descriptors : (n_labels, descriptor_dim(config)) float64 ndarray
        Row ``s`` describes label ``s``: the HOG of the grey patch
        (``orientations * (patch_size // hog_cell)**2`` values in [0, 1], order
        (cell row, cell column, orientation)), the R, G, B, L, a, b histograms of
        the patch (``color_bins`` each over [0, 255], [0, 100], [-128, 127],
        each summing to 1, or 0 if no pixel falls in the range), and ``y0 / h``,
        ``x0 / w`` with ``(y0, x0)`` the patch's top-left corner before it is
        shifted inside the frame (slightly negative near the top or left border).

    Raises
    ------
    ValueError
        If ``frame`` is not uint8 (h, w, 3) or is smaller than ``patch_size + 1``,
        if ``labels`` does not match it or holds a value outside ``[0, n_labels)``,
        if a label in ``[0, n_labels)`` has no pixel, or if ``lab`` has the wrong shape.

    Notes
    -----
    The patch of a superpixel with bounding box ``[xmin, xmax]`` starts at
    ``x0 = int((xmin + xmax - patch_size) / 2)`` (truncated toward zero), as in
    the reference; a patch crossing the left border is moved to ``[0, patch_size)``,
    one reaching the last column to ``[w - 1 - patch_size, w - 1)``: like the
    reference, a patch never includes the last column or row. Same for y.
    """
    frame, labels, lab = _check_frame(frame, labels, n_labels, config, lab)
    h, w = labels.shape
    size = config.patch_size
    backend = kernels(config.device)
    kernel = backend.descriptors

    boxes = kernel.region_boxes(labels, n_labels)
    missing = np.flatnonzero(boxes[:, 0] > boxes[:, 2])
    if missing.size:
        raise ValueError(f"{missing.size} of the labels 0 .. {n_labels - 1} have no "
                         f"pixel (first: {missing[0]}); labels must be contiguous")
    starts, corners = kernel.place_patches(boxes, size, h, w)

    rgb = np.empty((n_labels, size, size, 3), dtype=np.uint8)
    kernel.gather_patches(frame, corners, rgb)
    if lab is None:
        # Each distinct colour of the patches converted once; the kernel reads a pixel's
        # CIELAB through its colour's index, so the per-pixel array is never built.
        distinct = distinct_colours_lab(rgb, device=config.device)
        colours_lab = distinct.lab
        colour_of = distinct.inverse.reshape(n_labels, size, size)
    else:
        lab_patches = np.empty((n_labels, size, size, 3))
        kernel.gather_patches(lab, corners, lab_patches)
        colours_lab = lab_patches.reshape(-1, 3)
        colour_of = np.arange(colours_lab.shape[0], dtype=np.int32).reshape(n_labels, size, size)
    # scikit-image's grey conversion of the same patches, so that the HOG input is
    # the reference's to the last bit (a hand-written weighted sum differs by 1 ulp).
    grey = np.ascontiguousarray(rgb2gray(rgb))

    out = np.empty((n_labels, descriptor_dim(config)))
    kernel.patch_descriptors(grey, rgb, colours_lab, colour_of,
                             backend.histograms.channel_edges(config.color_bins),
                             config.hog_orientations, config.hog_cell,
                             kernel.BLOCK_NORMS[config.hog_block_norm], out)
    out[:, -2] = starts[:, 0] / h
    out[:, -1] = starts[:, 1] / w
    return out


def superpixel_descriptors_batch(
    frames: np.ndarray,
    labels: np.ndarray,
    n_labels: Sequence[int] | np.ndarray | None = None,
    config: UNLCConfig = REFERENCE,
    *,
    lab: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of the superpixels of a stack of frames (a shot), numbered frame by frame.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8 ndarray
        RGB frames.
    labels : (n, h, w) integer ndarray
        Per-frame superpixel labels, each frame's contiguous from 0.
    n_labels : (n,) sequence of int, optional
        Superpixels per frame; by default ``labels[i].max() + 1``.
    config : UNLCConfig, optional
        As for ``superpixel_descriptors``.
    lab : (n, h, w, 3) float64 ndarray, optional
        CIELAB of the frames if the caller already has it.

    Returns
    -------
    descriptors : (k, descriptor_dim(config)) float64 ndarray
        ``k = sum(n_labels)`` rows: frame 0's superpixels, then frame 1's, ...
    frame_offsets : (n + 1,) int64 ndarray
        Frame ``i`` owns rows ``frame_offsets[i]:frame_offsets[i + 1]``.

    Raises
    ------
    ValueError
        As ``superpixel_descriptors``, or if the stacks' lengths or shapes disagree.
    """
    frames = np.asarray(frames)
    labels = np.asarray(labels)
    if frames.ndim != 4 or labels.ndim != 3 or frames.shape[0] != labels.shape[0]:
        raise ValueError("frames (n, h, w, 3) and labels (n, h, w) must be stacks of the same "
                         f"length, got {frames.shape} and {labels.shape}")
    n = frames.shape[0]
    if n_labels is None:
        n_labels = [int(labels[i].max()) + 1 for i in range(n)]
    if len(n_labels) != n or any(int(c) < 1 for c in n_labels):
        raise ValueError(f"n_labels must give one positive count per frame ({n}), got "
                         f"{list(n_labels)}")
    if lab is not None and np.shape(lab)[:1] != (n,):
        raise ValueError(f"lab must be a stack of {n} frames, got shape {np.shape(lab)}")

    if config.device == "cuda":  # the whole shot at once; labels are checked there
        out, offsets = kernels("cuda").descriptors.superpixel_descriptors_batch(
            frames, labels, np.asarray(n_labels, np.int64), config)
        return out.copy_to_host(), offsets
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(n_labels)
    out = np.empty((int(offsets[-1]), descriptor_dim(config)))
    for i in range(n):
        out[offsets[i]:offsets[i + 1]] = superpixel_descriptors(
            frames[i], labels[i], int(n_labels[i]), config,
            lab=None if lab is None else lab[i])
    log.debug("descriptors of %d superpixels in %d frames", offsets[-1], n)
    return out, offsets
