"""CIELAB, grey and colour-histogram binning per pixel on the GPU, equal to scikit-image's.

``skimage.color.rgb2lab`` (D65, 2 degrees) of a uint8 pixel, step by step, and how each
step is reproduced:

1. ``img_as_float64`` (``v * (1 / 255)``) and the sRGB linearisation
   (``((v + 0.055) / 1.055) ** 2.4`` above 0.04045, ``v / 12.92`` below) depend on one
   uint8 level: a 256-entry table built on the host with NumPy's own operations, frozen
   into the kernels as a constant array, so these steps are exact;
2. ``@ xyz_from_rgb.T``: NumPy hands the product to BLAS, whose x86-64 kernels
   (OpenBLAS on AVX-512, checked with exact arithmetic on random colours in arrays of
   1 to 20,000 pixels) compute each row as ``fma(b, m2, fma(g, m1, r * m0))``: the same
   explicit FMAs here;
3. division by the white point, ``cbrt`` above 0.008856 and ``7.787 t + 16 / 116``
   below, ``L = 116 fy - 16``, ``a = 500 (fx - fy)``, ``b = 200 (fy - fz)``. NumPy
   rounds every product before the sum that follows; NVVM would fuse such pairs into
   one FMA, so the products go through ``mul_rn`` (``__nv_dmul_rn``, never fused).

Only ``cbrt`` is left to the platform: libdevice's (at most 1 ulp off) against NumPy's
(SVML on AVX-512 machines, libm elsewhere), an ulp of ``f`` that moves L, a or b by at
most about 1e-13; so does another BLAS's order of the product. No colour of the 256**3
has an L, a or b within 1e-11 of a histogram bin edge (every colour checked, for 20 and
40 bins; other bin counts were not checked) except pure black (L = 0, exact whatever
the order: every product is zero) and pure white (L = 100 here,
100.00000000000001 on platforms whose BLAS rounds its Y to 1 + 2**-52, where the CPU's
histograms then drop it). White's L, a, b are therefore taken from scikit-image on this
host, and histograms over these values count exactly as the CPU's.

``skimage.color.rgb2gray`` (``@ [0.2125, 0.7154, 0.0721]``, a BLAS matrix-vector
product) is ``fma(b, c2, fma(r, c0, g * c1))`` on the same BLAS, measured the same way.

The simulator runs kernels as Python, where ``cuda.fma`` rounds twice and ``cuda.cbrt``
is ``x ** (1 / 3)``; there the FMA is computed exactly with fractions and ``cbrt`` is
NumPy's, so that simulated kernels round as the GPU (or the CPU) does.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import cuda
from skimage.color import colorconv
from skimage.util import img_as_float64

from ..cpu import histograms as cpu_histograms
from .arrays import SIMULATOR, as_device, launch_1d, mul_rn

_LEVELS = img_as_float64(np.arange(256, dtype=np.uint8))


def _linear_levels() -> np.ndarray:
    """scikit-image's linearised sRGB value of each uint8 level, with its NumPy operations."""
    arr = _LEVELS.copy()
    mask = arr > 0.04045
    arr[mask] = np.power((arr[mask] + 0.055) / 1.055, 2.4)
    arr[~mask] /= 12.92
    return arr


UNIT = _LEVELS
"""``(256,)`` float64: uint8 level ``i`` as scikit-image's float, ``i * (1 / 255)``."""
LINEAR = _linear_levels()
"""``(256,)`` float64: level ``i`` linearised (the sRGB transfer function undone)."""

_M = colorconv.xyz_from_rgb
_WHITE_LAB = colorconv.rgb2lab(np.full((1, 1, 3), 255, np.uint8))[0, 0]
_WHITE = colorconv.xyz_tristimulus_values(illuminant="D65", observer="2")
_GREY = (0.2125, 0.7154, 0.0721)  # rgb2gray's weights

if SIMULATOR:
    # Plain Python, called as is from the simulated kernels.

    def fma(a, b, c):
        """``a * b + c`` rounded once (exactly, in fractions)."""
        return float(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))

    def cbrt(x):
        """Cube root (NumPy's)."""
        return np.cbrt(x)

else:  # pragma: no cover - needs a GPU

    @cuda.jit(device=True, inline=True)
    def fma(a, b, c):
        """``a * b + c`` rounded once."""
        return cuda.fma(a, b, c)

    @cuda.jit(device=True, inline=True)
    def cbrt(x):
        """Cube root (libdevice, at most 1 ulp off)."""
        return cuda.cbrt(x)


@cuda.jit(device=True, inline=True)
def _lab_f(t):
    """CIELAB's ``f`` of a white-scaled tristimulus value."""
    if t > 0.008856:
        return cbrt(t)
    return mul_rn(7.787, t) + 16.0 / 116.0


@cuda.jit(device=True, inline=True)
def lab_pixel(r, g, b):
    """``(L, a, b)`` float64 of one uint8 RGB pixel, as ``skimage.color.rgb2lab``."""
    if r == 255 and g == 255 and b == 255:  # on a bin edge: the host's value
        return _WHITE_LAB[0], _WHITE_LAB[1], _WHITE_LAB[2]
    lut = cuda.const.array_like(LINEAR)
    lr, lg, lb = lut[r], lut[g], lut[b]
    x = fma(lb, _M[0, 2], fma(lg, _M[0, 1], lr * _M[0, 0])) / _WHITE[0]
    y = fma(lb, _M[1, 2], fma(lg, _M[1, 1], lr * _M[1, 0])) / _WHITE[1]
    z = fma(lb, _M[2, 2], fma(lg, _M[2, 1], lr * _M[2, 0])) / _WHITE[2]
    fx, fy, fz = _lab_f(x), _lab_f(y), _lab_f(z)
    return mul_rn(116.0, fy) - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


@cuda.jit(device=True, inline=True)
def grey_pixel(r, g, b):
    """Grey level in [0, 1] float64 of one uint8 RGB pixel, as ``skimage.color.rgb2gray``."""
    unit = cuda.const.array_like(UNIT)
    return fma(unit[b], _GREY[2], fma(unit[r], _GREY[0], unit[g] * _GREY[1]))


# np.histogram's binning, compiled for the GPU from the CPU kernel's own Python source,
# so both backends bin by one piece of code.
histogram_bin = cuda.jit(device=True, inline=True)(cpu_histograms.bin_index)


@cuda.jit(device=True, inline=True)
def bin_index(x, edges, c):
    """Bin of ``x`` among ``edges[c]`` (``bins + 1`` edges from ``np.linspace``) under
    ``np.histogram(..., range=(edges[c, 0], edges[c, -1]))``; -1 when it is not counted
    (:func:`fastunlc._kernels.cpu.histograms.bin_index` on row ``c``)."""
    n = edges.shape[1] - 1
    return histogram_bin(x, edges[c, 0], edges[c, n], edges[c])


@cuda.jit
def _rgb2lab(rgb, out):
    """``out[p] = lab(rgb[p])`` for ``rgb`` (P, 3) uint8, ``out`` (P, 3) float64."""
    p = cuda.grid(1)
    if p < rgb.shape[0]:
        lab = lab_pixel(rgb[p, 0], rgb[p, 1], rgb[p, 2])
        out[p, 0] = lab[0]
        out[p, 1] = lab[1]
        out[p, 2] = lab[2]


def rgb2lab(rgb, *, stream=0):
    """CIELAB of a uint8 RGB array on the GPU, one thread per pixel.

    Parameters
    ----------
    rgb : (..., 3) uint8 device array or ndarray
        RGB values, any leading shape (a frame, a shot of frames, a stack of patches);
        C-contiguous.
    stream : numba.cuda.Stream or 0, keyword-only
        Stream of the copy (for a host array) and of the launch.

    Returns
    -------
    (..., 3) float64 device array
        L in [0, 100], a and b in about [-128, 127]; ``skimage.color.rgb2lab(rgb)`` to
        about 1e-13 (bit for bit where the platform's ``cbrt`` and BLAS agree; see the
        module notes).

    Raises
    ------
    ValueError
        ``rgb`` is not a C-contiguous uint8 array with a last axis of 3.
    """
    rgb = as_device(rgb, stream=stream)
    shape = tuple(rgb.shape)
    if rgb.dtype != np.uint8 or not shape or shape[-1] != 3:
        raise ValueError(f"rgb must be uint8 (..., 3), got {rgb.dtype} {shape}")
    if not rgb.is_c_contiguous():
        raise ValueError(f"rgb must be C-contiguous, got strides {tuple(rgb.strides)}")
    pixels = math.prod(shape[:-1])
    out = cuda.device_array(shape, dtype=np.float64, stream=stream)
    if pixels:
        blocks, threads = launch_1d(pixels)
        _rgb2lab[blocks, threads, stream](rgb.reshape(pixels, 3), out.reshape(pixels, 3))
    return out
