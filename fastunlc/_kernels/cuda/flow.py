"""Optical flow stage on the GPU: the flow-frame resize and the coarse-to-fine flow of
every pair of a shot at once (spec section 2; CPU twins in :mod:`fastunlc.flow`).

``resize_for_flow`` is Pillow's ``Image.resize(..., BILINEAR)`` in Pillow's own
fixed-point arithmetic (coefficients with 22 fraction bits, a horizontal pass rounded to
uint8, then a vertical one), so its output equals the CPU's byte for byte.

``optical_flow`` is the Brox / Ce Liu coarse-to-fine variational flow of
``csrc/flow/coarse2fine.cpp`` and :mod:`fastunlc.reference.flow`, step for step and in
float64 like them, batched: each step is one launch over every pair (or frame) and pixel
of a pyramid level, and each frame's pyramid is built once. The one change of algorithm
is the linear solver: the reference's lexicographic SOR sweep is a recurrence along
each row, so every sweep here is red-black instead (the pixels with ``i + j`` even, then
those with ``i + j`` odd, each half a parallel launch), with the same per-pixel update,
the same omega (1.8) and the same number of sweeps. Red-black converges at about the
same rate but to different intermediate iterates, so the flow differs from the CPU's by
what the unconverged sweeps leave (see the tests for the measured end-point
differences). Floating-point operations are otherwise in the reference's order; the GPU
may fuse a multiply and an add where the CPU rounds twice, and the per-channel mean
residual that switches a silent channel off is summed in a different order (it is only
compared with 1e-20).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import cuda

from ...config import REFERENCE, UNLCConfig
from .arrays import as_device, launch_1d

# -- Pillow's bilinear resize ------------------------------------------------------------

_PRECISION_BITS = 22
"""Fraction bits of Pillow's 8-bit resampling coefficients (32 - 8 - 2)."""


@lru_cache(maxsize=64)
def _pil_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for its BILINEAR filter
    along one axis, in the same double arithmetic: ``(out_size, 2)`` int32 (first source
    index, taps) and ``(out_size, ksize)`` int32 coefficients (value * 2**22, rounded)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the bilinear filter's support is 1, widened when shrinking
    ksize = math.ceil(support) * 2 + 1
    bounds = np.zeros((out_size, 2), dtype=np.int32)
    coeffs = np.zeros((out_size, ksize), dtype=np.int32)
    ss = 1.0 / filterscale
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        weights = []
        for x in range(xmax):
            t = abs((x + xmin - center + 0.5) * ss)
            weights.append(1.0 - t if t < 1.0 else 0.0)
        total = 0.0
        for weight in weights:
            total += weight
        for x, weight in enumerate(weights):
            k = weight / total if total != 0.0 else weight
            coeffs[xx, x] = int(0.5 + k * (1 << _PRECISION_BITS))
        bounds[xx] = xmin, xmax
    return bounds, coeffs


@cuda.jit(device=True)
def _clip8(ss):
    return min(max(ss >> _PRECISION_BITS, 0), 255)


@cuda.jit
def _resize_rows(src, bounds, coeffs, dst):
    """dst (n, h, size, 3) uint8 = src (n, h, w, 3) resampled along x."""
    t = cuda.grid(1)
    n, h, size, _ = dst.shape
    if t >= n * h * size:
        return
    f, rest = divmod(t, h * size)
    i, xx = divmod(rest, size)
    first, taps = bounds[xx, 0], bounds[xx, 1]
    for c in range(3):
        ss = 1 << (_PRECISION_BITS - 1)
        for x in range(taps):
            ss += np.int64(src[f, i, first + x, c]) * coeffs[xx, x]
        dst[f, i, xx, c] = _clip8(ss)


@cuda.jit
def _resize_columns(src, bounds, coeffs, dst):
    """dst (n, size, size, 3) uint8 = src (n, h, size, 3) resampled along y."""
    t = cuda.grid(1)
    n, size, w, _ = dst.shape
    if t >= n * size * w:
        return
    f, rest = divmod(t, size * w)
    yy, j = divmod(rest, w)
    first, taps = bounds[yy, 0], bounds[yy, 1]
    for c in range(3):
        ss = 1 << (_PRECISION_BITS - 1)
        for y in range(taps):
            ss += np.int64(src[f, first + y, j, c]) * coeffs[yy, y]
        dst[f, yy, j, c] = _clip8(ss)


def resize_for_flow(frames, size: int, *, stream=0):
    """Resize frames to ``size x size`` for the flow: Pillow's BILINEAR resize, exactly.

    The GPU twin of :func:`fastunlc.flow.resize_for_flow`: Pillow's bilinear filter
    widened by the shrink factor (a low-pass when shrinking), its coefficients computed
    on the host as Pillow computes them and applied in its integer arithmetic, a
    horizontal pass rounded to uint8 and then a vertical one. The output equals the CPU's
    byte for byte.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8 device or host array
        RGB frames.
    size : int
        Side of the output frames in pixels (``config.flow_size``, 100 in the reference).
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of every copy and launch.

    Returns
    -------
    (n, size, size, 3) uint8 device array

    Raises
    ------
    ValueError
        Wrong dtype or shape, or ``size < 1``.
    """
    frames = as_device(frames, stream=stream)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be uint8 (n, h, w, 3), got {frames.dtype} {frames.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    n, h, w, _ = frames.shape
    out = cuda.device_array((n, size, size, 3), dtype=np.uint8, stream=stream)
    if n == 0:
        return out
    rows = cuda.device_array((n, h, size, 3), dtype=np.uint8, stream=stream)
    bounds_x, coeffs_x = (cuda.to_device(a, stream=stream) for a in _pil_coefficients(w, size))
    bounds_y, coeffs_y = (cuda.to_device(a, stream=stream) for a in _pil_coefficients(h, size))
    blocks, threads = launch_1d(n * h * size)
    _resize_rows[blocks, threads, stream](frames, bounds_x, coeffs_x, rows)
    blocks, threads = launch_1d(n * size * size)
    _resize_columns[blocks, threads, stream](rows, bounds_y, coeffs_y, out)
    return out


# -- coarse-to-fine flow: constants of the model (as in csrc/flow/coarse2fine.cpp) -------

_FEATURES = 5  # grey, d(grey)/dx, d(grey)/dy, G - R, G - B
_EPS2 = 1e-3 ** 2  # Charbonnier epsilon of both penalties, squared
_OMEGA = 1.8  # SOR over-relaxation
_RELAX = 1 - _OMEGA
_INCREMENT_PRIOR = 0.05  # extra diagonal of the system, in units of alpha
_SILENT_CHANNEL = 1e-20
_INITIAL_RESIDUAL = 0.02
_NO_RESIDUAL = 0.001
_MAX_RESIDUAL = 1e6
_DERIVATIVE = np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / 12.0
_PRESMOOTH = np.array([0.02, 0.11, 0.74, 0.11, 0.02])
_BLEND_FIRST = 0.4
_BLEND_SECOND = 0.6
_LUMA_R, _LUMA_G, _LUMA_B = 0.299, 0.587, 0.114
_RED, _BLACK = 0, 1  # SOR colours: (i + j) % 2
_REDUCE = 128  # threads of a per-pair reduction block
_REAL = np.float64
"""Element type of every array of the solver: the CPU's, so that the tests can hold the
kernels to the NumPy oracle. float32 arrays would halve the memory traffic of the
(bandwidth-bound) sweeps for a flow that moves by 1e-6 px on average (1.4e-5 px at
most), measured on the simulator with the reference's iterations on a 24 x 24 real pair,
where red-black itself moves it by 0.04 px from Gauss-Seidel."""

# Fast mode's schedule (outer iterations, sweeps at the finest level, sweeps added per
# level up): of the schedules tried at about a quarter of the reference's work it is the
# closest to the reference's flow (tests/test_cuda_flow.py's docstring has the figures).
# More outer iterations beat more sweeps; not solving the finest level (its flow
# resampled from the next one) costs 2-3 times the end-point difference for the same work.
_FAST_SCHEDULE = (6, 6, 1)


@dataclass(frozen=True)
class _Level:
    """One pyramid level, as ``PyramidLevel`` in ``csrc/flow/coarse2fine.h``: smooth
    ``source`` (-1: the input frame) with a Gaussian of ``sigma`` and ``radius`` taps,
    then resample it by ``scale``."""

    height: int
    width: int
    source: int = -1
    sigma: float = 0.0
    radius: int = 0
    scale: float = 1.0


def _pyramid_levels(height: int, width: int, ratio: float, min_width: int) -> list[_Level]:
    """The C++ ``pyramid_levels``, finest first; ValueError where it throws."""
    if not 0.4 <= ratio <= 0.98:
        raise ValueError(f"ratio must be in [0.4, 0.98], got {ratio}")
    if min_width < 1:
        raise ValueError(f"min_width must be >= 1, got {min_width}")
    if height < 1 or width < 1:
        raise ValueError("frames must be at least 1 x 1 pixels")
    base_sigma = 1 / ratio - 1
    # Levels down to a quarter of the size come from the frame itself, coarser ones from
    # the level `direct` steps finer.
    direct = int(math.log(0.25) / math.log(ratio))
    n_levels = max(1, int(math.log(min_width / width) / math.log(ratio)))
    levels = [_Level(height, width)]
    for i in range(1, n_levels):
        if i <= direct:
            source, sigma, scale = -1, base_sigma * i, ratio ** i
            sh, sw = height, width
        else:
            source, sigma = i - direct, base_sigma * direct
            sh, sw = levels[source].height, levels[source].width
            scale = ratio ** i * width / sw
        level = _Level(int(sh * scale), int(sw * scale), source, sigma, int(sigma * 3), scale)
        if level.height < 1 or level.width < 1:
            raise ValueError(f"frames of {height} x {width} pixels are too small for pyramid "
                             f"level {i} (ratio {ratio}, min_width {min_width})")
        levels.append(level)
    return levels


def _gaussian_taps(sigma: float, radius: int) -> np.ndarray:
    """Normalised Gaussian taps for offsets ``-radius..radius``, summed in order (as the C++)."""
    taps = [math.exp(-float(i * i) / (sigma * sigma * 2)) for i in range(-radius, radius + 1)]
    total = 0.0
    for t in taps:
        total += t
    return np.array([t / total for t in taps])


# -- filters and sampling -----------------------------------------------------------------


@cuda.jit(device=True)
def _clamp(i, n):
    return min(max(i, 0), n - 1)


@cuda.jit
def _correlate_x(src, dst, taps):
    """dst (n, h, w, C) = src correlated along x with ``taps`` (odd length), border
    replicated; sums start at 0 and run in tap order."""
    t = cuda.grid(1)
    n, h, w, channels = dst.shape
    if t >= n * h * w:
        return
    f, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    radius = taps.size // 2
    for c in range(channels):
        acc = 0.0
        for o in range(-radius, radius + 1):
            acc += src[f, i, _clamp(j + o, w), c] * taps[o + radius]
        dst[f, i, j, c] = acc


@cuda.jit
def _correlate_y(src, dst, taps):
    """As :func:`_correlate_x`, along y."""
    t = cuda.grid(1)
    n, h, w, channels = dst.shape
    if t >= n * h * w:
        return
    f, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    radius = taps.size // 2
    for c in range(channels):
        acc = 0.0
        for o in range(-radius, radius + 1):
            acc += src[f, _clamp(i + o, h), j, c] * taps[o + radius]
        dst[f, i, j, c] = acc


@cuda.jit(device=True)
def _bilinear(img, f, x, y, c):
    """``img[f]`` (h, w, C) at (x, y), channel c: the integer part truncates towards zero,
    the fraction is clipped to [0, 1] and the corners to the image (filters.h)."""
    h, w = img.shape[1], img.shape[2]
    x0, y0 = int(x), int(y)
    fx = max(min(x - x0, 1.0), 0.0)
    fy = max(min(y - y0, 1.0), 0.0)
    xa, xb = _clamp(x0, w), _clamp(x0 + 1, w)
    ya, yb = _clamp(y0, h), _clamp(y0 + 1, h)
    out = 0.0
    out += img[f, ya, xa, c] * ((1.0 - fx) * (1.0 - fy))
    out += img[f, yb, xa, c] * ((1.0 - fx) * fy)
    out += img[f, ya, xb, c] * (fx * (1.0 - fy))
    out += img[f, yb, xb, c] * (fx * fy)
    return out


@cuda.jit
def _resample(src, dst, scale_y, scale_x):
    """dst (n, dh, dw, C): pixel (i, j) is src sampled at ((i + 1) / scale_y - 1,
    (j + 1) / scale_x - 1)."""
    t = cuda.grid(1)
    n, h, w, channels = dst.shape
    if t >= n * h * w:
        return
    f, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    x = (j + 1) / scale_x - 1
    y = (i + 1) / scale_y - 1
    for c in range(channels):
        dst[f, i, j, c] = _bilinear(src, f, x, y, c)


@cuda.jit
def _unit_rgb(frames, rgb):
    """rgb (n, h, w, 3) float = frames (uint8) / 255."""
    t = cuda.grid(1)
    n, h, w, _ = rgb.shape
    if t >= n * h * w:
        return
    f, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    for c in range(3):
        rgb[f, i, j, c] = frames[f, i, j, c] / 255.0


@cuda.jit
def _grey(rgb, grey):
    """grey (n, h, w, 1): Rec. 601 luma of rgb (n, h, w, 3)."""
    t = cuda.grid(1)
    n, h, w, _ = grey.shape
    if t >= n * h * w:
        return
    f, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    grey[f, i, j, 0] = (rgb[f, i, j, 0] * _LUMA_R + rgb[f, i, j, 1] * _LUMA_G
                        + rgb[f, i, j, 2] * _LUMA_B)


@cuda.jit
def _features(rgb, grey, feat):
    """feat (n, h, w, 5): grey, its x and y derivatives (5-tap central filter, border
    replicated), G - R, G - B."""
    t = cuda.grid(1)
    n, h, w, _ = feat.shape
    if t >= n * h * w:
        return
    f, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    gx = 0.0
    gy = 0.0
    for o in range(-2, 3):
        gx += grey[f, i, _clamp(j + o, w), 0] * _DERIVATIVE[o + 2]
    for o in range(-2, 3):
        gy += grey[f, _clamp(i + o, h), j, 0] * _DERIVATIVE[o + 2]
    feat[f, i, j, 0] = grey[f, i, j, 0]
    feat[f, i, j, 1] = gx
    feat[f, i, j, 2] = gy
    feat[f, i, j, 3] = rgb[f, i, j, 1] - rgb[f, i, j, 0]
    feat[f, i, j, 4] = rgb[f, i, j, 1] - rgb[f, i, j, 2]


# -- one pyramid level of every pair ------------------------------------------------------


@cuda.jit(device=True)
def _warp_pixel(feat, a, b, p, i, j, x, y, warped):
    """warped[p, i, j] = F2 (frame b) at (x, y), or F1 (frame a) where that leaves the image."""
    h, w = feat.shape[1], feat.shape[2]
    if x < 0 or x > w - 1 or y < 0 or y > h - 1:
        for k in range(_FEATURES):
            warped[p, i, j, k] = feat[a, i, j, k]
    else:
        for k in range(_FEATURES):
            warped[p, i, j, k] = _bilinear(feat, b, x, y, k)


@cuda.jit
def _start_level(feat, pairs, uv_coarse, uv, du, dv, warped, top, grow):
    """Flow uv (P, h, w, 2), zero increments and warped F2 of every pair at the start of
    a level: zero flow and F2 itself at the coarsest level (``top``), else the coarser
    level's flow resampled to this one, times ``grow`` (1 / ratio), and F2 warped by it."""
    t = cuda.grid(1)
    n_pairs, h, w = du.shape
    if t >= n_pairs * h * w:
        return
    p, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    a, b = pairs[p, 0], pairs[p, 1]
    du[p, i, j] = 0.0
    dv[p, i, j] = 0.0
    if top:
        uv[p, i, j, 0] = 0.0
        uv[p, i, j, 1] = 0.0
        for k in range(_FEATURES):
            warped[p, i, j, k] = feat[b, i, j, k]
        return
    hc, wc = uv_coarse.shape[1], uv_coarse.shape[2]
    x = (j + 1) / (w / wc) - 1
    y = (i + 1) / (h / hc) - 1
    uu = _bilinear(uv_coarse, p, x, y, 0) * grow
    vv = _bilinear(uv_coarse, p, x, y, 1) * grow
    uv[p, i, j, 0] = uu
    uv[p, i, j, 1] = vv
    _warp_pixel(feat, a, b, p, i, j, j + uu, i + vv, warped)


@cuda.jit
def _smoothness(uv, du, dv, phi):
    """phi (P, h, w): robust weight of the smoothness term, 0.5 / sqrt(|grad(u + du)|^2
    + |grad(v + dv)|^2 + eps^2), forward differences (0 in the last column / row)."""
    t = cuda.grid(1)
    n_pairs, h, w = du.shape
    if t >= n_pairs * h * w:
        return
    p, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    ux = uy = vx = vy = 0.0
    u0 = uv[p, i, j, 0] + du[p, i, j]
    v0 = uv[p, i, j, 1] + dv[p, i, j]
    if j < w - 1:
        ux = (uv[p, i, j + 1, 0] + du[p, i, j + 1]) - u0
        vx = (uv[p, i, j + 1, 1] + dv[p, i, j + 1]) - v0
    if i < h - 1:
        uy = (uv[p, i + 1, j, 0] + du[p, i + 1, j]) - u0
        vy = (uv[p, i + 1, j, 1] + dv[p, i + 1, j]) - v0
    phi[p, i, j] = 0.5 / math.sqrt(ux * ux + uy * uy + vx * vx + vy * vy + _EPS2)


@cuda.jit(device=True)
def _weighted_laplacian(f, c, phi, p, i, j):
    """-div(phi grad f) of channel c at (i, j): phi of a pixel weighs the edges to its
    right and below."""
    h, w = f.shape[1], f.shape[2]
    acc = 0.0
    if j < w - 1:
        acc -= (f[p, i, j + 1, c] - f[p, i, j, c]) * phi[p, i, j]
    if j > 0:
        acc += (f[p, i, j, c] - f[p, i, j - 1, c]) * phi[p, i, j - 1]
    if i < h - 1:
        acc -= (f[p, i + 1, j, c] - f[p, i, j, c]) * phi[p, i, j]
    if i > 0:
        acc += (f[p, i, j, c] - f[p, i - 1, j, c]) * phi[p, i - 1, j]
    return acc


@cuda.jit(device=True)
def _blend(smooth1, smooth2, a, p, i, j, k):
    return smooth1[a, i, j, k] * _BLEND_FIRST + smooth2[p, i, j, k] * _BLEND_SECOND


@cuda.jit
def _build_system(smooth1, smooth2, pairs, uv, du, dv, phi, noise, alpha, coef):
    """Each pixel's 2x2 system for the increment, then the increment reset to zero.

    The data term is linearised with the x and y derivatives of the blend 0.4 F1 + 0.6
    warped F2 (both pre-smoothed: ``smooth1`` per frame, ``smooth2`` per pair) and their
    difference; its robust weights use the current increment (du, dv). ``coef`` (5, P,
    h, w) gets the SOR factors omega / (axx + a0 + c) and omega / (ayy + a0 + c), axy,
    bx and by (see :func:`_sor_half`)."""
    t = cuda.grid(1)
    n_pairs, h, w = du.shape
    if t >= n_pairs * h * w:
        return
    p, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    a = pairs[p, 0]
    d_u = du[p, i, j]
    d_v = dv[p, i, j]
    sxx = sxy = syy = sxt = syt = 0.0
    for k in range(_FEATURES):
        gx = 0.0
        gy = 0.0
        for o in range(-2, 3):
            gx += _blend(smooth1, smooth2, a, p, i, _clamp(j + o, w), k) * _DERIVATIVE[o + 2]
        for o in range(-2, 3):
            gy += _blend(smooth1, smooth2, a, p, _clamp(i + o, h), j, k) * _DERIVATIVE[o + 2]
        gt = smooth2[p, i, j, k] - smooth1[a, i, j, k]
        r = gt + gx * d_u + gy * d_v
        r = r * r
        psi = 0.0 if noise[p, k] < _SILENT_CHANNEL else 1.0 / (2.0 * math.sqrt(r + _EPS2))
        sxx += psi * gx * gx
        sxy += psi * gx * gy
        syy += psi * gy * gy
        sxt += psi * gx * gt
        syt += psi * gy * gt
    axx = sxx / _FEATURES
    axy = sxy / _FEATURES
    ayy = syy / _FEATURES
    bx = -(sxt / _FEATURES) - alpha * _weighted_laplacian(uv, 0, phi, p, i, j)
    by = -(syt / _FEATURES) - alpha * _weighted_laplacian(uv, 1, phi, p, i, j)
    # Edge weights to the left, right, up and down neighbours (0 if none), in the
    # reference's order.
    coeff = 0.0
    if j > 0:
        coeff += phi[p, i, j - 1]
    if j < w - 1:
        coeff += phi[p, i, j]
    if i > 0:
        coeff += phi[p, i - 1, j]
    if i < h - 1:
        coeff += phi[p, i, j]
    coeff *= alpha
    prior = alpha * _INCREMENT_PRIOR
    coef[0, p, i, j] = _OMEGA / (axx + prior + coeff)
    coef[1, p, i, j] = _OMEGA / (ayy + prior + coeff)
    coef[2, p, i, j] = axy
    coef[3, p, i, j] = bx
    coef[4, p, i, j] = by
    # SOR starts from a zero increment; this pixel's was read above, and the only other
    # reader of the increments (the smoothness weights) ran before this launch.
    du[p, i, j] = 0.0
    dv[p, i, j] = 0.0


@cuda.jit
def _sor_half(coef, phi, du, dv, alpha, colour):
    """Half a red-black SOR sweep: the pixels with (i + j) % 2 == colour, each from its
    four neighbours (all of the other colour). Per pixel, the reference's update
        du <- (1 - omega) du + ku (bx + alpha sum_n w_n du_n - axy dv)
        dv <- (1 - omega) dv + kv (by + alpha sum_n w_n dv_n - axy du)
    (ku, kv from :func:`_build_system`, w_n the edge weights, du already updated when
    dv is), with its operations in the same order."""
    t = cuda.grid(1)
    n_pairs, h, w = du.shape
    half = (w + 1) // 2
    if t >= n_pairs * h * half:
        return
    p, rest = divmod(t, h * half)
    i, jj = divmod(rest, half)
    j = 2 * jj + (i + colour) % 2
    if j >= w:
        return
    s1 = 0.0
    s2 = 0.0
    if j > 0:
        s1 += phi[p, i, j - 1] * du[p, i, j - 1]
        s2 += phi[p, i, j - 1] * dv[p, i, j - 1]
    if j < w - 1:
        s1 += phi[p, i, j] * du[p, i, j + 1]
        s2 += phi[p, i, j] * dv[p, i, j + 1]
    if i > 0:
        s1 += phi[p, i - 1, j] * du[p, i - 1, j]
        s2 += phi[p, i - 1, j] * dv[p, i - 1, j]
    if i < h - 1:
        s1 += phi[p, i, j] * du[p, i + 1, j]
        s2 += phi[p, i, j] * dv[p, i + 1, j]
    s1 *= -alpha
    s2 *= -alpha
    axy = coef[2, p, i, j]
    s1 += axy * dv[p, i, j]
    d_u = _RELAX * du[p, i, j] + coef[0, p, i, j] * (coef[3, p, i, j] - s1)
    du[p, i, j] = d_u
    s2 += axy * d_u
    dv[p, i, j] = _RELAX * dv[p, i, j] + coef[1, p, i, j] * (coef[4, p, i, j] - s2)


@cuda.jit
def _update_and_warp(feat, pairs, uv, du, dv, warped):
    """Flow += increment, increment reset to zero, F2 warped by the new flow."""
    t = cuda.grid(1)
    n_pairs, h, w = du.shape
    if t >= n_pairs * h * w:
        return
    p, rest = divmod(t, h * w)
    i, j = divmod(rest, w)
    uu = uv[p, i, j, 0] + du[p, i, j]
    vv = uv[p, i, j, 1] + dv[p, i, j]
    uv[p, i, j, 0] = uu
    uv[p, i, j, 1] = vv
    du[p, i, j] = 0.0
    dv[p, i, j] = 0.0
    _warp_pixel(feat, pairs[p, 0], pairs[p, 1], p, i, j, j + uu, i + vv, warped)


@cuda.jit
def _mean_residual(feat, pairs, warped, noise):
    """noise (P, 5): mean |F1 - warped F2| of each channel over the residuals in
    (0, 1e6), 0.001 where none counts. One block of _REDUCE threads per pair."""
    p = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    total = cuda.shared.array((_REDUCE, _FEATURES), dtype=np.float64)
    count = cuda.shared.array((_REDUCE, _FEATURES), dtype=np.float64)
    _, h, w, _ = warped.shape
    a = pairs[p, 0]
    for k in range(_FEATURES):
        total[tid, k] = 0.0
        count[tid, k] = 0.0
    for q in range(tid, h * w, _REDUCE):
        i, j = divmod(q, w)
        for k in range(_FEATURES):
            r = abs(feat[a, i, j, k] - warped[p, i, j, k])
            if r > 0.0 and r < _MAX_RESIDUAL:
                total[tid, k] += r
                count[tid, k] += 1.0
    cuda.syncthreads()
    stride = _REDUCE // 2
    while stride > 0:
        if tid < stride:
            for k in range(_FEATURES):
                total[tid, k] += total[tid + stride, k]
                count[tid, k] += count[tid + stride, k]
        cuda.syncthreads()
        stride //= 2
    if tid < _FEATURES:
        noise[p, tid] = total[0, tid] / count[0, tid] if count[0, tid] > 0.0 else _NO_RESIDUAL


@cuda.jit
def _fill(a, value):
    """Every element of the 2-D array ``a`` = value."""
    t = cuda.grid(1)
    if t < a.size:
        i, j = divmod(t, a.shape[1])
        a[i, j] = value


@cuda.jit
def _write_flow(uv, out):
    """out (P, h, w, 2) float32 = the flow uv, rounded."""
    t = cuda.grid(1)
    if t < out.size:
        p, rest = divmod(t, out.shape[1] * out.shape[2] * 2)
        i, rest = divmod(rest, out.shape[2] * 2)
        j, c = divmod(rest, 2)
        out[p, i, j, c] = uv[p, i, j, c]


# -- the public function -------------------------------------------------------------------


def _launch(kernel, items: int, stream, *args) -> None:
    """``kernel`` over ``items`` threads (one per item) on ``stream``."""
    blocks, threads = launch_1d(items)
    kernel[blocks, threads, stream](*args)


def _view(buffer, shape: tuple[int, ...]):
    """The first prod(shape) elements of the flat device array ``buffer``, reshaped."""
    return buffer[:math.prod(shape)].reshape(shape)


def _checked_pairs(pairs, n_frames: int) -> np.ndarray:
    """``pairs`` as (P, 2) int32 host array after the CPU's checks."""
    if hasattr(pairs, "__cuda_array_interface__") or hasattr(pairs, "copy_to_host"):
        pairs = as_device(pairs).copy_to_host()
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must have shape (P, 2), got {pairs.shape}")
    if pairs.size and not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"pairs must hold integer frame indices, got {pairs.dtype}")
    bad = (pairs < 0) | (pairs >= n_frames)
    if bad.any():
        p = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"pairs[{p}] = {tuple(pairs[p].tolist())} is out of range for "
                         f"{n_frames} frames")
    return pairs.astype(np.int32)


def _schedule(config: UNLCConfig, fast: bool) -> tuple[int, int, int]:
    """Outer iterations and SOR sweeps at the finest level, and the sweeps added per level
    up (level k runs ``outer + k`` outer iterations of ``sweeps + step * k`` sweeps)."""
    if fast:
        return _FAST_SCHEDULE
    return config.c2f_outer_iterations, config.c2f_sor_iterations, 3


def optical_flow(frames_small, pairs, config: UNLCConfig = REFERENCE, *, stream=0):
    """Coarse-to-fine variational flow of every pair of a shot, on the GPU.

    The GPU twin of :func:`fastunlc.flow.optical_flow` with ``config.flow == "c2f"``:
    the same pyramid, features, warping, robust penalties and iteration counts (the
    ``c2f_*`` fields), in float64, with red-black SOR sweeps in place of the CPU's
    lexicographic ones (see the module docstring).

    Parameters
    ----------
    frames_small : (n, h, w, 3) uint8 device or host array
        RGB frames at flow resolution (:func:`resize_for_flow`).
    pairs : (P, 2) int host (or device) array
        Frame indices ``(a, b)`` in ``[0, n)``, e.g. from :func:`fastunlc.flow.flow_pairs`;
        read on the host for the checks.
    config : UNLCConfig
        ``c2f_alpha``, ``c2f_ratio``, ``c2f_min_width``, ``c2f_outer_iterations``,
        ``c2f_inner_iterations`` and ``c2f_sor_iterations`` are used; ``flow`` must be
        ``"c2f"`` or ``"c2f-fast"`` (below).
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of every copy and launch.

    Returns
    -------
    (P, h, w, 2) float32 device array
        Flow ``(u, v)`` in pixels from frame ``a`` to frame ``b``:
        ``frame_a(x, y) ~ frame_b(x + u, y + v)``.

    Raises
    ------
    ValueError
        Wrong dtype or shape, a pair index out of range, ``config.flow`` neither
        ``"c2f"`` nor ``"c2f-fast"``, or frames too small for the pyramid.

    Notes
    -----
    ``config.flow == "c2f-fast"`` is the fast mode: 6 outer iterations at the finest
    level (+1 per level up), each of 6 red-black sweeps (+1 per level up), instead of
    ``c2f_outer_iterations`` (+1) of ``c2f_sor_iterations`` (+3); the pyramid, alpha and
    the inner iterations are the config's. With the reference's settings on 100 x 100
    frames (5 levels): 3.8 times fewer launches (940 against 3,610 a shot) and 5.3 times
    fewer SOR pixel updates, for a mean end-point difference from the CPU's flow of
    0.017 px (3.6 % of the mean flow magnitude; 0.15 px at most for a pair) over 16 real
    and synthetic pairs (figures in tests/test_cuda_flow.py's docstring).
    """
    if config.flow not in ("c2f", "c2f-fast"):
        raise ValueError("the CUDA flow computes config.flow = 'c2f' or 'c2f-fast', got "
                         f"{config.flow!r}")
    fast = config.flow == "c2f-fast"
    frames = as_device(frames_small, stream=stream)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError("frames_small must be uint8 (n, h, w, 3), got "
                         f"{frames.dtype} {frames.shape}")
    n, height, width, _ = frames.shape
    pairs_host = _checked_pairs(pairs, n)
    n_pairs = len(pairs_host)
    out = cuda.device_array((n_pairs, height, width, 2), dtype=np.float32, stream=stream)
    if n_pairs == 0:
        return out
    levels = _pyramid_levels(height, width, config.c2f_ratio, config.c2f_min_width)
    feat, smooth1 = _build_pyramids(frames, levels, stream)

    pair_dev = cuda.to_device(pairs_host, stream=stream)
    presmooth = cuda.to_device(_PRESMOOTH, stream=stream)
    n_outer, n_sor, sor_step = _schedule(config, fast)
    alpha = float(config.c2f_alpha)
    pixels = height * width
    flat = {name: cuda.device_array(n_pairs * pixels * size, dtype=_REAL, stream=stream)
            for name, size in (("uv0", 2), ("uv1", 2), ("du", 1), ("dv", 1), ("phi", 1),
                               ("warped", _FEATURES), ("smooth2", _FEATURES),
                               ("scratch", _FEATURES))}
    noise = cuda.device_array((n_pairs, _FEATURES), dtype=_REAL, stream=stream)
    _launch(_fill, noise.size, stream, noise, _INITIAL_RESIDUAL)
    top = len(levels) - 1
    grow = 1 / config.c2f_ratio
    uv = None
    for k in range(top, -1, -1):
        h, w = levels[k].height, levels[k].width
        items = n_pairs * h * w
        shape = (n_pairs, h, w)
        uv_coarse = uv
        parity = (top - k) % 2  # the flow alternates between two buffers
        uv = _view(flat[f"uv{parity}"], (*shape, 2))
        du, dv, phi = (_view(flat[name], shape) for name in ("du", "dv", "phi"))
        warped, smooth2, scratch = (_view(flat[name], (*shape, _FEATURES))
                                    for name in ("warped", "smooth2", "scratch"))
        coef = _view(flat["scratch"], (_FEATURES, *shape))  # scratch, once smooth2 is made
        _launch(_start_level, items, stream, feat[k], pair_dev,
                uv if k == top else uv_coarse, uv, du, dv, warped, k == top, grow)
        for _ in range(n_outer + k):
            _launch(_correlate_x, items, stream, warped, scratch, presmooth)
            _launch(_correlate_y, items, stream, scratch, smooth2, presmooth)
            for _ in range(config.c2f_inner_iterations):
                _launch(_smoothness, items, stream, uv, du, dv, phi)
                _launch(_build_system, items, stream, smooth1[k], smooth2, pair_dev, uv, du,
                        dv, phi, noise, alpha, coef)
                for _ in range(n_sor + sor_step * k):
                    for colour in (_RED, _BLACK):
                        _launch(_sor_half, n_pairs * h * ((w + 1) // 2), stream, coef, phi,
                                du, dv, alpha, colour)
            _launch(_update_and_warp, items, stream, feat[k], pair_dev, uv, du, dv, warped)
            _mean_residual[n_pairs, _REDUCE, stream](feat[k], pair_dev, warped, noise)
    _launch(_write_flow, out.size, stream, uv, out)
    return out


def _build_pyramids(frames, levels: list[_Level], stream) -> tuple[list, list]:
    """Feature pyramids of every frame: per level, (n, h, w, 5) features and their
    pre-smoothed copies (F1's smoothing in the data term)."""
    n, height, width, _ = frames.shape
    rgb = [cuda.device_array((n, height, width, 3), dtype=_REAL, stream=stream)]
    _launch(_unit_rgb, n * height * width, stream, frames, rgb[0])
    tmp = cuda.device_array(n * height * width * _FEATURES, dtype=_REAL, stream=stream)
    smooth = cuda.device_array(n * height * width * 3, dtype=_REAL, stream=stream)
    presmooth = cuda.to_device(_PRESMOOTH, stream=stream)
    feat, smooth1 = [], []
    for k, level in enumerate(levels):
        h, w = level.height, level.width
        items = n * h * w
        if k > 0:
            src = rgb[0] if level.source < 0 else rgb[level.source]
            sh, sw = src.shape[1:3]
            taps = cuda.to_device(_gaussian_taps(level.sigma, level.radius), stream=stream)
            blurred_x = _view(tmp, (n, sh, sw, 3))
            blurred = _view(smooth, (n, sh, sw, 3))
            _launch(_correlate_x, n * sh * sw, stream, src, blurred_x, taps)
            _launch(_correlate_y, n * sh * sw, stream, blurred_x, blurred, taps)
            rgb.append(cuda.device_array((n, h, w, 3), dtype=_REAL, stream=stream))
            _launch(_resample, items, stream, blurred, rgb[k], level.scale, level.scale)
        grey = _view(tmp, (n, h, w, 1))
        _launch(_grey, items, stream, rgb[k], grey)
        feat.append(cuda.device_array((n, h, w, _FEATURES), dtype=_REAL, stream=stream))
        _launch(_features, items, stream, rgb[k], grey, feat[k])
        smoothed_x = _view(tmp, (n, h, w, _FEATURES))
        smooth1.append(cuda.device_array((n, h, w, _FEATURES), dtype=_REAL, stream=stream))
        _launch(_correlate_x, items, stream, feat[k], smoothed_x, presmooth)
        _launch(_correlate_y, items, stream, smoothed_x, smooth1[k], presmooth)
    return feat, smooth1
