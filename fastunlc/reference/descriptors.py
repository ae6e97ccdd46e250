"""Reference superpixel descriptors (spec section 4), one superpixel at a time.

Written from the spec and the original, not from the kernel (so that comparing the
two can catch a placement bug): for every superpixel its bounding box, a
``patch_size`` square patch centred on the box and shifted inside the frame,
``skimage.feature.hog`` of the patch's ``skimage.color.rgb2gray``, six ``np.histogram``
colour histograms of the patch (RGB and ``skimage.color.rgb2lab`` of the patch), and
the patch's unshifted top-left corner over the frame size.

The original is ``compute_descriptor`` in pathak22/videoseg ``src/nlc.py`` (commit
a28f04b7), lines 113-172, which runs under ``from __future__ import division``.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray, rgb2lab
from skimage.feature import hog

from fastunlc.config import REFERENCE, UNLCConfig

# (lo, hi) of the R, G, B, L, a, b histograms.
_RANGES = ((0, 255), (0, 255), (0, 255), (0, 100), (-128, 127), (-128, 127))


def patch_span(lo: int, hi: int, size: int, extent: int) -> tuple[int, int, int]:
    """Patch along one axis for a bounding box ``[lo, hi]`` (inclusive) in ``[0, extent)``.

    Returns ``(start, first, end)``: the centred start and the half-open range
    ``[first, end)`` of ``size`` pixels actually read.

    Centre (spec: "a 15 x 15 patch centred on the box centre"; nlc.py lines 141-142,
    ``(boxes[:, :2] + boxes[:, 2:] - spPatch) / 2`` on float boxes from
    ``my_accumarray``, then ``astype(np.int)``): ``(lo + hi - size) / 2`` in true
    division, truncated toward zero, so -7.5 gives -7, not floor's -8.

    Shift (spec: "shifted inside the image where it would cross a border"; nlc.py lines
    145-152 clip both ends to ``[0, extent - 1]``, then move a patch cut at 0 to
    ``[0, size)`` and one whose end reached ``extent - 1`` to ``[extent - 1 - size,
    extent - 1)``): the window moved the least distance that puts it inside
    ``[0, extent - 1)``. The last row and column are never read: the original clips
    the exclusive end as if it were the last index.
    """
    start = int((lo + hi - size) / 2)
    first = min(max(start, 0), extent - 1 - size)
    return start, first, first + size


def colour_histograms(patch: np.ndarray, bins: int) -> np.ndarray:
    """R, G, B, L, a, b histograms ``(6 * bins,)`` of an RGB uint8 ``patch``, each over its
    range and divided by its sum (left as zeros when the sum is below 1e-4)."""
    channels = np.concatenate([patch, rgb2lab(patch)], axis=2).reshape(-1, 6)
    out = []
    for c, (lo, hi) in enumerate(_RANGES):
        counts, _ = np.histogram(channels[:, c], bins=bins, range=(lo, hi))
        total = counts.sum()
        out.append(counts / (total + (total < 1e-4)))
    return np.concatenate(out)


def superpixel_descriptors(
    frame: np.ndarray, labels: np.ndarray, n_labels: int, config: UNLCConfig = REFERENCE
) -> np.ndarray:
    """Descriptors ``(n_labels, d)`` float64 of the superpixels of ``frame`` (h, w, 3) uint8
    with ``labels`` (h, w) in ``[0, n_labels)``, every label present.

    Row layout: HOG (cell row, cell column, orientation), the six colour histograms,
    then ``y0 / h`` and ``x0 / w`` of the unshifted patch corner (nlc.py line 163:
    ``boxes[j, 1] / h, boxes[j, 0] / w``, taken before the shift).
    """
    h, w = labels.shape
    size = config.patch_size
    cells = size // config.hog_cell
    rows = []
    for s in range(n_labels):
        ys, xs = np.nonzero(labels == s)
        x0, x_first, x_end = patch_span(xs.min(), xs.max(), size, w)
        y0, y_first, y_end = patch_span(ys.min(), ys.max(), size, h)
        patch = frame[y_first:y_end, x_first:x_end]
        hog_features = hog(
            rgb2gray(patch),
            orientations=config.hog_orientations,
            pixels_per_cell=(config.hog_cell, config.hog_cell),
            cells_per_block=(cells, cells),
            block_norm=config.hog_block_norm,
        )
        rows.append(np.concatenate([hog_features,
                                    colour_histograms(patch, config.color_bins),
                                    [y0 / h, x0 / w]]))
    return np.array(rows)
