"""Motion saliency with the dominant-motion test (spec section 2).

For every flow field of a shot (frame i to frame i+j, |j| <= 3) the camera's motion
is modelled as either "static" (median magnitude below 1 px) or "translating" (one
direction bin holding over 75% of the magnitude); the pixels that deviate from that
model are salient. Pairs that fit neither model contribute nothing. When fewer than
half of the frames have a dominant pair, the shot falls back to appearance
saliency (:mod:`fastunlc.appearance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._kernels import _saliency
from .config import REFERENCE, UNLCConfig

PAIR_KINDS = {_saliency.STATIC: "static", _saliency.TRANSLATING: "translating",
              _saliency.NOT_DOMINANT: "none"}


@dataclass(frozen=True)
class MotionSaliency:
    """Motion saliency of a shot at flow resolution.

    Attributes
    ----------
    saliency : (n, s, s) float64
        Mean of the dominant pairs' smoothed deviation per frame, 0 for frames
        without a dominant pair. Units: px² (static pairs) or rad² (translating).
    dominant : (n,) bool
        Frames with at least one dominant pair.
    pair_kinds : (P,) int8
        Per pair: 1 static, 2 translating, 0 no dominant motion.
    """

    saliency: np.ndarray
    dominant: np.ndarray
    pair_kinds: np.ndarray

    @property
    def dominant_fraction(self) -> float:
        return float(self.dominant.mean()) if self.dominant.size else 0.0


def motion_saliency(
    flows: np.ndarray, pairs: np.ndarray, n_frames: int, config: UNLCConfig = REFERENCE
) -> MotionSaliency:
    """Per-frame motion saliency from all flow fields of a shot.

    Parameters
    ----------
    flows : (P, s, s, 2) float32
        Flow of each pair in pixels of the flow frame (u = x, v = y).
    pairs : (P, 2) int
        ``(i, i + j)`` frame indices of each flow field; the saliency goes to frame i.
    n_frames : int
        Frames in the shot.
    config : UNLCConfig
        Uses ``static_magnitude``, ``direction_bins``, ``dominant_direction`` and
        ``saliency_patch``.

    Returns
    -------
    MotionSaliency
    """
    flows = np.ascontiguousarray(flows, dtype=np.float32)
    pairs = np.asarray(pairs)
    if flows.ndim != 4 or flows.shape[3] != 2 or pairs.shape != (flows.shape[0], 2):
        raise ValueError(f"flows must be (P, h, w, 2) with pairs (P, 2); got {flows.shape} "
                         f"and {pairs.shape}")
    n_pairs, h, w, _ = flows.shape
    deviation = np.zeros((n_pairs, h, w))
    kinds = np.zeros(n_pairs, dtype=np.int8)
    edges = np.linspace(-np.pi, np.pi, config.direction_bins + 1)
    _saliency.pair_deviations(flows, config.static_magnitude, config.dominant_direction, edges,
                              deviation, kinds)
    # 5x5 mean filter; ndimage's "reflect" is convolve2d's "symm" (edge sample repeated).
    smoothed = ndimage.uniform_filter(deviation, size=(1, config.saliency_patch,
                                                       config.saliency_patch), mode="reflect")
    dominant_pairs = kinds != _saliency.NOT_DOMINANT
    sums = np.zeros((n_frames, h, w))
    counts = np.bincount(pairs[dominant_pairs, 0], minlength=n_frames)
    np.add.at(sums, pairs[dominant_pairs, 0], smoothed[dominant_pairs])
    dominant = counts > 0
    sums[dominant] /= counts[dominant, None, None]
    return MotionSaliency(sums, dominant, kinds)


def upsample_saliency(
    saliency: np.ndarray, size: tuple[int, int], config: UNLCConfig = REFERENCE
) -> tuple[np.ndarray, float]:
    """Bring flow-resolution saliency to the frame size, zero the border, normalise the shot.

    Parameters
    ----------
    saliency : (n, s, s) float
        Per-frame saliency at flow resolution.
    size : (h, w)
        Frame size in pixels.
    config : UNLCConfig
        Uses ``border_fraction``.

    Returns
    -------
    saliency : (n, h, w) float64
        Bilinear upsampling with corners aligned (``scipy.ndimage.zoom(order=1)``,
        as the reference), a border of ``int(min(h, w) * border_fraction)`` pixels
        set to 0, then the whole shot divided by its maximum when that is > 0
        (one number for the shot, not per frame).
    peak : float
        That maximum before normalisation (0 for a motionless shot).
    """
    h, w = size
    s_h, s_w = saliency.shape[1:]
    out = np.stack([ndimage.zoom(frame, (h / s_h, w / s_w), order=1) for frame in saliency])
    out = out[:, :h, :w]
    border = int(min(h, w) * config.border_fraction)
    if border > 0:
        out[:, :border] = 0
        out[:, -border:] = 0
        out[:, :, :border] = 0
        out[:, :, -border:] = 0
    peak = float(out.max()) if out.size else 0.0
    if peak > 0:
        out /= peak
    return out, peak
