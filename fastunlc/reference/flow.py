"""Plain NumPy coarse-to-fine variational optical flow (the reference's flow, spec section 2).

This is Ce Liu's coarse-to-fine flow as the reference runs it through ``pyflow``: the
Brox et al. (2004) energy with a robust (Charbonnier, epsilon 1e-3) data term and a
robust smoothness term, minimised by warping over an image pyramid, outer fixed-point
iterations that re-linearise the data term around the current flow, and successive
over-relaxation (SOR, omega 1.8) for the linear system of each inner iteration.

Every step is written out plainly so that the compiled kernel
(``fastunlc._C.coarse2fine_flow_pairs``) can be checked against it; the SOR sweep is a
Python loop over pixels (about 4 s for a 100 x 100 pair), so keep test images small.
Every floating-point operation is done in the reference's order: on the real 100 x 100
frame pairs tried, the result equals pyflow's bit for bit. Details that decide the
numbers, all as in the reference:

- Pyramid: ``int(log(min_width / w) / log(ratio))`` levels (at least one). Level ``i``
  is the input smoothed by a Gaussian of sigma ``(1 / ratio - 1) * i`` (radius
  ``int(3 sigma)``) and resampled by ``ratio ** i``; beyond a quarter of the size the
  level is built from an earlier level instead of the input.
- Resampling is bilinear at ``x_src = (x_dst + 1) / scale - 1`` with coordinates and
  indices clamped to the image.
- The data term works on five feature channels per pixel: grey (Rec. 601 luma), its x
  and y derivatives, G - R and G - B. Image derivatives use the 5-tap central filter
  ``[1, -8, 0, 8, -1] / 12`` on a blend ``0.4 * I1 + 0.6 * warped I2`` of both images
  after a small smoothing ``[0.02, 0.11, 0.74, 0.11, 0.02]``; borders are replicated.
- Flow derivatives are forward differences (0 in the last column / row); the
  smoothness weight of a pixel sits on the edges to its right and below it.
- The linear system has an extra diagonal term ``0.05 * alpha`` (a weak pull of the
  increment towards zero), and level ``k`` (0 = finest) runs ``n_outer + k`` outer and
  ``n_sor + 3 k`` SOR iterations.
- Pixels that the flow carries outside the image keep frame 1's value in the warped
  frame 2 (zero temporal difference there).
"""

from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-3
"""Charbonnier epsilon of both penalties: ``psi(s^2) = sqrt(s^2 + EPSILON^2)``."""
SOR_OMEGA = 1.8
"""Over-relaxation factor of the SOR sweeps."""
INCREMENT_PRIOR = 0.05
"""Diagonal regulariser of the linear system, in units of ``alpha``."""
DERIVATIVE_TAPS = np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / 12.0
"""Five-tap central derivative filter (correlation taps for offsets -2..2)."""
PRESMOOTH_TAPS = np.array([0.02, 0.11, 0.74, 0.11, 0.02])
"""Smoothing applied to both images before their derivatives are taken."""
BLEND = (0.4, 0.6)
"""Weights of frame 1 and warped frame 2 in the blend whose spatial derivatives linearise
the data term."""
LUMA = (0.299, 0.587, 0.114)
N_FEATURES = 5
SILENT_CHANNEL = 1e-20
"""A feature channel whose mean absolute residual falls below this is dropped from the
data term (its robust weight is set to 0) until the residual grows again."""
INITIAL_RESIDUAL = 0.02
"""Mean absolute residual assumed for every channel before the first outer iteration."""
MAX_RESIDUAL = 1e6
"""Residuals of 0 or at least this are left out of the mean absolute residual ..."""
NO_RESIDUAL = 0.001
"""... which is this when no residual is left."""


# ---------------------------------------------------------------------------------------------
# filtering and resampling (borders replicated)
# ---------------------------------------------------------------------------------------------


def correlate_axis(image: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlate ``image`` ``(h, w[, c])`` with odd-length ``taps`` along ``axis`` (0 = y, 1 = x),
    replicating the border: ``out[j] = sum_l taps[l + r] * image[clip(j + l)]``."""
    r = len(taps) // 2
    n = image.shape[axis]
    out = np.zeros_like(image, dtype=np.float64)
    for offset in range(-r, r + 1):
        index = np.clip(np.arange(n) + offset, 0, n - 1)
        out += np.take(image, index, axis=axis) * taps[offset + r]
    return out


def separable_filter(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Apply ``taps`` along x, then along y."""
    return correlate_axis(correlate_axis(image, taps, 1), taps, 0)


def gaussian_taps(sigma: float, radius: int) -> np.ndarray:
    """Normalised Gaussian taps for offsets ``-radius..radius``."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-(offsets * offsets) / (sigma * sigma * 2))
    return taps / taps.sum()


def bilinear_sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``image`` ``(h, w, c)`` at float coordinates ``x``, ``y`` (same shape).

    The integer part is truncated towards zero, the fraction clipped to [0, 1] and the
    four corner indices clipped to the image, so coordinates outside it read the border.
    """
    h, w = image.shape[:2]
    x0 = np.trunc(x).astype(np.int64)
    y0 = np.trunc(y).astype(np.int64)
    fx = np.clip(x - x0, 0.0, 1.0)[..., None]
    fy = np.clip(y - y0, 0.0, 1.0)[..., None]
    xs = (np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1))
    ys = (np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1))
    out = np.zeros((*x.shape, image.shape[2]))
    for m, wx in ((0, 1.0 - fx), (1, fx)):
        for n, wy in ((0, 1.0 - fy), (1, fy)):
            out += image[ys[n], xs[m]] * (wx * wy)
    return out


def resample(image: np.ndarray, out_h: int, out_w: int, scale_y: float,
             scale_x: float) -> np.ndarray:
    """Bilinear resampling to ``(out_h, out_w)``: output pixel ``(i, j)`` reads the input at
    ``((i + 1) / scale_y - 1, (j + 1) / scale_x - 1)``."""
    y, x = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    return bilinear_sample(image, (x + 1.0) / scale_x - 1.0, (y + 1.0) / scale_y - 1.0)


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Resample by one factor on both axes; the output size is truncated."""
    h, w = image.shape[:2]
    return resample(image, int(h * scale), int(w * scale), scale, scale)


def resize_to(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resample to an exact size (the per-axis factors are the size ratios)."""
    h, w = image.shape[:2]
    return resample(image, out_h, out_w, out_h / h, out_w / w)


# ---------------------------------------------------------------------------------------------
# pyramid and features
# ---------------------------------------------------------------------------------------------


def n_pyramid_levels(width: int, ratio: float, min_width: int) -> int:
    """Levels of the pyramid: enough for the coarsest to be about ``min_width`` wide."""
    return max(1, int(math.log(min_width / width) / math.log(ratio)))


def gaussian_pyramid(image: np.ndarray, ratio: float, min_width: int) -> list[np.ndarray]:
    """Levels of ``image`` ``(h, w, c)`` from finest (the image itself) to coarsest."""
    base_sigma = 1.0 / ratio - 1.0
    # Levels down to a quarter of the size are smoothed and resampled from the input
    # itself; coarser ones from the level `direct` steps finer, which is cheaper.
    direct = int(math.log(0.25) / math.log(ratio))
    levels = [image.astype(np.float64)]
    for i in range(1, n_pyramid_levels(image.shape[1], ratio, min_width)):
        if i <= direct:
            sigma = base_sigma * i
            smoothed = separable_filter(image, gaussian_taps(sigma, int(sigma * 3)))
            levels.append(rescale(smoothed, ratio**i))
        else:
            sigma = base_sigma * direct
            source = levels[i - direct]
            smoothed = separable_filter(source, gaussian_taps(sigma, int(sigma * 3)))
            levels.append(rescale(smoothed, ratio**i * image.shape[1] / source.shape[1]))
    return levels


def features(rgb: np.ndarray) -> np.ndarray:
    """Data-term channels ``(h, w, 5)`` of an RGB level: grey, d(grey)/dx, d(grey)/dy,
    G - R and G - B."""
    grey = rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]
    return np.stack([
        grey,
        correlate_axis(grey, DERIVATIVE_TAPS, 1),
        correlate_axis(grey, DERIVATIVE_TAPS, 0),
        rgb[..., 1] - rgb[..., 0],
        rgb[..., 1] - rgb[..., 2],
    ], axis=-1)


def warp(first: np.ndarray, second: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``second`` sampled at ``(x + u, y + v)``; where that leaves the image, ``first``."""
    h, w = u.shape
    y, x = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                       indexing="ij")
    x = x + u
    y = y + v
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    return np.where(outside[..., None], first, bilinear_sample(second, x, y))


# ---------------------------------------------------------------------------------------------
# one pyramid level
# ---------------------------------------------------------------------------------------------


def image_derivatives(
    first: np.ndarray, warped: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x and y derivatives of the blended images and the temporal difference, each
    ``(h, w, 5)``."""
    a = separable_filter(first, PRESMOOTH_TAPS)
    b = separable_filter(warped, PRESMOOTH_TAPS)
    blend = a * BLEND[0] + b * BLEND[1]
    ix = correlate_axis(blend, DERIVATIVE_TAPS, 1)
    iy = correlate_axis(blend, DERIVATIVE_TAPS, 0)
    return ix, iy, b - a


def forward_differences(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f[:, j + 1] - f[:, j]`` and ``f[i + 1] - f[i]``, 0 in the last column / row."""
    fx = np.zeros_like(f)
    fy = np.zeros_like(f)
    fx[:, :-1] = f[:, 1:] - f[:, :-1]
    fy[:-1] = f[1:] - f[:-1]
    return fx, fy


def weighted_laplacian(f: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``-div(phi grad f)`` with ``phi`` on the edge to the right of / below each pixel and no
    flux across the image border."""
    out = np.zeros_like(f)
    flux_x = (f[:, 1:] - f[:, :-1]) * phi[:, :-1]
    out[:, :-1] -= flux_x
    out[:, 1:] += flux_x
    flux_y = (f[1:] - f[:-1]) * phi[:-1]
    out[:-1] -= flux_y
    out[1:] += flux_y
    return out


def sor_solve(
    axx: np.ndarray, axy: np.ndarray, ayy: np.ndarray, bx: np.ndarray, by: np.ndarray,
    phi: np.ndarray, alpha: float, n_iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve for the flow increment ``(du, dv)`` by lexicographic SOR sweeps from zero.

    Per pixel the system is ``[[axx + a0 + c, axy], [axy, ayy + a0 + c]] (du, dv)
    = (bx, by) + alpha * sum_n phi_n (du_n, dv_n)`` over the 4-neighbours ``n`` with edge
    weights ``phi_n``, ``c = alpha * sum_n phi_n`` and ``a0 = 0.05 alpha``.
    """
    h, w = phi.shape
    du = [[0.0] * w for _ in range(h)]
    dv = [[0.0] * w for _ in range(h)]
    axx, axy, ayy, bx, by, phi = (a.tolist() for a in (axx, axy, ayy, bx, by, phi))
    prior = alpha * INCREMENT_PRIOR
    for _ in range(n_iterations):
        for i in range(h):
            for j in range(w):
                s1 = s2 = coeff = 0.0
                neighbours = []
                if j > 0:
                    neighbours.append((phi[i][j - 1], i, j - 1))
                if j < w - 1:
                    neighbours.append((phi[i][j], i, j + 1))
                if i > 0:
                    neighbours.append((phi[i - 1][j], i - 1, j))
                if i < h - 1:
                    neighbours.append((phi[i][j], i + 1, j))
                for weight, ni, nj in neighbours:
                    s1 += weight * du[ni][nj]
                    s2 += weight * dv[ni][nj]
                    coeff += weight
                s1 *= -alpha
                s2 *= -alpha
                coeff *= alpha
                s1 += axy[i][j] * dv[i][j]
                du[i][j] = ((1 - SOR_OMEGA) * du[i][j]
                            + SOR_OMEGA / (axx[i][j] + prior + coeff) * (bx[i][j] - s1))
                s2 += axy[i][j] * du[i][j]
                dv[i][j] = ((1 - SOR_OMEGA) * dv[i][j]
                            + SOR_OMEGA / (ayy[i][j] + prior + coeff) * (by[i][j] - s2))
    return np.array(du), np.array(dv)


def refine_level(
    first: np.ndarray, second: np.ndarray, warped: np.ndarray, u: np.ndarray, v: np.ndarray,
    alpha: float, n_outer: int, n_inner: int, n_sor: int, noise: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outer fixed-point iterations at one level; returns the new ``(u, v, warped)``.

    ``first``, ``second`` and ``warped`` are ``(h, w, 5)`` feature images, ``u``, ``v`` the
    ``(h, w)`` flow. ``noise`` ``(5,)`` is the mean absolute residual per channel from the
    previous outer iteration (updated in place); a channel below ``SILENT_CHANNEL`` is
    left out of the data term.
    """
    eps2 = EPSILON**2
    for _ in range(n_outer):
        ix, iy, it = image_derivatives(first, warped)
        du = np.zeros_like(u)
        dv = np.zeros_like(v)
        for inner in range(n_inner):
            uu, vv = (u, v) if inner == 0 else (u + du, v + dv)
            ux, uy = forward_differences(uu)
            vx, vy = forward_differences(vv)
            phi = 0.5 / np.sqrt(ux * ux + uy * uy + vx * vx + vy * vy + eps2)
            residual = it + ix * du[..., None] + iy * dv[..., None]
            psi = 1.0 / (2.0 * np.sqrt(residual * residual + eps2))
            psi[..., noise < SILENT_CHANNEL] = 0.0
            axx = (psi * ix * ix).mean(axis=-1)
            axy = (psi * ix * iy).mean(axis=-1)
            ayy = (psi * iy * iy).mean(axis=-1)
            bx = -(psi * ix * it).mean(axis=-1) - alpha * weighted_laplacian(u, phi)
            by = -(psi * iy * it).mean(axis=-1) - alpha * weighted_laplacian(v, phi)
            du, dv = sor_solve(axx, axy, ayy, bx, by, phi, alpha, n_sor)
        u = u + du
        v = v + dv
        warped = warp(first, second, u, v)
        diff = np.abs(first - warped).reshape(-1, N_FEATURES)
        for k in range(N_FEATURES):
            valid = diff[:, k][(diff[:, k] > 0) & (diff[:, k] < MAX_RESIDUAL)]
            noise[k] = valid.mean() if valid.size else NO_RESIDUAL
    return u, v, warped


def coarse2fine_flow(
    first: np.ndarray,
    second: np.ndarray,
    alpha: float = 0.012,
    ratio: float = 0.75,
    min_width: int = 20,
    n_outer: int = 7,
    n_inner: int = 1,
    n_sor: int = 30,
) -> np.ndarray:
    """Coarse-to-fine variational flow from ``first`` to ``second``.

    Parameters
    ----------
    first, second : (h, w, 3) float64
        RGB frames with values in [0, 1].
    alpha : float
        Weight of the smoothness term.
    ratio : float
        Size ratio of consecutive pyramid levels, in [0.4, 0.98].
    min_width : int
        Width (pixels) the coarsest level should be about.
    n_outer, n_inner, n_sor : int
        Outer fixed-point, inner fixed-point and SOR iterations at the finest level.

    Returns
    -------
    (h, w, 2) float64
        Flow ``(u, v)`` in pixels such that ``first(x, y) ~ second(x + u, y + v)``.
    """
    if not 0.4 <= ratio <= 0.98:
        raise ValueError(f"ratio must be in [0.4, 0.98], got {ratio}")
    pyramid1 = gaussian_pyramid(first, ratio, min_width)
    pyramid2 = gaussian_pyramid(second, ratio, min_width)
    noise = np.full(N_FEATURES, INITIAL_RESIDUAL)
    u = v = warped = None
    for k in range(len(pyramid1) - 1, -1, -1):
        f1 = features(pyramid1[k])
        f2 = features(pyramid2[k])
        h, w = f1.shape[:2]
        if u is None:
            u = np.zeros((h, w))
            v = np.zeros((h, w))
            warped = f2
        else:
            u = resize_to(u[..., None], h, w)[..., 0] * (1.0 / ratio)
            v = resize_to(v[..., None], h, w)[..., 0] * (1.0 / ratio)
            warped = warp(f1, f2, u, v)
        u, v, warped = refine_level(f1, f2, warped, u, v, alpha, n_outer + k, n_inner,
                                    n_sor + 3 * k, noise)
    return np.stack([u, v], axis=-1)
