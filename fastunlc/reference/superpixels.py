"""Reference SLIC superpixels (spec section 3): scikit-image's ``slic`` as the reference calls it.

The frame is scaled to [0, 1] (``frame / 255.``) and handed to
``skimage.segmentation.slic`` with the spec's parameters, CIELAB conversion and
connectivity enforcement on, and ``start_label=0`` so that labels are 0-based.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import slic

from fastunlc.config import REFERENCE, UNLCConfig


def slic_superpixels(frame: np.ndarray, config: UNLCConfig = REFERENCE) -> tuple[np.ndarray, int]:
    """scikit-image's SLIC labels of one frame.

    Parameters
    ----------
    frame : (h, w, 3) uint8
        RGB frame.
    config : UNLCConfig
        Uses ``n_segments``, ``slic_compactness``, ``slic_max_iter`` and ``slic_sigma``.

    Returns
    -------
    labels : (h, w) int32
        Superpixel of every pixel, in ``[0, n_labels)``.
    n_labels : int
        ``labels.max() + 1``. scikit-image's connectivity pass numbers the
        superpixels consecutively, so every label in that range is used.
    """
    labels = slic(frame / 255.0, n_segments=config.n_segments,
                  compactness=config.slic_compactness, max_num_iter=config.slic_max_iter,
                  sigma=config.slic_sigma, convert2lab=True, enforce_connectivity=True,
                  start_label=0, channel_axis=-1)
    return labels.astype(np.int32), int(labels.max()) + 1
