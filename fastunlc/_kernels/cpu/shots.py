"""Shot detection's kernels: per-frame colour histograms and KTS's dynamic programme.

Both are compiled (``csrc/shots/``, in ``fastunlc._C``); this module holds the colour
constants they are given, in scikit-image's numbers, so that their CIELAB is
``skimage.color.rgb2lab``'s (D65, 2 degrees).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..._C import shots as _shots
from .histograms import channel_edges

# skimage.color.colorconv's xyz_from_rgb and its D65 / 2-degree white point.
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
D65_WHITE = np.array([0.95047, 1.0, 1.08883])

kts_block = _shots.kts_block

__all__ = ["D65_WHITE", "XYZ_FROM_RGB", "kts_block", "linear_levels", "shot_features"]


@cache
def linear_levels() -> np.ndarray:
    """Linearised sRGB of each uint8 level, (256,) float64: ``skimage.color.rgb2xyz``'s
    gamma step with NumPy's own operations (``img_as_float64`` multiplies by 1 / 255)."""
    levels = np.arange(256) * (1.0 / 255)
    curved = levels > 0.04045
    levels[curved] = np.power((levels[curved] + 0.055) / 1.055, 2.4)
    levels[~curved] /= 12.92
    levels.flags.writeable = False
    return levels


def shot_features(frames: np.ndarray, bins: int) -> np.ndarray:
    """Per-frame histograms ``(n, 6 * bins)`` float64 of uint8 ``frames`` ``(n, h, w, 3)``
    (C order); see :func:`fastunlc.shots.shot_features`."""
    return _shots.colour_histograms(frames, linear_levels(), XYZ_FROM_RGB, D65_WHITE,
                             channel_edges(bins))
