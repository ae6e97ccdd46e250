"""SLIC superpixels (spec section 3)."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import relabel_sequential, slic

from .config import REFERENCE, UNLCConfig


def slic_superpixels(frame: np.ndarray, config: UNLCConfig = REFERENCE) -> tuple[np.ndarray, int]:
    """SLIC superpixels of one frame, labels 0-based and contiguous.

    Parameters
    ----------
    frame : (h, w, 3) uint8
        RGB frame.
    config : UNLCConfig
        Uses ``n_segments`` (400), ``slic_compactness`` (10), ``slic_max_iter`` (10) and
        ``slic_sigma`` (5, Gaussian pre-smoothing in pixels).

    Returns
    -------
    labels : (h, w) int32
        Superpixel of every pixel, in ``[0, n_labels)``, every label used.
    n_labels : int

    Notes
    -----
    scikit-image's SLIC on the frame scaled to [0, 1] and converted to CIELAB,
    connectivity enforced, ``start_label=0`` (since 0.19 scikit-image starts at 1
    unless told otherwise, which leaves an empty label 0).
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be uint8 (h, w, 3), got {frame.dtype} {frame.shape}")
    labels = slic(frame.astype(np.float64) / 255.0, n_segments=config.n_segments,
                  compactness=config.slic_compactness, max_num_iter=config.slic_max_iter,
                  sigma=config.slic_sigma, convert2lab=True, enforce_connectivity=True,
                  start_label=0, channel_axis=-1)
    labels, _, _ = relabel_sequential(labels)
    labels = labels.astype(np.int32)
    return labels, int(labels.max()) + 1
