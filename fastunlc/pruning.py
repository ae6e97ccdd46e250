"""From soft masks to training data (spec section 7): frame pruning and the trimap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import REFERENCE, UNLCConfig

TRIMAP_BACKGROUND = 0
TRIMAP_FOREGROUND = 1
TRIMAP_IGNORE = 255


@dataclass(frozen=True)
class FrameVerdict:
    """Whether a frame's mask is kept as training data, and why.

    ``reason`` is ``"ok"``, ``"too little foreground"``, ``"too much foreground"`` or
    ``"foreground on the border"``. Fractions are of the frame's (or band's) pixels.
    """

    keep: bool
    reason: str
    foreground_fraction: float
    border_foreground_fraction: float


def border_band(shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Boolean ``(h, w)`` band of pixels within ``fraction`` of the frame border.

    The band is ``max(1, int(fraction * h))`` rows at the top and bottom and
    ``max(1, int(fraction * w))`` columns at the left and right.
    """
    h, w = shape
    by, bx = max(1, int(fraction * h)), max(1, int(fraction * w))
    band = np.zeros((h, w), dtype=bool)
    band[:by] = band[-by:] = True
    band[:, :bx] = band[:, -bx:] = True
    return band


def frame_verdict(mask: np.ndarray, config: UNLCConfig = REFERENCE) -> FrameVerdict:
    """Apply the paper's pruning rules to one soft mask ``(h, w)`` in [0, 1].

    Foreground is ``mask > foreground_threshold`` (0.7). A frame is discarded when
    foreground covers less than ``min_foreground`` (10%) or more than
    ``max_foreground`` (80%) of it, or more than ``max_border_foreground`` (10%) of
    the band within ``border_band`` (5%) of the border.
    """
    foreground = mask > config.foreground_threshold
    fraction = float(foreground.mean())
    band = border_band(mask.shape, config.border_band)
    border = float(foreground[band].mean())
    if fraction < config.min_foreground:
        reason = "too little foreground"
    elif fraction > config.max_foreground:
        reason = "too much foreground"
    elif border > config.max_border_foreground:
        reason = "foreground on the border"
    else:
        reason = "ok"
    return FrameVerdict(reason == "ok", reason, fraction, border)


def trimap(mask: np.ndarray, config: UNLCConfig = REFERENCE) -> np.ndarray:
    """Training target of a soft mask ``(h, w)``: uint8 ``(h, w)``.

    0 background (mask < ``trimap_background`` = 0.4), 1 foreground
    (mask > ``trimap_foreground`` = 0.7), 255 ignored by the loss otherwise.
    """
    out = np.full(mask.shape, TRIMAP_IGNORE, dtype=np.uint8)
    out[mask < config.trimap_background] = TRIMAP_BACKGROUND
    out[mask > config.trimap_foreground] = TRIMAP_FOREGROUND
    return out
