"""Motion saliency and initial votes on the GPU, batched over all pairs and frames of a shot.

The same results as the CPU backend (:func:`fastunlc.saliency.motion_saliency` and
:func:`fastunlc.saliency.superpixel_saliency` with ``device="cpu"``), bit for bit under
the Numba CUDA simulator and wherever the GPU rounds as the CPU does:

- every sum runs in the CPU's order: the direction histogram one bin per thread over
  the pixels in raster order, the 5 x 5 box filter as SciPy's running sums (one thread
  per line, the rows' pass then the columns'), the frame mean over its pairs in pair
  order, a superpixel's saliency over its pixels in raster order (one thread per
  superpixel, walking its bounding box);
- the median is exact (a radix select on the magnitudes' bits, one block per pair);
- products that feed a sum go through :func:`.arrays.mul_rn` (PTX ``mul.rn.f64``), which
  neither NVVM nor ptxas fuses into an FMA, which would round differently from the CPU
  (without it NVVM turns ``u * u + v * v`` into ``fma(u, u, v * v)``).

Only ``atan2`` differs on a real GPU: CUDA's is within 2 ulp where the CPU's libm is
within 1, so a translating pair's deviation agrees to about 1e-15 relative, and a
direction a few ulp from a bin edge may fall in the neighbouring bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import cuda, float64, int32

from ...config import REFERENCE, UNLCConfig
from .arrays import SIMULATOR, as_device, grid_1d, mul_rn, stream_sync
from .colour import histogram_bin

STATIC = 1
TRANSLATING = 2
NOT_DOMINANT = 0
"""Pair kinds, as :mod:`fastunlc._kernels.cpu.saliency` numbers them."""

PEAK_THREADS = 128
"""Threads of the per-frame maximum's blocks (a power of two; 32 in the simulator)."""


@dataclass(frozen=True)
class MotionSaliency:
    """Motion saliency of a shot at flow resolution, on the GPU.

    The attributes of :class:`fastunlc.saliency.MotionSaliency`, with the saliency left
    on the device.

    Attributes
    ----------
    saliency : (n, s, s) float64 device array
        Mean of the dominant pairs' smoothed deviation per frame, 0 for frames without
        a dominant pair. Units: px² (static pairs) or rad² (translating).
    dominant : (n,) bool ndarray
        Frames with at least one dominant pair.
    pair_kinds : (P,) int8 ndarray
        Per pair: 1 static, 2 translating, 0 no dominant motion.
    peak : float
        The largest value of ``saliency`` (what the CPU pipeline reads as
        ``saliency.max()``): upsampling never exceeds it, so a shot whose peak is below
        ``static_saliency_floor`` is motionless.
    """

    saliency: object
    dominant: np.ndarray
    pair_kinds: np.ndarray
    peak: float

    @property
    def dominant_fraction(self) -> float:
        return float(self.dominant.mean()) if self.dominant.size else 0.0


@cuda.jit
def _polar(flows, edges, mag, theta, bins):
    """Per pixel of every pair: magnitude, direction and direction bin of the flow."""
    n_pairs, h, w, _ = flows.shape
    for g in range(cuda.grid(1), n_pairs * h * w, cuda.gridsize(1)):
        p = g // (h * w)
        i = g - p * h * w
        y = i // w
        x = i - y * w
        u = float64(flows[p, y, x, 0])
        v = float64(flows[p, y, x, 1])
        mag[p, i] = math.sqrt(mul_rn(u, u) + mul_rn(v, v))
        t = math.atan2(v, u)
        theta[p, i] = t
        bins[p, i] = histogram_bin(t, edges[0], edges[edges.shape[0] - 1], edges)


@cuda.jit
def _classify(mag, keys, bins, edges, static_magnitude, dominant_direction, hist, kinds,
              targets):
    """One block per pair: exact median magnitude, then the direction histogram and kind.

    ``keys`` are the magnitudes' float64 bits as int64, ordered as the magnitudes (all
    >= 0). The lower middle order statistic is found by an 8-pass radix select (a byte
    per pass, three rotating 256-bin counts so that one barrier per pass suffices); the
    upper one is the same value or the smallest magnitude above it.
    """
    p = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = mag.shape[1]
    counts = cuda.shared.array((3, 256), int32)
    lower = cuda.shared.array(1, float64)
    above = cuda.shared.array(1, float64)
    for b in range(tid, 256, nt):
        counts[0, b] = 0
    if tid == 0:
        above[0] = math.inf
    cuda.syncthreads()
    rank = (n - 1) // 2  # sorted index of the lower middle
    prefix = 0
    b = 0
    for level in range(8):
        shift = 56 - 8 * level
        current = level % 3
        # Read two levels ago, and every thread has passed a barrier since.
        for c in range(tid, 256, nt):
            counts[(level + 1) % 3, c] = 0
        for i in range(tid, n, nt):
            key = keys[p, i]
            if level == 0 or (key >> (shift + 8)) == (prefix >> (shift + 8)):
                cuda.atomic.add(counts, (current, (key >> shift) & 255), 1)
        cuda.syncthreads()
        b = 0
        while rank >= counts[current, b]:
            rank -= counts[current, b]
            b += 1
        prefix |= b << shift
    at_or_below = (n - 1) // 2 - rank + counts[7 % 3, b]
    for i in range(tid, n, nt):
        key = keys[p, i]
        if key == prefix:
            lower[0] = mag[p, i]
        elif key > prefix:
            cuda.atomic.min(above, 0, mag[p, i])
    cuda.syncthreads()
    if n % 2 == 1 or at_or_below > n // 2:
        median = lower[0]
    else:
        median = (lower[0] + above[0]) / 2  # Numba's np.median: (a + b) / 2
    if median < static_magnitude:
        if tid == 0:
            kinds[p] = STATIC
        return
    # One thread per bin sums its pixels in raster order: the CPU's order, to the bit.
    n_bins = hist.shape[1]
    for c in range(tid, n_bins, nt):
        s = 0.0
        for i in range(n):
            if bins[p, i] == c:
                s += mag[p, i]
        hist[p, c] = s
    cuda.syncthreads()
    if tid == 0:
        total = 0.0
        best = 0
        for c in range(n_bins):
            total += hist[p, c]
            if hist[p, c] > hist[p, best]:
                best = c
        if total == 0.0 or hist[p, best] / total <= dominant_direction:
            kinds[p] = NOT_DOMINANT
        else:
            kinds[p] = TRANSLATING
            targets[p] = 0.5 * (edges[best] + edges[best + 1])


@cuda.jit
def _deviation(mag, theta, kinds, targets, out):
    """``m²`` for static pairs, the squared wrapped angle to the dominant direction for
    translating ones; pairs without dominant motion are left alone."""
    n_pairs, h, w = out.shape
    two_pi = 2.0 * math.pi
    for g in range(cuda.grid(1), n_pairs * h * w, cuda.gridsize(1)):
        p = g // (h * w)
        i = g - p * h * w
        y = i // w
        x = i - y * w
        kind = kinds[p]
        if kind == STATIC:
            m = mag[p, i]
            out[p, y, x] = m * m
        elif kind == TRANSLATING:
            d = theta[p, i] - targets[p]
            out[p, y, x] = min(d * d, (d + two_pi) * (d + two_pi),
                               (d - two_pi) * (d - two_pi))


@cuda.jit(device=True, inline=True)
def _reflect(i, n):
    """Index ``i`` of a line of ``n`` samples extended symmetrically (``dcba|abcd|dcba``)."""
    i = i % (2 * n)
    return i if i < n else 2 * n - 1 - i


@cuda.jit
def _box_lines(src, dst, kinds, size, along_rows):
    """One thread per line of a dominant pair: SciPy's ``uniform_filter1d`` (mode
    "reflect"), a running sum ``tmp += new - old`` divided by ``size``, along the rows
    (axis 1) or the columns (axis 2) of ``src`` (P, h, w) float64."""
    n_pairs, h, w = src.shape
    lines = w if along_rows else h
    length = h if along_rows else w
    half = size // 2
    for g in range(cuda.grid(1), n_pairs * lines, cuda.gridsize(1)):
        p = g // lines
        if kinds[p] == NOT_DOMINANT:
            continue
        line = g - p * lines
        tmp = 0.0
        for j in range(size):
            k = _reflect(j - half, length)
            tmp += src[p, k, line] if along_rows else src[p, line, k]
        if along_rows:
            dst[p, 0, line] = tmp / size
        else:
            dst[p, line, 0] = tmp / size
        for j in range(1, length):
            new = _reflect(j + size - 1 - half, length)
            old = _reflect(j - 1 - half, length)
            if along_rows:
                tmp += src[p, new, line] - src[p, old, line]
                dst[p, j, line] = tmp / size
            else:
                tmp += src[p, line, new] - src[p, line, old]
                dst[p, line, j] = tmp / size


@cuda.jit
def _frame_means(smoothed, kinds, starts, order, out):
    """``out[f]`` = mean of frame f's dominant pairs (``order[starts[f]:starts[f + 1]]``,
    in pair order), summed from 0 as ``np.add.at`` does; 0 without any."""
    n, h, w = out.shape
    for g in range(cuda.grid(1), n * h * w, cuda.gridsize(1)):
        f = g // (h * w)
        i = g - f * h * w
        y = i // w
        x = i - y * w
        s = 0.0
        count = 0
        for j in range(starts[f], starts[f + 1]):
            p = order[j]
            if kinds[p] != NOT_DOMINANT:
                s += smoothed[p, y, x]
                count += 1
        out[f, y, x] = s / count if count else 0.0


@cuda.jit
def _frame_peaks(saliency, peaks):
    """One block per frame: the largest value of ``saliency[f]`` into ``peaks[f]``, a
    tree reduction in shared memory (max is exact in any order)."""
    f = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    h, w = saliency.shape[1], saliency.shape[2]
    best = cuda.shared.array(PEAK_THREADS, float64)
    m = -math.inf
    for i in range(tid, h * w, nt):
        m = max(m, saliency[f, i // w, i % w])
    best[tid] = m
    cuda.syncthreads()
    step = nt // 2
    while step > 0:
        if tid < step:
            best[tid] = max(best[tid], best[tid + step])
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        peaks[f] = best[0]


def motion_saliency(flows, pairs, n_frames: int, config: UNLCConfig = REFERENCE, *,
                    stream=0) -> MotionSaliency:
    """Per-frame motion saliency from all flow fields of a shot, on the GPU.

    Parameters
    ----------
    flows : (P, s, s, 2) float32 device or host array
        Flow of each pair in pixels of the flow frame (u = x, v = y); finite.
    pairs : (P, 2) int host array
        ``(i, i + j)`` frame indices of each flow field; the saliency goes to frame i.
    n_frames : int
        Frames in the shot.
    config : UNLCConfig
        Uses ``static_magnitude``, ``direction_bins``, ``dominant_direction`` and
        ``saliency_patch``.
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of every copy and launch.

    Returns
    -------
    MotionSaliency
        ``saliency`` (n, s, s) float64 on the device; ``dominant``, ``pair_kinds`` and
        ``peak`` on the host (they come back once, which waits for the stream).

    Raises
    ------
    ValueError
        If the shapes disagree, ``flows`` is not float32, or a pair's first frame is
        outside ``0 .. n_frames - 1``.
    """
    flows = as_device(flows, stream=stream)
    pairs = np.asarray(pairs)
    if flows.ndim != 4 or flows.shape[3] != 2 or pairs.shape != (flows.shape[0], 2):
        raise ValueError(f"flows must be (P, h, w, 2) with pairs (P, 2); got {flows.shape} "
                         f"and {pairs.shape}")
    if flows.dtype != np.float32:
        raise ValueError(f"flows must be float32, got {flows.dtype}")
    n_pairs, h, w, _ = flows.shape
    if h * w == 0:
        raise ValueError(f"flows must have at least one pixel, got {flows.shape}")
    if n_pairs and (pairs[:, 0].min() < 0 or pairs[:, 0].max() >= n_frames):
        raise ValueError(f"pairs' first frames must lie in 0..{n_frames - 1}, got "
                         f"{pairs[:, 0].min()}..{pairs[:, 0].max()}")
    saliency = cuda.device_array((n_frames, h, w), np.float64, stream=stream)
    first = pairs[:, 0].astype(np.int64)
    order = np.argsort(first, kind="stable")
    starts = np.searchsorted(first[order], np.arange(n_frames + 1))
    if n_pairs == 0:
        kinds = cuda.device_array(0, np.int8, stream=stream)
        smoothed = cuda.device_array((0, h, w), np.float64, stream=stream)
    else:
        kinds, smoothed = _pair_maps(flows, config, stream)
    blocks, threads = grid_1d(n_frames * h * w)
    _frame_means[blocks, threads, stream](
        smoothed, kinds, cuda.to_device(starts, stream=stream),
        cuda.to_device(order, stream=stream), saliency)
    peaks = cuda.to_device(np.zeros(max(n_frames, 1)), stream=stream)
    if n_frames:
        _frame_peaks[n_frames, 32 if SIMULATOR else PEAK_THREADS, stream](saliency, peaks)
    pair_kinds = kinds.copy_to_host(stream=stream)
    peak = float(peaks.copy_to_host(stream=stream).max())
    stream_sync(stream)
    counts = np.bincount(first[pair_kinds != NOT_DOMINANT], minlength=n_frames)
    return MotionSaliency(saliency, counts > 0, pair_kinds, peak)


def _pair_maps(flows, config: UNLCConfig, stream) -> tuple[object, object]:
    """Kinds (P,) int8 and smoothed deviation maps (P, h, w) float64 of all pairs."""
    n_pairs, h, w, _ = flows.shape
    npix = h * w
    edges = cuda.to_device(np.linspace(-np.pi, np.pi, config.direction_bins + 1), stream=stream)
    mag = cuda.device_array((n_pairs, npix), np.float64, stream=stream)
    theta = cuda.device_array((n_pairs, npix), np.float64, stream=stream)
    bins = cuda.device_array((n_pairs, npix), np.int32, stream=stream)
    blocks, threads = grid_1d(n_pairs * npix)
    _polar[blocks, threads, stream](flows, edges, mag, theta, bins)

    hist = cuda.device_array((n_pairs, config.direction_bins), np.float64, stream=stream)
    kinds = cuda.device_array(n_pairs, np.int8, stream=stream)
    targets = cuda.device_array(n_pairs, np.float64, stream=stream)
    # A warp per 1,024 pixels (32 keys per thread and pass), at most four.
    select_threads = min(128, 32 * -(-npix // 1024))
    _classify[n_pairs, select_threads, stream](
        mag, mag.view(np.int64), bins, edges, float(config.static_magnitude),
        float(config.dominant_direction), hist, kinds, targets)

    deviation = cuda.device_array((n_pairs, h, w), np.float64, stream=stream)
    _deviation[blocks, threads, stream](mag, theta, kinds, targets, deviation)
    size = config.saliency_patch
    if size > 1:  # SciPy skips axes of size 1: the map is then left as it is
        across = cuda.device_array_like(deviation, stream=stream)
        smoothed = cuda.device_array_like(deviation, stream=stream)
        blocks_w, threads_w = grid_1d(n_pairs * w)
        _box_lines[blocks_w, threads_w, stream](deviation, across, kinds, size, True)
        blocks_h, threads_h = grid_1d(n_pairs * h)
        _box_lines[blocks_h, threads_h, stream](across, smoothed, kinds, size, False)
    else:
        smoothed = deviation
    return kinds, smoothed


@cuda.jit
def _pixel_stats(labels, offsets, boxes, counts, bad):
    """Per pixel: its superpixel's pixel count and bounding box (atomics), or the frame's
    ``bad`` flag when its label is outside ``0 .. n_f - 1``."""
    n, h, w = labels.shape
    for g in range(cuda.grid(1), n * h * w, cuda.gridsize(1)):
        f = g // (h * w)
        i = g - f * h * w
        y = i // w
        x = i - y * w
        label = labels[f, y, x]
        if label < 0 or label >= offsets[f + 1] - offsets[f]:
            bad[f] = 1
            continue
        s = offsets[f] + label
        cuda.atomic.add(counts, s, 1)
        cuda.atomic.min(boxes, (s, 0), y)
        cuda.atomic.max(boxes, (s, 1), y)
        cuda.atomic.min(boxes, (s, 2), x)
        cuda.atomic.max(boxes, (s, 3), x)


@dataclass(frozen=True)
class Superpixels:
    """Where a shot's superpixels lie, for kernels that walk one superpixel per thread.

    Attributes
    ----------
    offsets : (n + 1,) int64 device array
        Frame f owns superpixels ``offsets[f] .. offsets[f + 1] - 1``.
    frame : (k,) int32 device array
        Frame of each superpixel.
    boxes : (k, 4) int32 device array
        Bounding box ``y_min, y_max, x_min, x_max`` (inclusive, pixels).
    counts : (k,) int64 device array
        Pixels of each superpixel (all >= 1).
    host_offsets : (n + 1,) int64 ndarray
        ``offsets`` on the host.
    """

    offsets: object
    frame: object
    boxes: object
    counts: object
    host_offsets: np.ndarray


def superpixel_layout(labels, offsets, *, stream=0) -> Superpixels:
    """Pixel counts and bounding boxes of every superpixel of a shot, checked.

    Parameters
    ----------
    labels : (n, h, w) int32 device or host array
        Superpixel labels, contiguous ``0 .. n_f - 1`` in frame f.
    offsets : (n + 1,) int host array
        Frame f owns superpixels ``offsets[f] .. offsets[f + 1] - 1``.
    stream : numba.cuda.Stream or 0, keyword-only

    Returns
    -------
    Superpixels

    Raises
    ------
    ValueError
        If the shapes disagree, ``offsets`` does not start at 0 and rise strictly, a
        label lies outside its frame's range, or a superpixel has no pixels (one small
        copy back, which waits for the stream).
    """
    labels = as_device(labels, stream=stream)
    host_offsets = np.asarray(offsets)
    if labels.ndim != 3 or labels.dtype != np.int32 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty int32 array (n, h, w), got shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    n = labels.shape[0]
    if host_offsets.shape != (n + 1,) or not np.issubdtype(host_offsets.dtype, np.integer):
        raise ValueError(f"offsets must be an integer array of shape ({n + 1},) for {n} "
                         f"frames, got shape {host_offsets.shape} and dtype "
                         f"{host_offsets.dtype}")
    host_offsets = host_offsets.astype(np.int64)
    if host_offsets[0] != 0 or np.any(np.diff(host_offsets) < 1):
        raise ValueError("offsets must start at 0 and rise strictly (every frame has at "
                         f"least one superpixel), got {host_offsets[:8]}...")
    k = int(host_offsets[-1])
    h, w = labels.shape[1:]
    init = np.empty((k, 4), np.int32)
    init[:] = (h, -1, w, -1)
    boxes = cuda.to_device(init, stream=stream)
    counts = cuda.to_device(np.zeros(k, np.int64), stream=stream)
    bad = cuda.to_device(np.zeros(n, np.int32), stream=stream)
    device_offsets = cuda.to_device(host_offsets, stream=stream)
    blocks, threads = grid_1d(labels.size)
    _pixel_stats[blocks, threads, stream](labels, device_offsets, boxes, counts, bad)
    bad_frames = np.flatnonzero(bad.copy_to_host(stream=stream))
    host_counts = counts.copy_to_host(stream=stream)
    stream_sync(stream)
    if bad_frames.size:
        f = bad_frames[0]
        n_f = host_offsets[f + 1] - host_offsets[f]
        raise ValueError(f"labels of frame {f} must lie in 0..{n_f - 1} (offsets give it "
                         f"{n_f} superpixels)")
    empty = np.flatnonzero(host_counts == 0)
    if empty.size:
        f = np.searchsorted(host_offsets, empty[0], side="right") - 1
        raise ValueError(f"superpixel {empty[0] - host_offsets[f]} of frame {f} has no pixels "
                         "(labels must be contiguous 0..n_f-1 in every frame)")
    frame = np.repeat(np.arange(n, dtype=np.int32), np.diff(host_offsets))
    return Superpixels(device_offsets, cuda.to_device(frame, stream=stream), boxes, counts,
                       host_offsets)


@cuda.jit
def _superpixel_means(saliency, labels, offsets, frame, boxes, counts, row_scale, col_scale,
                      border, votes, peaks):
    """One thread per superpixel: its mean of the bilinearly upsampled, border-zeroed
    saliency, summed over its pixels in raster order (its bounding box walked row by
    row), and its largest value into its frame's ``peaks`` entry (atomic max)."""
    h, w = labels.shape[1], labels.shape[2]
    s_h, s_w = saliency.shape[1], saliency.shape[2]
    for s in range(cuda.grid(1), votes.shape[0], cuda.gridsize(1)):
        f = frame[s]
        label = s - offsets[f]
        total = 0.0
        peak = -math.inf
        for y in range(boxes[s, 0], boxes[s, 1] + 1):
            # scipy.ndimage.zoom(order=1)'s source coordinate, as the CPU computes it.
            row = mul_rn(float64(y), row_scale)  # rounded before ``row - y0``, as on the CPU
            y0 = min(int(row), s_h - 1)  # floor: row >= 0
            y1 = min(y0 + 1, s_h - 1)
            ty = row - y0
            inside_y = border <= y < h - border
            for x in range(boxes[s, 2], boxes[s, 3] + 1):
                if labels[f, y, x] != label:
                    continue
                value = 0.0
                if inside_y and border <= x < w - border:
                    column = mul_rn(float64(x), col_scale)
                    x0 = min(int(column), s_w - 1)
                    x1 = min(x0 + 1, s_w - 1)
                    tx = column - x0
                    top = (mul_rn(1.0 - tx, saliency[f, y0, x0])
                           + mul_rn(tx, saliency[f, y0, x1]))
                    low = (mul_rn(1.0 - tx, saliency[f, y1, x0])
                           + mul_rn(tx, saliency[f, y1, x1]))
                    value = mul_rn(1.0 - ty, top) + mul_rn(ty, low)
                total += value
                peak = max(peak, value)
        votes[s] = total / counts[s]
        cuda.atomic.max(peaks, f, peak)


@cuda.jit
def _scale(values, divisor):
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        values[i] /= divisor


def superpixel_saliency(saliency, labels, offsets, config: UNLCConfig = REFERENCE, *,
                        stream=0, layout: Superpixels | None = None) -> tuple[object, float]:
    """Initial votes: mean normalised saliency of each superpixel (spec section 6).

    The CPU's :func:`fastunlc.saliency.superpixel_saliency` to the bit (see the module
    docstring): bilinear upsampling to the frame size (``scipy.ndimage.zoom(order=1)``,
    corners aligned), a border of ``int(min(h, w) * border_fraction)`` pixels zeroed,
    superpixel means, all divided by the shot's peak when that is > 0. The upsampled
    frames are never stored.

    Parameters
    ----------
    saliency : (n, s_h, s_w) float64 device or host array
        Per-frame saliency at flow resolution.
    labels : (n, h, w) int32 device or host array
        Superpixel labels, contiguous ``0 .. n_f - 1`` in frame f.
    offsets : (n + 1,) int host array
        Frame f owns superpixels ``offsets[f] .. offsets[f + 1] - 1``.
    config : UNLCConfig
        Uses ``border_fraction``.
    stream : numba.cuda.Stream or 0, keyword-only
    layout : Superpixels, keyword-only, optional
        :func:`superpixel_layout` of ``labels`` and ``offsets`` if the caller has it.

    Returns
    -------
    votes : (k,) float64 device array
        Mean upsampled, border-zeroed saliency of each superpixel divided by the peak
        when that is > 0; values in [0, 1].
    peak : float
        The shot's largest upsampled, border-zeroed saliency before normalisation (one
        copy of n values back, which waits for the stream).

    Raises
    ------
    ValueError
        As :func:`superpixel_layout`, or if ``saliency`` has another frame count or
        dtype.
    """
    saliency = as_device(saliency, stream=stream)
    labels = as_device(labels, stream=stream)
    layout = layout or superpixel_layout(labels, offsets, stream=stream)
    n, h, w = labels.shape
    if saliency.ndim != 3 or saliency.shape[0] != n or saliency.dtype != np.float64:
        raise ValueError(f"saliency must be float64 (n, s_h, s_w) with n = {n} frames, got "
                         f"{saliency.dtype} {saliency.shape}")
    k = int(layout.host_offsets[-1])
    votes = cuda.device_array(k, np.float64, stream=stream)
    peaks = cuda.to_device(np.full(n, -np.inf), stream=stream)
    row_scale = (saliency.shape[1] - 1) / max(h - 1, 1)
    col_scale = (saliency.shape[2] - 1) / max(w - 1, 1)
    border = int(min(h, w) * config.border_fraction)
    blocks, threads = grid_1d(k)
    _superpixel_means[blocks, threads, stream](
        saliency, labels, layout.offsets, layout.frame, layout.boxes, layout.counts,
        row_scale, col_scale, border, votes, peaks)
    host_peaks = peaks.copy_to_host(stream=stream)
    stream_sync(stream)
    peak = float(host_peaks.max())
    if peak > 0:
        _scale[blocks, threads, stream](votes, peak)
    return votes, peak
