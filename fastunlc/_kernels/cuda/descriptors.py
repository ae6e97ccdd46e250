"""Superpixel descriptors of a whole shot on the GPU: boxes, patches, HOG, colour histograms.

The twin of :func:`fastunlc.descriptors.superpixel_descriptors_batch` (spec section 4)
with the arithmetic of :mod:`fastunlc._kernels.cpu.descriptors`. Superpixels are
numbered across the shot (frame 0's, then frame 1's, ...), and each step is one launch
over all of them:

1. ``_init``: per superpixel, an empty box, its frame, a zeroed descriptor row;
2. ``_boxes``: per pixel of every frame, atomic min/max of x and y into its
   superpixel's box (a segmented reduction; min and max do not depend on the order);
3. ``_place``: per superpixel, the ``patch_size`` square patch on its box (the CPU's
   placement, shifted inside the frame) and the two location values;
4. ``_patch_pixels``: per patch pixel, its grey gradient's magnitude and orientation
   bin, and its six colour-histogram bins, counted with atomic adds of 1.0 (whole
   numbers: exact in any order);
5. ``_finish``: per superpixel, the HOG cells summed in the CPU's order (row-major, each
   sum rounded to float32 as scikit-image's ``float`` accumulator does), the block
   normalisation with NumPy's pairwise summation, and the L1 normalisation of the
   colour histograms.

Histogram counts and locations equal the CPU's exactly. HOG values equal them bit for
bit on the simulator (measured on every test input); on a GPU libdevice's ``hypot`` and
``atan2`` may differ from libm's by an ulp or two, which can move a cell's float32 sum
by one float32 ulp: at most about 1.2e-7 in a value in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int64

from ..cpu import descriptors as cpu_descriptors
from ..cpu.descriptors import BLOCK_NORMS
from ..cpu.histograms import channel_edges
from .arrays import as_device, launch_1d, mul_rn
from .colour import bin_index, grey_pixel, lab_pixel

_EPS = 1e-5  # scikit-image's block-normalisation epsilon
_PW_BLOCKSIZE = 128  # NumPy's pairwise-summation block
_STACK = 64  # levels of the pairwise-summation stack: each halves the run


@cuda.jit(device=True, inline=True)
def _term(a, row, i, square):
    v = a[row, i]
    return mul_rn(v, v) if square else v


@cuda.jit(device=True, inline=True)
def _block_sum(a, row, lo, n, square):
    """NumPy's sum of ``n <= 128`` values ``a[row, lo:lo + n]`` (or of their squares)."""
    if n < 8:
        total = 0.0
        for i in range(lo, lo + n):
            total += _term(a, row, i, square)
        return total
    r = cuda.local.array(8, float64)
    for j in range(8):
        r[j] = _term(a, row, lo + j, square)
    stop = n - n % 8
    for i in range(8, stop, 8):
        for j in range(8):
            r[j] += _term(a, row, lo + i + j, square)
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(stop, n):
        total += _term(a, row, lo + i, square)
    return total


@cuda.jit(device=True, inline=True)
def _pairwise_sum(a, row, n, square):
    """``np.sum(a[row, :n])`` (or ``np.sum(a[row, :n] ** 2)``) in NumPy's pairwise order:
    runs over 128 values split at half rounded down to a multiple of 8; the recursion
    of :func:`fastunlc._kernels.cpu.descriptors.pairwise_sum` on explicit stacks."""
    if n <= _PW_BLOCKSIZE:
        return _block_sum(a, row, 0, n, square)
    lo = cuda.local.array(_STACK, int64)
    size = cuda.local.array(_STACK, int64)
    visits = cuda.local.array(_STACK, int64)  # 0: new, 1: left half done, 2: both done
    sums = cuda.local.array(_STACK, float64)
    lo[0] = 0
    size[0] = n
    visits[0] = 0
    top = 0
    n_sums = 0
    while top >= 0:
        m = size[top]
        if m <= _PW_BLOCKSIZE:
            sums[n_sums] = _block_sum(a, row, lo[top], m, square)
            n_sums += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if visits[top] == 0:
            visits[top] = 1
            lo[top + 1] = lo[top]
            size[top + 1] = half
            visits[top + 1] = 0
            top += 1
        elif visits[top] == 1:
            visits[top] = 2
            lo[top + 1] = lo[top] + half
            size[top + 1] = m - half
            visits[top + 1] = 0
            top += 1
        else:
            n_sums -= 1
            sums[n_sums - 1] += sums[n_sums]
            top -= 1
    return sums[0]


# The patch placement (reference truncation and border shifts), compiled for the GPU from
# the CPU kernel's own Python source.
_place_1d = cuda.jit(device=True, inline=True)(cpu_descriptors._place_1d)


@cuda.jit
def _init(offsets, width, height, boxes, frame_of, out):
    """Empty boxes ``(w, h, -1, -1)``, the frame of each superpixel, zeroed rows."""
    s = cuda.grid(1)
    if s < boxes.shape[0]:
        boxes[s, 0] = width
        boxes[s, 1] = height
        boxes[s, 2] = -1
        boxes[s, 3] = -1
        lo = 0  # the frame f with offsets[f] <= s < offsets[f + 1]: binary search
        hi = offsets.shape[0] - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if offsets[mid] <= s:
                lo = mid
            else:
                hi = mid
        frame_of[s] = lo
        for j in range(out.shape[1]):
            out[s, j] = 0.0


@cuda.jit
def _boxes(labels, offsets, boxes, errors):
    """Atomic bounding boxes; a label outside its frame's ``[0, count)`` is counted in
    ``errors[0]`` and skipped."""
    i = cuda.grid(1)
    n, h, w = labels.shape
    if i < n * h * w:
        f = i // (h * w)
        y = (i // w) % h
        x = i % w
        label = labels[f, y, x]
        if label < 0 or label >= offsets[f + 1] - offsets[f]:
            cuda.atomic.add(errors, 0, 1)
            return
        s = offsets[f] + label
        cuda.atomic.min(boxes, (s, 0), x)
        cuda.atomic.min(boxes, (s, 1), y)
        cuda.atomic.max(boxes, (s, 2), x)
        cuda.atomic.max(boxes, (s, 3), y)


@cuda.jit
def _place(boxes, size, height, width, corners, out, errors):
    """Patch corners and location values. A superpixel without pixels is counted in
    ``errors[1]``, the first in ``errors[2]``, and its patch put at the origin so that
    the later steps still read inside the frame."""
    s = cuda.grid(1)
    if s < boxes.shape[0]:
        if boxes[s, 0] > boxes[s, 2]:
            cuda.atomic.add(errors, 1, 1)
            cuda.atomic.min(errors, 2, s)
            corners[s, 0] = 0
            corners[s, 1] = 0
            return
        y0, first_y = _place_1d(boxes[s, 1], boxes[s, 3], size, height)
        x0, first_x = _place_1d(boxes[s, 0], boxes[s, 2], size, width)
        corners[s, 0] = first_y
        corners[s, 1] = first_x
        d = out.shape[1]
        out[s, d - 2] = y0 / height
        out[s, d - 1] = x0 / width


@cuda.jit(device=True, inline=True)
def _grey_at(frames, f, y, x):
    return grey_pixel(frames[f, y, x, 0], frames[f, y, x, 1], frames[f, y, x, 2])


@cuda.jit
def _patch_pixels(frames, frame_of, corners, size, span, orientations, n_hog, edges,
                  magnitude, orientation, out):
    """Per patch pixel: gradient magnitude and orientation bin (-1: none) into the
    ``(k, size * size)`` scratch arrays, colour-histogram counts into ``out``."""
    i = cuda.grid(1)
    k, pixels = magnitude.shape
    if i >= k * pixels:
        return
    s = i // pixels
    p = i % pixels
    py = p // size
    px = p % size
    f = frame_of[s]
    y = corners[s, 0] + py
    x = corners[s, 1] + px
    bins = edges.shape[1] - 1

    lab = lab_pixel(frames[f, y, x, 0], frames[f, y, x, 1], frames[f, y, x, 2])
    for c in range(3):
        j = bin_index(float64(frames[f, y, x, c]), edges, c)
        if j >= 0:
            cuda.atomic.add(out, (s, n_hog + c * bins + j), 1.0)
        j = bin_index(lab[c], edges, 3 + c)
        if j >= 0:
            cuda.atomic.add(out, (s, n_hog + (3 + c) * bins + j), 1.0)

    if py >= span or px >= span:
        return
    # Central differences of the grey patch, zero on the patch border (scikit-image).
    g_row = 0.0
    if 0 < py < size - 1:
        g_row = _grey_at(frames, f, y + 1, x) - _grey_at(frames, f, y - 1, x)
    g_col = 0.0
    if 0 < px < size - 1:
        g_col = _grey_at(frames, f, y, x + 1) - _grey_at(frames, f, y, x - 1)
    magnitude[s, p] = math.hypot(g_col, g_row)
    # Python's modulo: a tiny negative angle becomes exactly 180.0 and falls in no bin.
    angle = mul_rn(math.atan2(g_row, g_col), 180.0 / math.pi) % 180.0
    width = 180.0 / orientations
    orientation[s, p] = -1
    for o in range(orientations):
        if width * o <= angle < width * (o + 1):
            orientation[s, p] = o
            break


@cuda.jit
def _finish(magnitude, orientation, size, orientations, cell, norm, n_hog, bins, out):
    """HOG cells, block normalisation and colour-histogram normalisation of one row."""
    s = cuda.grid(1)
    if s >= out.shape[0]:
        return
    n_cells = size // cell
    for y in range(n_cells * cell):
        for x in range(n_cells * cell):
            o = orientation[s, y * size + x]
            if o >= 0:
                j = ((y // cell) * n_cells + x // cell) * orientations + o
                out[s, j] = np.float32(out[s, j] + magnitude[s, y * size + x])
    area = float64(cell * cell)
    for j in range(n_hog):
        out[s, j] = np.float32(out[s, j] / area)

    if norm == 0 or norm == 1:  # L1, L1-sqrt (values are >= 0: abs is a no-op)
        scale = _pairwise_sum(out, s, n_hog, False) + _EPS
        for j in range(n_hog):
            out[s, j] = out[s, j] / scale
            if norm == 1:
                out[s, j] = math.sqrt(out[s, j])
    else:  # L2, L2-Hys
        scale = math.sqrt(_pairwise_sum(out, s, n_hog, True) + _EPS * _EPS)
        for j in range(n_hog):
            out[s, j] = out[s, j] / scale
        if norm == 3:
            for j in range(n_hog):
                out[s, j] = min(out[s, j], 0.2)
            scale = math.sqrt(_pairwise_sum(out, s, n_hog, True) + _EPS * _EPS)
            for j in range(n_hog):
                out[s, j] = out[s, j] / scale

    # The reference divides by ``sum + (sum < 1e-4)``: an empty histogram stays zero.
    for c in range(6):
        base = n_hog + c * bins
        total = 0.0
        for j in range(bins):
            total += out[s, base + j]
        total += 1.0 if total < 1e-4 else 0.0
        for j in range(bins):
            out[s, base + j] = out[s, base + j] / total


def superpixel_descriptors_batch(frames, labels, counts, config, *, stream=0):
    """Descriptors of every superpixel of a shot, numbered frame by frame.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8 device array or ndarray
        RGB frames, ``h, w >= config.patch_size + 1``; C-contiguous.
    labels : (n, h, w) integer device array or ndarray
        Per-frame superpixel labels, frame ``i``'s in ``[0, counts[i])``, every label
        present.
    counts : (n,) sequence of int, ndarray or device array
        Superpixels per frame (>= 1 each).
    config : UNLCConfig
        Uses ``patch_size``, ``hog_orientations``, ``hog_cell``, ``hog_block_norm`` and
        ``color_bins``.
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of every copy and launch.

    Returns
    -------
    descriptors : (k, descriptor_dim(config)) float64 device array
        ``k = sum(counts)`` rows, frame 0's superpixels first; each row the HOG of the
        grey patch, the R, G, B, L, a, b histograms and the location ``y0 / h, x0 / w``,
        as :func:`fastunlc.descriptors.superpixel_descriptors` (see the module notes
        for the agreement).
    frame_offsets : (n + 1,) int64 ndarray
        Frame ``i`` owns rows ``frame_offsets[i]:frame_offsets[i + 1]``.

    Raises
    ------
    ValueError
        If the shapes or dtypes do not fit, a frame is smaller than ``patch_size + 1``,
        a count is below 1, a label lies outside its frame's ``[0, count)`` or a label
        has no pixel. The last two are found on the GPU: checking them synchronises
        ``stream`` once, at the end.
    """
    frames = as_device(frames, stream=stream)
    labels = as_device(labels, stream=stream)
    n, h, w = _check_shapes(frames, labels, config)
    offsets = _offsets(counts, n)
    k = int(offsets[-1])
    size = config.patch_size
    n_cells = size // config.hog_cell
    n_hog = config.hog_orientations * n_cells * n_cells
    bins = config.color_bins
    dim = n_hog + 6 * bins + 2

    offsets_gpu = cuda.to_device(offsets, stream=stream)
    edges = cuda.to_device(channel_edges(bins), stream=stream)
    # Pixels with a label outside [0, count); superpixels without pixels; the first.
    errors = cuda.to_device(np.array([0, 0, k], np.int64), stream=stream)
    boxes = cuda.device_array((k, 4), np.int32, stream=stream)
    frame_of = cuda.device_array(k, np.int32, stream=stream)
    corners = cuda.device_array((k, 2), np.int32, stream=stream)
    magnitude = cuda.device_array((k, size * size), np.float64, stream=stream)
    orientation = cuda.device_array((k, size * size), np.int32, stream=stream)
    out = cuda.device_array((k, dim), np.float64, stream=stream)

    per_superpixel = launch_1d(k)
    per_pixel = launch_1d(n * h * w)
    per_patch_pixel = launch_1d(k * size * size)
    _init[per_superpixel[0], per_superpixel[1], stream](offsets_gpu, w, h, boxes, frame_of,
                                                         out)
    _boxes[per_pixel[0], per_pixel[1], stream](labels, offsets_gpu, boxes, errors)
    _place[per_superpixel[0], per_superpixel[1], stream](boxes, size, h, w, corners, out,
                                                          errors)
    _patch_pixels[per_patch_pixel[0], per_patch_pixel[1], stream](
        frames, frame_of, corners, size, n_cells * config.hog_cell, config.hog_orientations,
        n_hog, edges, magnitude, orientation, out)
    _finish[per_superpixel[0], per_superpixel[1], stream](
        magnitude, orientation, size, config.hog_orientations, config.hog_cell,
        BLOCK_NORMS[config.hog_block_norm], n_hog, bins, out)

    outside, missing, first = (int(v) for v in errors.copy_to_host(stream=stream))
    if outside:
        raise ValueError(f"{outside} pixels have a label outside their frame's [0, count)")
    if missing:
        frame = int(np.searchsorted(offsets, first, side="right") - 1)
        raise ValueError(f"{missing} labels have no pixel (first: label "
                         f"{first - offsets[frame]} of frame {frame}); each frame's labels "
                         "must be contiguous from 0")
    return out, offsets


def _check_shapes(frames, labels, config) -> tuple[int, int, int]:
    """Validate the stacks' dtypes and shapes; return ``(n, h, w)``."""
    shape, label_shape = tuple(frames.shape), tuple(labels.shape)
    if frames.dtype != np.uint8 or len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"frames must be uint8 (n, h, w, 3), got {frames.dtype} {shape}")
    if not np.issubdtype(labels.dtype, np.integer) or label_shape != shape[:3]:
        raise ValueError(f"labels must be integers of the frames' shape {shape[:3]}, got "
                         f"{labels.dtype} {label_shape}")
    side = config.patch_size + 1
    if shape[1] < side or shape[2] < side:
        raise ValueError(f"frames must be at least {side}x{side} pixels (patch_size + 1) "
                         f"to hold a descriptor patch, got {shape[1]}x{shape[2]}")
    return shape[:3]


def _offsets(counts, n: int) -> np.ndarray:
    """``(n + 1,)`` int64 row offsets from the per-frame superpixel counts."""
    if hasattr(counts, "__cuda_array_interface__") or hasattr(counts, "copy_to_host"):
        counts = as_device(counts).copy_to_host()
    counts = np.asarray(counts)
    if n == 0 and counts.size == 0:  # an empty shot (any dtype of an empty list)
        return np.zeros(1, dtype=np.int64)
    if (counts.shape != (n,) or not np.issubdtype(counts.dtype, np.integer)
            or counts.min() < 1):
        raise ValueError(f"counts must give one positive integer per frame ({n}), got "
                         f"{counts.tolist()}")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets
