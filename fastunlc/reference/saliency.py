"""Oracle of motion saliency (spec section 2), one flow field at a time."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal import convolve2d

from ..config import REFERENCE, UNLCConfig


def pair_saliency(flow: np.ndarray, config: UNLCConfig = REFERENCE
                  ) -> tuple[str, np.ndarray | None]:
    """Dominant-motion test and smoothed deviation of one flow field ``(h, w, 2)``.

    Returns ``("static" | "translating", deviation (h, w))`` or ``("none", None)``.
    """
    u = flow[..., 0].astype(np.float64)
    v = flow[..., 1].astype(np.float64)
    m = np.sqrt(u**2 + v**2)
    if np.median(m) < config.static_magnitude:
        kind, deviation = "static", m**2
    else:
        theta = np.arctan2(v, u)
        hist, edges = np.histogram(theta, bins=config.direction_bins, weights=m,
                                   range=(-np.pi, np.pi))
        if hist.sum() == 0:
            return "none", None
        hist = hist / hist.sum()
        if hist.max() <= config.dominant_direction:
            return "none", None
        best = int(np.argmax(hist))
        t = (edges[best] + edges[best + 1]) / 2
        kind = "translating"
        deviation = np.minimum(np.minimum((theta - t) ** 2, (theta - t + 2 * np.pi) ** 2),
                               (theta - t - 2 * np.pi) ** 2)
    p = config.saliency_patch
    return kind, convolve2d(deviation, np.ones((p, p)) / p**2, mode="same", boundary="symm")


def motion_saliency(flows: np.ndarray, pairs: np.ndarray, n_frames: int,
                    config: UNLCConfig = REFERENCE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-frame mean of the dominant pairs' saliency: ``(saliency, dominant, kinds)``."""
    h, w = flows.shape[1:3]
    saliency = np.zeros((n_frames, h, w))
    count = np.zeros(n_frames, dtype=int)
    kinds = []
    for flow, (i, _) in zip(flows, pairs, strict=True):
        kind, s = pair_saliency(flow, config)
        kinds.append(kind)
        if s is not None:
            saliency[i] += s
            count[i] += 1
    for i in range(n_frames):
        if count[i]:
            saliency[i] /= count[i]
    return saliency, count > 0, kinds


def upsample_saliency(saliency: np.ndarray, size: tuple[int, int],
                      config: UNLCConfig = REFERENCE) -> np.ndarray:
    """Resize each frame (bilinear, corners aligned), zero the border, divide by the shot max."""
    h, w = size
    out = np.zeros((len(saliency), h, w))
    b = int(min(h, w) * config.border_fraction)
    for i, frame in enumerate(saliency):
        big = ndimage.zoom(frame, (h / frame.shape[0], w / frame.shape[1]), order=1)
        out[i, b:h - b, b:w - b] = big[b:h - b, b:w - b]
    if out.max() > 0:
        out /= out.max()
    return out
