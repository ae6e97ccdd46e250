"""Shot detection on the GPU: per-frame colour histograms and KTS's dynamic programme.

Twins of :func:`fastunlc.shots.shot_features` and :func:`fastunlc.shots.kts_change_points`.

**Features.** Each block of ``_frame_histograms`` counts a share of one frame's pixels
into a histogram in shared memory (integer atomics) and writes it out whole, so no
global atomics are needed; ``_normalise`` adds a frame's shares and divides by the
total. Counts are integers, so the result equals the CPU's bit for bit wherever the
per-pixel CIELAB falls in the same bins (always, see :mod:`.colour`).

**KTS.** The CPU's formulation (no N x N matrix held at once): with ``S`` the prefix sums
of the mean-centred rows and ``Q`` those of their squared norms, the scatter of frames
``[t, l)`` is ``(Q[l] - Q[t]) - (|S[l]|^2 + |S[t]|^2 - 2 S[l].S[t]) / (l - t)``. Segment
ends are taken in blocks of rows sized to ``_SCATTER_ELEMENTS``; per block, one tiled
launch computes the ``S[l].S[t]`` products and the scatters (and the one-segment costs),
then one launch per change-point level runs the DP, parallel over the block's ends. The
column means and prefix sums are sequential per column, as NumPy's; the products and
squared norms are summed in another order than BLAS's and ``einsum``'s, so scatters
agree to about 1e-15 relative and the change points are identical unless two
segmentations' costs tie to that precision.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int32

from ..cpu.histograms import channel_edges
from .arrays import as_device, launch_1d
from .colour import bin_index, lab_pixel

_HIST_THREADS = 128
"""Threads per block of the histogram launch."""
_MAX_SHARES = 64
"""Most blocks (shares of its pixels) per frame: 316,550 pixels of a 650 x 487 frame
make about 39 per thread."""
_TILE = 16
"""Side of the square tiles of the scatter launch (``_TILE**2`` threads a block)."""
_SCATTER_ELEMENTS = 1 << 25
"""Float64 scatters held at once (256 MiB): one block of segment ends up to 5,792 frames."""


@cuda.jit
def _frame_histograms(pixels, edges, shares, partial):
    """Block ``b`` counts share ``b % shares`` of frame ``b // shares`` of ``pixels``
    (n, P, 3) uint8 into ``partial[frame, share]`` ((6 * bins,) int32, R G B L a b)."""
    hist = cuda.shared.array(0, int32)
    tid = cuda.threadIdx.x
    threads = cuda.blockDim.x
    f = cuda.blockIdx.x // shares
    share = cuda.blockIdx.x % shares
    bins = edges.shape[1] - 1
    for j in range(tid, 6 * bins, threads):
        hist[j] = 0
    cuda.syncthreads()
    for p in range(share * threads + tid, pixels.shape[1], shares * threads):
        lab = lab_pixel(pixels[f, p, 0], pixels[f, p, 1], pixels[f, p, 2])
        for c in range(3):
            j = bin_index(float64(pixels[f, p, c]), edges, c)
            if j >= 0:
                cuda.atomic.add(hist, c * bins + j, 1)
            j = bin_index(lab[c], edges, 3 + c)
            if j >= 0:
                cuda.atomic.add(hist, (3 + c) * bins + j, 1)
    cuda.syncthreads()
    for j in range(tid, 6 * bins, threads):
        partial[f, share, j] = hist[j]


@cuda.jit
def _normalise(partial, out):
    """Thread ``(frame, channel)``: add the shares' counts, divide by the total."""
    i = cuda.grid(1)
    n, shares, width = partial.shape
    bins = width // 6
    if i >= n * 6:
        return
    f = i // 6
    base = (i % 6) * bins
    total = 0.0
    for j in range(bins):
        count = 0
        for share in range(shares):
            count += partial[f, share, base + j]
        out[f, base + j] = count
        total += count
    # The reference divides by ``sum + (sum < 1e-4)``: an empty histogram stays zero.
    total += 1.0 if total < 1e-4 else 0.0
    for j in range(bins):
        out[f, base + j] = out[f, base + j] / total


def shot_features(frames, bins=40, *, stream=0):
    """Per-frame colour histograms (the KTS features) of a stack of frames on the GPU.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8 device array or ndarray
        RGB frames, C-contiguous.
    bins : int, optional
        Bins per histogram (>= 1; ``config.shot_hist_bins``, 40 by default).
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of every copy and launch.

    Returns
    -------
    (n, 6 * bins) float64 device array
        Per frame the R, G, B histograms over [0, 255], then CIELAB L over [0, 100], a
        and b over [-128, 127], each L1-normalised (an empty one stays zero), binned as
        ``np.histogram``; equal to :func:`fastunlc.shots.shot_features`.

    Raises
    ------
    ValueError
        If ``frames`` is not C-contiguous uint8 ``(n, h, w, 3)`` or ``bins < 1``.
    """
    frames = as_device(frames, stream=stream)
    shape = tuple(frames.shape)
    if frames.dtype != np.uint8 or len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"frames must be uint8 (n, h, w, 3), got {frames.dtype} {shape}")
    if not frames.is_c_contiguous():
        raise ValueError("frames must be C-contiguous")
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    n, h, w, _ = shape
    bins = int(bins)
    out = cuda.device_array((n, 6 * bins), np.float64, stream=stream)
    if n == 0:
        return out
    pixels = h * w
    threads = min(_HIST_THREADS, max(32, -(-pixels // 32) * 32))
    shares = max(1, min(_MAX_SHARES, -(-pixels // threads)))
    partial = cuda.device_array((n, shares, 6 * bins), np.int32, stream=stream)
    edges = cuda.to_device(channel_edges(bins), stream=stream)
    _frame_histograms[n * shares, threads, stream, 4 * 6 * bins](
        frames.reshape(n, pixels, 3), edges, shares, partial)
    blocks, per_block = launch_1d(n * 6)
    _normalise[blocks, per_block, stream](partial, out)
    return out


@cuda.jit
def _column_means(x, mean, finite):
    """``mean[j]`` of column ``j``, summed row by row as NumPy's ``mean(axis=0)``;
    ``finite[0]`` is set to 0 if the column holds NaN or inf."""
    j = cuda.grid(1)
    if j < x.shape[1]:
        total = 0.0
        for i in range(x.shape[0]):
            v = x[i, j]
            if not math.isfinite(v):
                finite[0] = 0
            total += v
        mean[j] = total / x.shape[0]


@cuda.jit
def _prefix_sums(x, mean, prefix):
    """``prefix[i + 1, j] = prefix[i, j] + (x[i, j] - mean[j])``, ``prefix[0] = 0``."""
    j = cuda.grid(1)
    if j < x.shape[1]:
        total = 0.0
        prefix[0, j] = 0.0
        for i in range(x.shape[0]):
            total += x[i, j] - mean[j]
            prefix[i + 1, j] = total


@cuda.jit
def _norms(x, mean, prefix, norms, row_sq):
    """``norms[t] = |S[t]|^2`` for ``t <= N``, ``row_sq[t] = |x[t] - mean|^2`` for ``t < N``."""
    t = cuda.grid(1)
    if t < prefix.shape[0]:
        total = 0.0
        for j in range(prefix.shape[1]):
            total += prefix[t, j] * prefix[t, j]
        norms[t] = total
        if t < x.shape[0]:
            total = 0.0
            for j in range(x.shape[1]):
                v = x[t, j] - mean[j]
                total += v * v
            row_sq[t] = total


@cuda.jit
def _cumulative(values, out):
    """One thread: ``out[0] = 0``, ``out[i + 1] = out[i] + values[i]`` (``np.cumsum``)."""
    if cuda.grid(1) == 0:
        total = 0.0
        out[0] = 0.0
        for i in range(values.shape[0]):
            total += values[i]
            out[i + 1] = total


@cuda.jit
def _scatters(prefix, norms, sq_prefix, first, rows, scatter, cost):
    """``scatter[r, t]``: scatter of frames ``[t, first + r)`` for ``r < rows`` and
    ``t < first + r``; ``cost[0, first + r]`` (one segment) is ``scatter[r, 0]``.

    One ``_TILE x _TILE`` block per tile of (end, start) pairs; a tile wholly on or
    above the diagonal (every start at or past its end) does nothing.
    """
    a = cuda.shared.array((_TILE, _TILE), float64)  # S rows of the tile's ends
    b = cuda.shared.array((_TILE, _TILE), float64)  # S rows of the tile's starts
    ty = cuda.threadIdx.y
    tx = cuda.threadIdx.x
    row0 = cuda.blockIdx.y * _TILE
    col0 = cuda.blockIdx.x * _TILE
    last_end = first + min(row0 + _TILE, rows) - 1
    if col0 >= last_end:
        return
    n_rows, dims = prefix.shape
    r = row0 + ty
    t = col0 + tx
    end = first + r
    dot = 0.0
    for k0 in range(0, dims, _TILE):
        ra = first + row0 + ty
        rb = col0 + ty
        a[ty, tx] = prefix[ra, k0 + tx] if ra < n_rows and k0 + tx < dims else 0.0
        b[ty, tx] = prefix[rb, k0 + tx] if rb < n_rows and k0 + tx < dims else 0.0
        cuda.syncthreads()
        for kk in range(_TILE):
            dot += a[ty, kk] * b[tx, kk]
        cuda.syncthreads()
    if r < rows and t < end:
        sq = norms[end] + norms[t] - 2.0 * dot
        value = (sq_prefix[end] - sq_prefix[t]) - sq / (end - t)
        scatter[r, t] = value
        if t == 0:
            cost[0, end] = value


@cuda.jit
def _dp_level(scatter, first, rows, level, cost, back):
    """Level ``level >= 1`` of the DP for the ends ``first + r``, ``r < rows``: the least
    ``cost[level - 1, t] + scatter(t, end)`` over ``t``, the first ``t`` among ties."""
    r = cuda.grid(1)
    if r >= rows:
        return
    end = first + r
    if end < level + 1:
        return
    best = math.inf
    best_t = level
    for t in range(level, end):
        c = cost[level - 1, t] + scatter[r, t]
        if c < best:
            best = c
            best_t = t
    cost[level, end] = best
    back[level, end] = best_t


def change_points(features, max_change_points, vmax, *, stream=0):
    """Change points of Kernel Temporal Segmentation (linear kernel) on the GPU.

    Parameters
    ----------
    features : (N, d) float64 device array, or real ndarray
        One row per frame (e.g. :func:`shot_features`), finite, N >= 1; C-contiguous.
    max_change_points : int
        ``m`` (>= 0), lowered to ``N - 1`` when fewer frames allow no more.
    vmax : float
        Weight of the penalty on the number of change points (>= 0).
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of every copy and launch; synchronised once, to read the DP's result.

    Returns
    -------
    change_points : (c,) int64 ndarray
        Increasing frame indices in [1, N - 1] where a new segment starts, ``c <= m``;
        those of :func:`fastunlc.shots.kts_change_points` (see the module notes).

    Raises
    ------
    ValueError
        If ``features`` is not a finite real 2-D array with at least one row, or the
        parameters are out of range.
    """
    if isinstance(features, np.ndarray):
        if features.dtype.kind not in "fiu":
            raise ValueError(f"features must be a real array, got {features.dtype}")
        features = np.ascontiguousarray(features, dtype=np.float64)
    x = as_device(features, stream=stream)
    shape = tuple(x.shape)
    if x.dtype != np.float64 or len(shape) != 2 or shape[0] < 1:
        raise ValueError(f"features must be float64 (N, d) with N >= 1, got {x.dtype} "
                         f"{shape}")
    if not x.is_c_contiguous():
        raise ValueError("features must be C-contiguous")
    if int(max_change_points) != max_change_points or max_change_points < 0:
        raise ValueError(f"max_change_points must be an integer >= 0, got "
                         f"{max_change_points!r}")
    if not (math.isfinite(vmax) and vmax >= 0):
        raise ValueError(f"vmax must be a finite number >= 0, got {vmax!r}")
    n, d = shape
    m = min(int(max_change_points), n - 1)

    finite = cuda.to_device(np.ones(1, np.int32), stream=stream)
    mean = cuda.device_array(d, np.float64, stream=stream)
    prefix = cuda.device_array((n + 1, d), np.float64, stream=stream)
    norms = cuda.device_array(n + 1, np.float64, stream=stream)
    row_sq = cuda.device_array(n, np.float64, stream=stream)
    sq_prefix = cuda.device_array(n + 1, np.float64, stream=stream)
    per_column = launch_1d(d)
    _column_means[per_column[0], per_column[1], stream](x, mean, finite)
    _prefix_sums[per_column[0], per_column[1], stream](x, mean, prefix)
    per_row = launch_1d(n + 1)
    _norms[per_row[0], per_row[1], stream](x, mean, prefix, norms, row_sq)
    _cumulative[1, 1, stream](row_sq, sq_prefix)

    cost = cuda.to_device(np.full((m + 1, n + 1), np.inf), stream=stream)
    back = cuda.to_device(np.zeros((m + 1, n + 1), np.int64), stream=stream)
    rows = max(_TILE, _SCATTER_ELEMENTS // (n + 1))
    scatter = cuda.device_array((min(rows, n), n + 1), np.float64, stream=stream)
    for first in range(1, n + 1, rows):
        block = min(rows, n + 1 - first)
        grid = (-(-(first + block) // _TILE), -(-block // _TILE))
        _scatters[grid, (_TILE, _TILE), stream](prefix, norms, sq_prefix, first, block,
                                                scatter, cost)
        per_end = launch_1d(block)
        for level in range(1, m + 1):
            _dp_level[per_end[0], per_end[1], stream](scatter, first, block, level, cost,
                                                      back)

    if not finite.copy_to_host(stream=stream)[0]:
        raise ValueError("features must be finite (found NaN or inf)")
    scores = cost.copy_to_host(stream=stream)[:, n]
    back = back.copy_to_host(stream=stream)
    # The CPU's choice of the number of change points, to the letter.
    counts = np.arange(1, m + 1)
    penalties = np.zeros(m + 1)
    penalties[1:] = vmax * counts / (2.0 * n) * (np.log(n / counts) + 1.0)
    best = int(np.argmin(scores / n + penalties))
    points = np.zeros(best, dtype=np.int64)
    end = n
    for k in range(best, 0, -1):
        end = back[k, end]
        points[k - 1] = end
    return points
