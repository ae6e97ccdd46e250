"""Colour conversion shared by the stages that build the reference's CIELAB histograms.

The reference converts with ``skimage.color.rgb2lab`` (D65, 2 degrees) in float64.
That conversion acts pixel by pixel, so converting each distinct colour once and
scattering the results gives the same values bit for bit, at a fraction of the cost:
a 650 x 487 video frame holds 5,000-100,000 distinct colours among its 316,550 pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from skimage.color import rgb2lab as _skimage_rgb2lab

from .backend import kernels


class DistinctColours(NamedTuple):
    """The distinct colours of an image with their CIELAB values and pixel counts."""

    rgb: np.ndarray  # (k, 3) uint8, in order of first appearance
    lab: np.ndarray  # (k, 3) float64, skimage.color.rgb2lab of each
    counts: np.ndarray  # (k,) int64, pixels of each colour
    inverse: np.ndarray  # (n,) int32, the colour of each pixel in raster order


def distinct_colours_lab(rgb: np.ndarray, *, device: str = "cpu") -> DistinctColours:
    """Distinct colours of a uint8 ``(..., 3)`` array, each converted to CIELAB once.

    ``skimage.color.rgb2lab`` of the image equals ``lab[inverse]`` reshaped, bit for bit.
    ``device`` picks the backend of the kernel (:mod:`fastunlc.backend`). Raises
    ValueError when ``rgb`` is not uint8 with a last axis of 3.
    """
    rgb = _checked_rgb(rgb)
    colours, inverse, counts = kernels(device).colour.distinct_colours(
        np.ascontiguousarray(rgb.reshape(-1, 3)))
    lab = _skimage_rgb2lab(colours[None])[0] if len(colours) else np.zeros((0, 3))
    return DistinctColours(colours, lab, counts, inverse)


def _checked_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be uint8 (..., 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def rgb2lab(rgb: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """``skimage.color.rgb2lab`` of a uint8 RGB array, computed once per distinct colour.

    Parameters
    ----------
    rgb : (..., 3) uint8 ndarray
        RGB values, any leading shape (a frame, a stack of frames or of patches).
    device : str, keyword-only
        Backend of the kernel (:mod:`fastunlc.backend`): ``"cpu"`` (once per distinct
        colour) or ``"cuda"`` (per pixel on the GPU, to 1e-12).

    Returns
    -------
    (..., 3) float64 ndarray
        CIELAB: L in [0, 100], a and b in about [-128, 127]; equal to
        ``skimage.color.rgb2lab(rgb)`` (for a stack, to converting it image by image).

    Raises
    ------
    ValueError
        ``rgb`` is not uint8 with a last axis of 3.
    """
    if device == "cuda":
        return kernels(device).colour.rgb2lab(_checked_rgb(rgb)).copy_to_host()
    distinct = distinct_colours_lab(rgb, device=device)
    return distinct.lab[distinct.inverse].reshape(np.shape(rgb))
