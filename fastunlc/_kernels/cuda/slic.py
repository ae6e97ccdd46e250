"""SLIC superpixels of a whole shot on the GPU: the CPU backend's labels, bit for bit.

:func:`slic_superpixels_batch` runs :mod:`fastunlc._kernels.cpu.slic`'s algorithm
(scikit-image 0.26's ``slic``, in float32) on every frame of a shot at once, each step
one launch over all frames x pixels (or frames x centres):

1. the frame's minimum and maximum (a block reduction), the 256-level table of the
   rescaled, linearised sRGB values (float64, as NumPy computes it on the CPU) and the
   CIELAB conversion with the CPU kernel's float32 operations and constants;
2. the Gaussian blur along y, then x, with scipy's kernel and ``'reflect'`` borders,
   each sum adding the pair terms farthest first, as the CPU kernel does;
3. ``n_iter`` k-means steps, each three launches: the centres whose search window
   meets each cell of a coarse grid (cells of one seed step), listed in centre order,
   every pixel then scanning its cell's centres and keeping the first at the smallest
   distance (scikit-image's tie rule), and the centre update. Centre sums are int64 atomics over
   the pixels that changed centre (colours in units of ``1 / FIXED_ONE``), so they are
   the CPU's integers exactly; a centre left without pixels dies, as on the CPU;
4. :func:`enforce_connectivity`: scikit-image's raster-order relabelling rebuilt from
   parallel pieces (see its Notes).

Every floating-point multiply goes through :func:`_mul` or :func:`_mul64`, CUDA's
``__fmul_rn`` and ``__dmul_rn``: NVVM fuses a plain ``a * b + c`` into one fused
multiply-add (rounded once), which the CPU never does, and Numba CUDA 0.30 has no
switch to stop it; an explicitly rounded multiply is never fused (the PTX is checked in
``tests/test_cuda_slic.py``). Divisions and square roots are IEEE (Numba's defaults).
The one operation that is not the CPU's own is the colour table's ``x ** 2.4``: CUDA's
``pow`` (within 2 ulp in float64) instead of NumPy's, rounded to float32 afterwards, so
an entry can differ (by one float32 ulp) only where the two float64 results straddle a
float32 rounding boundary: a chance of about 4 in 10**9 per entry.

Nothing is copied between host and device but the frames (when given on the host) and
the counts at the end, which the call waits for.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import cuda, int32, int64

from ...config import REFERENCE, UNLCConfig
from ...superpixels import gaussian_weights, regular_grid

# The CPU kernel's constants, so that both backends compute with the same float32 values.
from ..cpu.slic import _F_KNEE, _F_OFFSET, _F_SLOPE, _XYZN_FROM_RGB, FIXED_ONE
from .arrays import SIMULATOR, as_device, launch_1d
from .arrays import mul_rn as _mul64
from .arrays import mul_rn32 as _mul

CELL_CAPACITY = 64
"""Centres listed per cell; a cell whose windows hold more scans every centre (seed-grid
cells meet about 25 to 36 windows)."""
_RANGE_THREADS = 128  # threads of a block of the frame-range reduction
_RANGE_PIXELS = 2048  # pixels per block of that reduction, at least
_SCAN_THREADS = 256  # threads of the one block per frame that numbers the superpixels

_FAR = np.float32(np.finfo(np.float32).max)
_UNFIXED = 1.0 / FIXED_ONE
_NONE = np.iinfo(np.int32).max  # no big component in the frame
_TWO = np.float32(2.0)
_L_SCALE = np.float32(116.0)
_L_OFFSET = np.float32(16.0)
_A_SCALE = np.float32(500.0)
_B_SCALE = np.float32(200.0)

if SIMULATOR:
    # The simulator runs kernels as Python on NumPy scalars, where a float32 product
    # rounds once, as __fmul_rn's does. Its device functions are Python functions
    # behind a wrapper that swaps module globals on every call; plain functions (which
    # see the kernel's simulated cuda module all the same) take a third less time.
    def _device_function(function):
        return function
else:
    _device_function = cuda.jit(device=True, inline=True)


class _Plan(NamedTuple):
    """What a SLIC run computes from the frame size and the config alone (as
    :mod:`fastunlc.superpixels` does for the CPU kernel)."""

    seed_start: tuple[int, int]  # first seed's row and column
    seed_step: tuple[int, int]  # seed spacing along y and x
    seed_columns: int  # seeds per row
    n_centres: int
    half: tuple[int, int]  # search window half-sizes 2 * step along y and x
    cell: tuple[int, int]  # cell height and width
    cells: tuple[int, int]  # cells along y and x
    spatial_weight: np.float32  # 1 / step**2
    scale: np.float32  # 1 / compactness
    # (2 r + 1,) float32 Gaussian kernel, a tuple: a kernel argument, no copy to make
    weights: tuple[np.float32, ...]
    min_size: int
    max_size: int


@lru_cache(maxsize=16)
def _plan(height: int, width: int, config: UNLCConfig) -> _Plan:
    """scikit-image's seeds and constants for ``height x width`` frames (the 2-D image
    is its ``(1, height, width)`` volume, as in ``slic``)."""
    shape = (1, height, width)
    starts, steps = regular_grid(shape, config.n_segments)
    rows = len(range(starts[1], height, steps[1]))
    columns = len(range(starts[2], width, steps[2]))
    n = rows * columns
    step = float(steps.max())
    # The search windows use the steps of a grid recomputed for the seeds placed.
    _, window_steps = regular_grid(shape, n)
    cell = (max(1, int(window_steps[1])), max(1, int(window_steps[2])))
    segment_size = height * width / n
    return _Plan(
        seed_start=(int(starts[1]), int(starts[2])),
        seed_step=(int(steps[1]), int(steps[2])),
        seed_columns=columns,
        n_centres=n,
        half=(2 * int(window_steps[1]), 2 * int(window_steps[2])),
        cell=cell,
        cells=(-(-height // cell[0]), -(-width // cell[1])),
        spatial_weight=np.float32(1.0 / (step * step)),
        scale=np.float32(1.0 / config.slic_compactness),
        weights=tuple(gaussian_weights(config.slic_sigma).astype(np.float32)),
        min_size=int(config.slic_min_size_factor * segment_size),
        max_size=int(config.slic_max_size_factor * segment_size),
    )


# ---------------------------------------------------------------- colour and smoothing


@cuda.jit(cache=True)
def _frame_range(frames, bounds):
    """Minimum and maximum over all channels of a share of each frame: block ``(i, f)``
    reduces its share of frame ``f`` into ``bounds[f, i]`` ((n, blocks, 2) int32)."""
    f = cuda.blockIdx.y
    t = cuda.threadIdx.x
    h = frames.shape[1]
    w = frames.shape[2]
    lo = 255
    hi = 0
    i = cuda.blockIdx.x * cuda.blockDim.x + t
    while i < h * w:
        y = i // w
        x = i - y * w
        for c in range(3):
            v = int32(frames[f, y, x, c])
            lo = min(lo, v)
            hi = max(hi, v)
        i += cuda.gridDim.x * cuda.blockDim.x
    low = cuda.shared.array(_RANGE_THREADS, int32)
    high = cuda.shared.array(_RANGE_THREADS, int32)
    low[t] = lo
    high[t] = hi
    cuda.syncthreads()
    s = _RANGE_THREADS // 2
    while s > 0:
        if t < s:
            low[t] = min(low[t], low[t + s])
            high[t] = max(high[t], high[t + s])
        cuda.syncthreads()
        s //= 2
    if t == 0:
        bounds[f, cuda.blockIdx.x, 0] = low[0]
        bounds[f, cuda.blockIdx.x, 1] = high[0]


@cuda.jit(cache=True)
def _colour_tables(bounds, tables):
    """``tables`` (n, 256) float32: the linearised sRGB value of each uint8 level after
    ``slic``'s rescaling of ``frame / 255.`` by the frame's minimum and maximum (from
    the shares in ``bounds``, :func:`_frame_range`'s), in float64 with NumPy's
    operations (see ``fastunlc.superpixels._colour_tables``)."""
    i = cuda.grid(1)
    if i >= tables.size:
        return
    f = i // 256
    level = i - f * 256
    low = 255
    high = 0
    for share in range(bounds.shape[1]):
        low = min(low, bounds[f, share, 0])
        high = max(high, bounds[f, share, 1])
    lo = low / 255.0
    span = high / 255.0 - lo
    v = level / 255.0 - lo
    if span != 0:
        v = v / span
    if v > 0.04045:
        v = math.pow((v + 0.055) / 1.055, 2.4)
    else:
        v = v / 12.92
    tables[f, level] = v


@_device_function
def _sqrt(x):
    """float32 square root (the simulator's ``math.sqrt`` returns a float64)."""
    return np.float32(math.sqrt(x))


@_device_function
def _lab_f(t):
    """The CPU kernel's CIELAB ``f`` of float32 ``t``, operation for operation: the cube
    root from ``t ** (5/16)`` and three Halley steps above the knee, the linear segment
    below."""
    c = max(t, _F_KNEE)
    q = _sqrt(_sqrt(c))
    y = _mul(q, _sqrt(_sqrt(q)))
    for _ in range(3):
        y3 = _mul(_mul(y, y), y)
        y = _mul(y, y3 + _mul(_TWO, c)) / (_mul(_TWO, y3) + c)
    return y if t > _F_KNEE else _mul(_F_SLOPE, t) + _F_OFFSET


@cuda.jit(cache=True)
def _lab(frames, tables, lab, labels):
    """CIELAB of every pixel into ``lab`` (3, n, h, w) float32 through the frame's
    colour table; ``labels`` (n, h, w) int32 set to -1 (no centre yet)."""
    p = cuda.grid(1)
    n, h, w = labels.shape
    if p >= n * h * w:
        return
    f = p // (h * w)
    y = p // w - f * h
    x = p % w
    m = _XYZN_FROM_RGB
    r = tables[f, frames[f, y, x, 0]]
    g = tables[f, frames[f, y, x, 1]]
    b = tables[f, frames[f, y, x, 2]]
    fx = _lab_f(_mul(r, m[0, 0]) + _mul(g, m[0, 1]) + _mul(b, m[0, 2]))
    fy = _lab_f(_mul(r, m[1, 0]) + _mul(g, m[1, 1]) + _mul(b, m[1, 2]))
    fz = _lab_f(_mul(r, m[2, 0]) + _mul(g, m[2, 1]) + _mul(b, m[2, 2]))
    lab[0, f, y, x] = _mul(_L_SCALE, fy) - _L_OFFSET
    lab[1, f, y, x] = _mul(_A_SCALE, fx - fy)
    lab[2, f, y, x] = _mul(_B_SCALE, fy - fz)
    labels[f, y, x] = -1


@_device_function
def _reflect(i, n):
    """Source of position ``i`` of a line of ``n`` samples extended as scipy.ndimage's
    ``'reflect'`` (``dcba|abcd|dcba``, repeated for lines shorter than the kernel)."""
    j = i % (2 * n)  # Numba's % is Python's: never negative here
    return j if j < n else 2 * n - 1 - j


@cuda.jit(cache=True)
def _blur_columns(source, weights, out):
    """Correlate each channel of ``source`` (3, n, h, w) float32 with ``weights`` (a
    tuple of 2 r + 1 float32) along y into ``out``: the centre term, then the pair
    terms farthest first."""
    p = cuda.grid(1)
    n, h, w = source.shape[1:]
    if p >= n * h * w:
        return
    f = p // (h * w)
    y = p // w - f * h
    x = p % w
    r = len(weights) // 2
    for c in range(3):
        total = _mul(source[c, f, y, x], weights[r])
        for j in range(r, 0, -1):
            total += _mul(source[c, f, _reflect(y - j, h), x]
                          + source[c, f, _reflect(y + j, h), x], weights[r - j])
        out[c, f, y, x] = total


@cuda.jit(cache=True)
def _blur_rows(source, weights, scale, out):
    """As :func:`_blur_columns` along x, times ``scale`` (1 / compactness)."""
    p = cuda.grid(1)
    n, h, w = source.shape[1:]
    if p >= n * h * w:
        return
    f = p // (h * w)
    y = p // w - f * h
    x = p % w
    r = len(weights) // 2
    for c in range(3):
        total = _mul(source[c, f, y, x], weights[r])
        for j in range(r, 0, -1):
            total += _mul(source[c, f, y, _reflect(x - j, w)]
                          + source[c, f, y, _reflect(x + j, w)], weights[r - j])
        out[c, f, y, x] = _mul(total, scale)


# ---------------------------------------------------------------------------- k-means


@_device_function
def _set_window(windows, f, k, cy, cx, half_y, half_x, h, w):
    """Centre ``k``'s search window as scikit-image computes it: rows
    ``[int(max(cy - half_y, 0)), int(min(cy + half_y + 1, h)))``, likewise columns, from
    the float32 centre widened to float64."""
    y = np.float64(cy)
    x = np.float64(cx)
    windows[f, k, 0] = int(max(y - half_y, 0.0))
    windows[f, k, 1] = int(min(y + half_y + 1, np.float64(h)))
    windows[f, k, 2] = int(max(x - half_x, 0.0))
    windows[f, k, 3] = int(min(x + half_x + 1, np.float64(w)))


@cuda.jit(cache=True)
def _seed_centres(centres, windows, sums, start_y, start_x, step_y, step_x, columns,
                  half_y, half_x, h, w):
    """Centres on the seed grid, black (scikit-image starts them at colour 0), their
    windows, and zero sums; ``centres`` (n, k, 5) float32 ``y, x, L, a, b``, ``windows``
    (n, k, 4) int32 ``y0, y1, x0, x1``, ``sums`` (n, k, 6) int64."""
    i = cuda.grid(1)
    n, k_all = centres.shape[:2]
    if i >= n * k_all:
        return
    f = i // k_all
    k = i - f * k_all
    cy = np.float32(start_y + (k // columns) * step_y)
    cx = np.float32(start_x + (k % columns) * step_x)
    centres[f, k, 0] = cy
    centres[f, k, 1] = cx
    for c in range(2, 5):
        centres[f, k, c] = 0
    for c in range(6):
        sums[f, k, c] = 0
    _set_window(windows, f, k, cy, cx, half_y, half_x, h, w)


@cuda.jit(cache=True)
def _list_cells(windows, cell_h, cell_w, h, w, cells, counts):
    """The centres, in index order, whose window meets each cell into ``cells``
    (n, n_cells, capacity) int32, their number into ``counts`` (n, n_cells) int32, -1
    where they do not fit (the cell's pixels then scan every centre). Dead centres have
    empty windows and meet nothing."""
    i = cuda.grid(1)
    n, n_cells, capacity = cells.shape
    if i >= n * n_cells:
        return
    f = i // n_cells
    cell = i - f * n_cells
    columns = (w + cell_w - 1) // cell_w
    r0 = (cell // columns) * cell_h
    c0 = (cell % columns) * cell_w
    r1 = min(r0 + cell_h, h)
    c1 = min(c0 + cell_w, w)
    m = 0
    for k in range(windows.shape[1]):
        if (windows[f, k, 0] < r1 and windows[f, k, 1] > r0 and windows[f, k, 2] < c1
                and windows[f, k, 3] > c0):
            if m < capacity:
                cells[f, cell, m] = k
            m += 1
    counts[f, cell] = m if m <= capacity else -1


@_device_function
def _fixed(v):
    """A colour as the integer the CPU sums: ``int64(float64(v) * FIXED_ONE)``, exact."""
    return int64(_mul64(np.float64(v), FIXED_ONE))


@cuda.jit(cache=True)
def _assign(image, centres, windows, cells, counts, cell_h, cell_w, spatial_weight,
            labels, sums):
    """One assignment step: every pixel goes to the first centre at the smallest
    distance among those whose window holds it (it keeps its centre if none does), the
    distance computed as the CPU kernel does (cells list centres in index order, so the
    strict ``<`` keeps the first); a pixel that changes centre moves its count, ``y``,
    ``x`` and fixed-point colours between the centres' ``sums``."""
    p = cuda.grid(1)
    n, h, w = labels.shape
    if p >= n * h * w:
        return
    f = p // (h * w)
    y = p // w - f * h
    x = p % w
    columns = (w + cell_w - 1) // cell_w
    cell = (y // cell_h) * columns + x // cell_w
    listed = counts[f, cell]
    candidates = listed if listed >= 0 else windows.shape[1]
    yf = np.float32(y)
    xf = np.float32(x)
    cl = image[0, f, y, x]
    ca = image[1, f, y, x]
    cb = image[2, f, y, x]
    before = labels[f, y, x]
    owner = before
    best = _FAR
    for j in range(candidates):
        k = cells[f, cell, j] if listed >= 0 else j
        if (y >= windows[f, k, 0] and y < windows[f, k, 1] and x >= windows[f, k, 2]
                and x < windows[f, k, 3]):
            dy = centres[f, k, 0] - yf
            dx = centres[f, k, 1] - xf
            # scikit-image's operation order: the spatial term, then the colour terms.
            d = _mul(_mul(dy, dy) + _mul(dx, dx), spatial_weight)
            v = cl - centres[f, k, 2]
            colour = _mul(v, v)
            v = ca - centres[f, k, 3]
            colour += _mul(v, v)
            v = cb - centres[f, k, 4]
            colour += _mul(v, v)
            d += colour
            if d < best:
                best = d
                owner = k
    if owner == before:
        return
    labels[f, y, x] = owner
    values = (int64(1), int64(y), int64(x), _fixed(cl), _fixed(ca), _fixed(cb))
    for c in range(6):
        cuda.atomic.add(sums, (f, owner, c), values[c])
        if before >= 0:
            cuda.atomic.add(sums, (f, before, c), -values[c])


@cuda.jit(cache=True)
def _move_centres(sums, centres, windows, half_y, half_x, h, w):
    """Every centre to the mean of its pixels (the CPU's float64 divisions rounded to
    float32) and its new window; a centre without pixels gets an empty window, which
    keeps it dead."""
    i = cuda.grid(1)
    n, k_all = centres.shape[:2]
    if i >= n * k_all:
        return
    f = i // k_all
    k = i - f * k_all
    count = sums[f, k, 0]
    if count == 0:
        for c in range(4):
            windows[f, k, c] = 0
        return
    cy = np.float32(sums[f, k, 1] / count)
    cx = np.float32(sums[f, k, 2] / count)
    centres[f, k, 0] = cy
    centres[f, k, 1] = cx
    for c in range(3):
        # The CPU's sum / FIXED_ONE / count: the first division, by a power of two, is
        # exact, and written as the product it is so that it stays unfused.
        centres[f, k, 2 + c] = np.float32(
            _mul64(np.float64(sums[f, k, 3 + c]), _UNFIXED) / count)
    _set_window(windows, f, k, cy, cx, half_y, half_x, h, w)


# ----------------------------------------------------------------------- connectivity


@_device_function
def _neighbour(p, d, h, w):
    """Flat pixel ``p``'s neighbour ``d`` in the CPU search's order (x+1, x-1, y+1,
    y-1), -1 outside the frame."""
    x = p % w
    y = (p // w) % h
    if d == 0:
        return p + 1 if x + 1 < w else -1
    if d == 1:
        return p - 1 if x > 0 else -1
    if d == 2:
        return p + w if y + 1 < h else -1
    return p - w if y > 0 else -1


@_device_function
def _find(parent, a):
    """Root of flat pixel ``a``'s tree (``parent`` only ever points to smaller pixels,
    so a stale read from another thread's update still ends at a root)."""
    while parent[a] != a:
        a = parent[a]
    return a


@_device_function
def _union(parent, a, b):
    """Join the trees of flat pixels ``a`` and ``b``, the larger root under the smaller
    (atomic min, retried until it holds), so that a root is its component's first pixel
    in raster order."""
    while True:
        a = _find(parent, a)
        b = _find(parent, b)
        if a == b:
            return
        if a < b:
            old = cuda.atomic.min(parent, b, a)
            if old == b:
                return
            b = old
        else:
            old = cuda.atomic.min(parent, a, b)
            if old == a:
                return
            a = old


@cuda.jit(cache=True)
def _components_start(parent, size, last, seen):
    """Every flat pixel its own tree; sizes, last pixels and visit marks cleared."""
    p = cuda.grid(1)
    if p >= parent.size:
        return
    parent[p] = p
    size[p] = 0
    last[p] = 0
    seen[p] = 0


@cuda.jit(cache=True)
def _components_join(labels, h, w, parent):
    """Union every pixel with its right and lower neighbour of the same label."""
    p = cuda.grid(1)
    if p >= labels.size:
        return
    x = p % w
    y = (p // w) % h
    label = labels[p]
    if x + 1 < w and labels[p + 1] == label:
        _union(parent, p, p + 1)
    if y + 1 < h and labels[p + w] == label:
        _union(parent, p, p + w)


@cuda.jit(cache=True)
def _components_flatten(parent, piece, size, last):
    """Point every pixel at its root (its component's first pixel); count each
    component's pixels into ``size`` and its last pixel into ``last``, at the root."""
    p = cuda.grid(1)
    if p >= parent.size:
        return
    root = _find(parent, p)
    parent[p] = root
    piece[p] = root
    cuda.atomic.add(size, root, 1)
    cuda.atomic.max(last, root, p)


@cuda.jit(cache=True)
def _split_large(parent, h, w, max_size, piece, size, last, seen, queue):
    """scikit-image's search stops at ``max_size`` pixels: a component larger than that
    is cut, by one thread, into the pieces its raster scan makes. From the component's
    first unvisited pixel in raster order, a breadth-first search (neighbours x+1, x-1,
    y+1, y-1) over its unvisited pixels takes at most ``max_size`` of them; the scan
    goes on to the next unvisited pixel. Each piece's pixels get its first pixel in
    ``piece``, its size goes to ``size`` there. ``queue`` links the search's queue
    through the pixels; ``seen`` marks them 1."""
    r = cuda.grid(1)
    if r >= parent.size or parent[r] != r or size[r] <= max_size:
        return
    for start in range(r, last[r] + 1):
        if parent[start] != r or seen[start] != 0:
            continue
        seen[start] = 1
        piece[start] = start
        count = 1
        done = 0
        head = start
        tail = start
        while done < count and count < max_size:
            for d in range(4):
                q = _neighbour(head, d, h, w)
                if q >= 0 and parent[q] == r and seen[q] == 0:
                    seen[q] = 1
                    piece[q] = start
                    queue[tail] = q
                    tail = q
                    count += 1
                    if count >= max_size:
                        break
            done += 1
            if done < count:
                head = queue[head]
        size[start] = count


@cuda.jit(cache=True)
def _small_neighbours(piece, size, h, w, min_size, max_size, seen, queue, link):
    """For each piece smaller than ``min_size``, repeat scikit-image's search over it
    (same queue order, marks 2 in ``seen``) and record in ``link``, at its first pixel,
    the piece of the last neighbour the search met that belongs to an earlier piece (an
    already relabelled pixel): the piece whose label it takes."""
    c = cuda.grid(1)
    if c >= piece.size or piece[c] != c or size[c] >= min_size:
        return
    adjacent = -1
    seen[c] = 2
    count = 1
    done = 0
    head = c
    tail = c
    while done < count and count < max_size:
        for d in range(4):
            q = _neighbour(head, d, h, w)
            if q < 0:
                continue
            other = piece[q]
            if other == c:
                if seen[q] != 2:
                    seen[q] = 2
                    queue[tail] = q
                    tail = q
                    count += 1
                    # A piece cut at max_size (min_size > max_size only): the search
                    # stopped here, as the CPU's does.
                    if count >= max_size:
                        break
            elif other < c:
                adjacent = other
        done += 1
        if done < count:
            head = queue[head]
    link[c] = adjacent


@cuda.jit(cache=True)
def _number_pieces(piece, size, min_size, rank, first, total):
    """Number each frame's pieces of at least ``min_size`` pixels in raster order of
    their first pixels into ``rank`` (there); the frame's first such piece into
    ``first`` (n,) int32 (:data:`_NONE` if none), their number into ``total``. One block
    per frame; each thread counts a run of pixels, thread 0 scans the counts."""
    f = cuda.blockIdx.x
    t = cuda.threadIdx.x
    hw = piece.size // cuda.gridDim.x
    run = (hw + _SCAN_THREADS - 1) // _SCAN_THREADS
    start = f * hw + min(t * run, hw)
    stop = f * hw + min((t + 1) * run, hw)
    counts = cuda.shared.array(_SCAN_THREADS, int32)
    firsts = cuda.shared.array(_SCAN_THREADS, int32)
    m = 0
    first_here = _NONE
    for p in range(start, stop):
        if piece[p] == p and size[p] >= min_size:
            if m == 0:
                first_here = p
            m += 1
    counts[t] = m
    firsts[t] = first_here
    cuda.syncthreads()
    if t == 0:
        running = 0
        earliest = _NONE
        for i in range(_SCAN_THREADS):
            m = counts[i]
            counts[i] = running
            running += m
            earliest = min(earliest, firsts[i])
        total[f] = running
        first[f] = earliest
    cuda.syncthreads()
    number = counts[t]
    for p in range(start, stop):
        if piece[p] == p and size[p] >= min_size:
            rank[p] = number
            number += 1


@cuda.jit(cache=True)
def _relabel(piece, size, link, rank, first, min_size, labels):
    """Each pixel's final label: its piece's number if the piece is big; 0 for a small
    piece before the frame's first big one (scikit-image's first new label, which they
    all keep); else the label of the piece it links to, followed to a big piece or to
    one before the first."""
    p = cuda.grid(1)
    if p >= piece.size:
        return
    start = first[p // (piece.size // first.size)]
    c = piece[p]
    # A small piece after the first big one always has an earlier neighbour (the pixel
    # left of or above its first pixel), so its link is set.
    while size[c] < min_size and c >= start:
        c = link[c]
    labels[p] = rank[c] if size[c] >= min_size else 0


# ------------------------------------------------------------------------- host side


def _frames(frames, stream):
    """``frames`` as a device array, after checking that it is a non-empty (n, h, w, 3)
    uint8 host or device array."""
    if not isinstance(frames, np.ndarray):
        frames = as_device(frames, stream)  # a device array as it is, anything else copied
    # A plain tuple: the simulator's shapes refuse negative indices.
    shape = tuple(frames.shape)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 (n, h, w, 3) array, got dtype {frames.dtype}")
    if len(shape) != 4 or shape[-1] != 3 or 0 in shape[:-1]:
        raise ValueError(f"frames must be a uint8 (n, h, w, 3) array, got shape {shape}")
    return as_device(frames, stream)


def _smoothed(frames, plan: _Plan, work, labels, stream):
    """Fill ``work[0:3]`` (as (3, n, h, w) float32) with the smoothed CIELAB / compactness
    of ``frames``, using ``work[3:6]`` as scratch, and set ``labels`` to -1."""
    n, h, w = labels.shape
    lab = work[0:3].reshape(3, n, h, w)
    scratch = work[3:6].reshape(3, n, h, w)
    per_frame = max(1, min(64, h * w // _RANGE_PIXELS))
    bounds = cuda.device_array((n, per_frame, 2), np.int32, stream=stream)
    _frame_range[(per_frame, n), _RANGE_THREADS, stream](frames, bounds)
    tables = cuda.device_array((n, 256), np.float32, stream=stream)
    _colour_tables[(*launch_1d(n * 256), stream)](bounds, tables)
    pixels = (*launch_1d(n * h * w), stream)
    _lab[pixels](frames, tables, lab, labels)
    _blur_columns[pixels](lab, plan.weights, scratch)
    _blur_rows[pixels](scratch, plan.weights, plan.scale, lab)
    return lab


def _kmeans(image, plan: _Plan, n_iter: int, labels, stream, capacity=CELL_CAPACITY):
    """``n_iter`` k-means steps over ``image`` (3, n, h, w), labels updated in place."""
    n, h, w = labels.shape
    k = plan.n_centres
    centres = cuda.device_array((n, k, 5), np.float32, stream=stream)
    windows = cuda.device_array((n, k, 4), np.int32, stream=stream)
    sums = cuda.device_array((n, k, 6), np.int64, stream=stream)
    n_cells = plan.cells[0] * plan.cells[1]
    cells = cuda.device_array((n, n_cells, capacity), np.int32, stream=stream)
    counts = cuda.device_array((n, n_cells), np.int32, stream=stream)
    by_centre = (*launch_1d(n * k), stream)
    by_cell = (*launch_1d(n * n_cells), stream)
    by_pixel = (*launch_1d(n * h * w), stream)
    half_y, half_x = plan.half
    _seed_centres[by_centre](centres, windows, sums, *plan.seed_start, *plan.seed_step,
                             plan.seed_columns, half_y, half_x, h, w)
    for _ in range(n_iter):
        _list_cells[by_cell](windows, *plan.cell, h, w, cells, counts)
        _assign[by_pixel](image, centres, windows, cells, counts, *plan.cell,
                          plan.spatial_weight, labels, sums)
        _move_centres[by_centre](sums, centres, windows, half_y, half_x, h, w)


def _connect(labels, min_size: int, max_size: int, ints, stream) -> np.ndarray:
    """:func:`enforce_connectivity` in place on ``labels`` (n, h, w) int32, with
    ``ints`` (>= 6, n * h * w) int32 device scratch; returns the counts."""
    n, h, w = labels.shape
    flat = labels.reshape(n * h * w)
    parent, piece, size, last, seen, queue = (ints[i] for i in range(6))
    # Reused once their first use is over: parent as the links, last as the numbers.
    link, rank = parent, last
    first = cuda.device_array(n, np.int32, stream=stream)
    total = cuda.device_array(n, np.int32, stream=stream)
    pixels = (*launch_1d(n * h * w), stream)
    _components_start[pixels](parent, size, last, seen)
    _components_join[pixels](flat, h, w, parent)
    _components_flatten[pixels](parent, piece, size, last)
    _split_large[pixels](parent, h, w, max_size, piece, size, last, seen, queue)
    _small_neighbours[pixels](piece, size, h, w, min_size, max_size, seen, queue, link)
    _number_pieces[n, _SCAN_THREADS, stream](piece, size, min_size, rank, first, total)
    _relabel[pixels](piece, size, link, rank, first, min_size, flat)
    counts = total.copy_to_host(stream=stream)
    if stream:
        stream.synchronize()
    # A frame without a big piece is all label 0 (scikit-image's max + 1 = 1).
    return np.maximum(counts, 1).astype(np.int64)


def _workspace(n: int, h: int, w: int, stream):
    """(6, n * h * w) float32 device scratch: the colour image and its blur scratch,
    then (viewed as int32) the connectivity pass's arrays."""
    return cuda.device_array((6, n * h * w), np.float32, stream=stream)


def smoothed_lab(frames, config: UNLCConfig = REFERENCE, *, stream=0):
    """The image SLIC clusters: CIELAB, Gaussian-smoothed, divided by the compactness.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8, host or device
        RGB frames.
    config : UNLCConfig
        Uses ``slic_sigma`` (pixels) and ``slic_compactness``.
    stream : numba.cuda.Stream or 0
        Stream of every launch.

    Returns
    -------
    image : (3, n, h, w) float32 device array
        Channels L, a, b; the CPU kernel's tiled image, untiled, bit for bit (but for
        the colour table's caveat in the module notes).
    """
    frames = _frames(frames, stream)
    n, h, w = frames.shape[:3]
    work = _workspace(n, h, w, stream)
    labels = cuda.device_array((n, h, w), np.int32, stream=stream)
    return _smoothed(frames, _plan(h, w, config), work, labels, stream)


def enforce_connectivity(labels, min_size: int, max_size: int, *, stream=0):
    """scikit-image's ``_enforce_label_connectivity_cython`` on every frame of a batch.

    Parameters
    ----------
    labels : (n, h, w) int32, host or device
        Labels of each frame (any values); not modified.
    min_size, max_size : int
        Component size bounds in pixels (``max_size >= 1``).
    stream : numba.cuda.Stream or 0
        Stream of every launch.

    Returns
    -------
    connected : (n, h, w) int32 device array
        Each frame's labels in ``[0, counts[i])``, equal to the CPU kernel's
        ``enforce_connectivity`` frame by frame.
    counts : (n,) int64 numpy array

    Notes
    -----
    The CPU pass scans pixels in raster order; from each one not yet relabelled, a
    breadth-first search collects its component (same label, 4-connected, at most
    ``max_size`` pixels). The component takes the next new label, or, when smaller than
    ``min_size``, the label of the last already relabelled neighbour the search met.
    Here: the components, each rooted at its first pixel in raster order, come from a
    union-find labelling (atomic min links a root under a smaller one); a component
    larger than ``max_size`` is cut into the pieces the raster scan would make by one
    thread; each piece smaller than ``min_size`` repeats the search on its own pixels,
    on its own thread, to find the piece whose label it takes (one whose first pixel
    comes earlier: already relabelled when the CPU reached it). Big pieces are numbered
    by their first pixels; pieces before the first big one all get label 0, the label
    the CPU gives them while it has no other; each other small piece follows its links
    to a big piece or to one of those.
    """
    if isinstance(labels, np.ndarray):
        labels = labels.astype(np.int32, copy=False)
    labels = as_device(labels, stream)
    n, h, w = labels.shape
    out = cuda.device_array((n, h, w), np.int32, stream=stream)
    out.reshape(n * h * w).copy_to_device(labels.reshape(n * h * w), stream=stream)
    ints = cuda.device_array((6, n * h * w), np.int32, stream=stream)
    return out, _connect(out, min_size, max_size, ints, stream)


def slic_superpixels_batch(frames, config: UNLCConfig = REFERENCE, *, stream=0):
    """SLIC superpixels of every frame of a shot, on the GPU.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8, host or device
        RGB frames of one size (a device array, such as a torch CUDA tensor, is used
        in place).
    config : UNLCConfig
        Uses ``n_segments``, ``slic_compactness``, ``slic_max_iter``, ``slic_sigma``
        (pixels) and ``slic_{min,max}_size_factor``, as the CPU backend does.
    stream : numba.cuda.Stream or 0
        Stream of every launch and copy; the call returns once the counts are back.

    Returns
    -------
    labels : (n, h, w) int32 device array
        Per-frame labels, each frame's in ``[0, counts[i])``, every label used, each
        superpixel 4-connected: the CPU backend's
        ``fastunlc.superpixels.slic_superpixels_batch`` labels.
    counts : (n,) int64 numpy array
        Superpixels per frame.

    Raises
    ------
    ValueError
        ``frames`` is not a non-empty uint8 ``(n, h, w, 3)`` array.
    """
    frames = _frames(frames, stream)
    n, h, w = frames.shape[:3]
    plan = _plan(h, w, config)
    work = _workspace(n, h, w, stream)
    labels = cuda.device_array((n, h, w), np.int32, stream=stream)
    image = _smoothed(frames, plan, work, labels, stream)
    _kmeans(image, plan, config.slic_max_iter, labels, stream)
    # The colour image is spent: its memory holds the connectivity pass's arrays.
    counts = _connect(labels, plan.min_size, plan.max_size, work.view(np.int32), stream)
    return labels, counts
