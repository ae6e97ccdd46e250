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

from .backend import kernels
from .config import REFERENCE, UNLCConfig


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
        Uses ``static_magnitude``, ``direction_bins``, ``dominant_direction``,
        ``saliency_patch`` and ``device``.

    Returns
    -------
    MotionSaliency
    """
    flows = np.ascontiguousarray(flows, dtype=np.float32)
    pairs = np.asarray(pairs)
    if flows.ndim != 4 or flows.shape[3] != 2 or pairs.shape != (flows.shape[0], 2):
        raise ValueError(f"flows must be (P, h, w, 2) with pairs (P, 2); got {flows.shape} "
                         f"and {pairs.shape}")
    if config.device == "cuda":
        on_gpu = kernels("cuda").saliency.motion_saliency(flows, pairs, n_frames, config)
        return MotionSaliency(on_gpu.saliency.copy_to_host(), on_gpu.dominant,
                              on_gpu.pair_kinds)
    n_pairs, h, w, _ = flows.shape
    deviation = np.zeros((n_pairs, h, w))
    kinds = np.zeros(n_pairs, dtype=np.int8)
    edges = np.linspace(-np.pi, np.pi, config.direction_bins + 1)
    kernel = kernels(config.device).saliency
    kernel.pair_deviations(flows, config.static_magnitude, config.dominant_direction, edges,
                              deviation, kinds)
    # 5x5 mean filter; ndimage's "reflect" is convolve2d's "symm" (edge sample repeated).
    smoothed = ndimage.uniform_filter(deviation, size=(1, config.saliency_patch,
                                                       config.saliency_patch), mode="reflect")
    dominant_pairs = kinds != kernel.NOT_DOMINANT
    sums = np.zeros((n_frames, h, w))
    counts = np.bincount(pairs[dominant_pairs, 0], minlength=n_frames)
    np.add.at(sums, pairs[dominant_pairs, 0], smoothed[dominant_pairs])
    dominant = counts > 0
    sums[dominant] /= counts[dominant, None, None]
    return MotionSaliency(sums, dominant, kinds)


def _zoom_coordinates(size_in: int, size_out: int) -> np.ndarray:
    """Source coordinate of each output index under ``scipy.ndimage.zoom(order=1)``
    (corners aligned): ``i * (size_in - 1) / (size_out - 1)``, float64 ``(size_out,)``."""
    return np.arange(size_out) * ((size_in - 1) / max(size_out - 1, 1))


def superpixel_saliency(
    saliency: np.ndarray, labels: np.ndarray, frame_offsets: np.ndarray,
    config: UNLCConfig = REFERENCE,
) -> tuple[np.ndarray, float]:
    """Initial votes: mean normalised saliency of each superpixel (spec section 6).

    Equal to the superpixel means of ``fastunlc.reference.saliency.upsample_saliency``
    (the spec's upsampling, border and shot normalisation) up to rounding (1e-12
    relative), computed by a compiled kernel over the frames in parallel that never
    stores the shot's full-resolution saliency (``n x h x w`` float64, 280 MB for 110
    frames at 650 px).

    Parameters
    ----------
    saliency : (n, s, s) float
        Per-frame saliency at flow resolution.
    labels : (n, h, w) int
        Superpixel labels, contiguous ``0 .. n_f - 1`` per frame.
    frame_offsets : (n + 1,) int
        Frame f owns superpixels ``frame_offsets[f] .. frame_offsets[f + 1] - 1``.
    config : UNLCConfig
        Uses ``border_fraction``.

    Returns
    -------
    votes : (k,) float64
        Mean of the upsampled, border-zeroed saliency over each superpixel's pixels,
        divided by the shot's peak when that is > 0; values in [0, 1].
    peak : float
        The shot's maximum of the upsampled, border-zeroed saliency before normalisation.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    n, h, w = labels.shape
    if len(saliency) != n or len(frame_offsets) != n + 1:
        raise ValueError(f"saliency, labels and frame_offsets disagree on the frame count: "
                         f"{len(saliency)}, {n}, {len(frame_offsets) - 1}")
    saliency = np.ascontiguousarray(saliency, dtype=np.float64)
    offsets = np.asarray(frame_offsets, dtype=np.int64)
    if config.device == "cuda":
        votes, peak = kernels("cuda").saliency.superpixel_saliency(saliency, labels, offsets,
                                                                   config)
        return votes.copy_to_host(), peak
    k = int(offsets[-1])
    sums, counts = np.zeros(k), np.zeros(k, np.int64)
    peaks, bad = np.zeros(n), np.zeros(n, bool)
    kernels(config.device).saliency.superpixel_sums(
        saliency, labels, offsets, _zoom_coordinates(saliency.shape[1], h),
        _zoom_coordinates(saliency.shape[2], w), int(min(h, w) * config.border_fraction), sums,
        counts, peaks, bad)
    if bad.any():
        f = int(np.argmax(bad))
        raise ValueError(f"labels of frame {f} must be contiguous "
                         f"0..{offsets[f + 1] - offsets[f] - 1}")
    votes = sums / counts
    peak = float(peaks.max()) if n else 0.0
    if peak > 0:
        votes /= peak
    return votes, peak
