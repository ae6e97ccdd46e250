"""Shot detection (Kernel Temporal Segmentation) and per-shot frame subsampling.

A video is cut into at most ``config.max_shots`` shots by KTS (Potapov et al.,
"Category-specific video summarization", ECCV 2014) over per-frame colour
histograms with a linear kernel, exactly as the reference (spec sections 0-1).
The reference holds the N×N kernel and scatter matrices (about 1.6 GB for
10,000 frames); here segment scatters come from prefix sums of the features and
are consumed block by block, so memory stays O(N·d + m·N).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from fastunlc.backend import kernels
from fastunlc.config import UNLCConfig

log = logging.getLogger(__name__)

# Float64 elements of one block of prefix-sum inner products (8 MB): large
# enough for an efficient BLAS product, small beside the features themselves.
_BLOCK_ELEMENTS = 1 << 20
_MIN_BLOCK_ROWS = 64


def shot_features(frames: np.ndarray, bins: int = 40, *, device: str = "cpu") -> np.ndarray:
    """Per-frame colour histograms, the KTS features of the reference.

    Works on any chunk of a video, so a long video can be streamed chunk by
    chunk and the rows stacked.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8 ndarray
        RGB frames.
    bins : int, optional
        Bins per histogram (>= 1; the reference uses 40, ``config.shot_hist_bins``).
    device : str, keyword-only
        Backend of the kernels (``config.device``, :mod:`fastunlc.backend`).

    Returns
    -------
    features : (n, 6 * bins) float64 ndarray
        Per frame the R, G, B histograms over [0, 255], then CIELAB L over
        [0, 100], a and b over [-128, 127] (``skimage.color.rgb2lab``), each
        L1-normalised (a histogram with no counted value stays zero). Values in [0, 1].

    Raises
    ------
    TypeError
        If ``frames`` is not an ndarray.
    ValueError
        If ``frames`` is not uint8 of shape (n, h, w, 3) or ``bins < 1``.

    Notes
    -----
    Binning is ``np.histogram``'s, count for count: values outside a range are
    dropped (some scikit-image versions give pure white L = 100.00000000000001,
    which is then not counted in L). CIELAB is computed as ``skimage.color.rgb2lab``
    does but without BLAS, so a value may differ from it in its last bits (at most
    1.7e-13 over all 2^24 colours); with the reference's 40 bins every colour lands in
    skimage's bin (tested on all 2^24), so the features equal the reference's exactly.
    """
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a uint8 ndarray, got {_describe(frames)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 ndarray, got {_describe(frames)}")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must have shape (n, h, w, 3), got {frames.shape}")
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    n, h, w, _ = frames.shape
    bins = int(bins)
    if device == "cuda" and n and h and w:
        return kernels(device).shots.shot_features(frames, bins).copy_to_host()
    if n == 0 or h == 0 or w == 0:
        return np.zeros((n, 6 * bins))
    # Histograms are counts, so each distinct colour of a frame is converted to CIELAB
    # once and counted with its pixels (fastunlc._C; bins equal to those of the reference's
    # rgb2lab, see csrc/shots/features.cpp).
    return kernels(device).shots.shot_features(np.ascontiguousarray(frames), bins)


def kts_change_points(features: np.ndarray, max_change_points: int, vmax: float, *,
                      device: str = "cpu") -> np.ndarray:
    """Change points of Kernel Temporal Segmentation with a linear kernel.

    Parameters
    ----------
    features : (N, d) float ndarray
        One row per frame (e.g. :func:`shot_features`); finite, N >= 1.
    max_change_points : int
        ``m`` (>= 0): the most change points considered. When ``N < m + 1``
        only ``N - 1`` are possible and ``m`` is lowered to that (the reference
        asserts instead).
    vmax : float
        Weight of the penalty on the number of change points (>= 0).
    device : str, keyword-only
        Backend of the dynamic programme's kernel (``config.device``).

    Returns
    -------
    change_points : (c,) int64 ndarray
        Increasing frame indices in [1, N - 1] where a new segment starts, ``c <= m``.

    Raises
    ------
    TypeError
        If ``features`` is not an ndarray.
    ValueError
        If ``features`` is not a finite real 2-D array with at least one row, or the
        parameters are out of range.

    Notes
    -----
    With ``K = X Xᵀ`` the scatter of frames ``[i, j)`` is the sum of ``K``'s
    diagonal over it minus the sum of its ``K`` block over ``j - i``; a dynamic
    programme gives the least total scatter ``s_c`` for ``c = 0..m`` change points,
    and the chosen ``c`` minimises ``s_c / N + penalty(c)`` with ``penalty(0) = 0``
    and ``penalty(c) = vmax * c / (2N) * (log(N / c) + 1)``. Ties go to the
    smaller ``c`` and the earlier change point, as in the reference.

    The scatter of ``[i, j)`` is computed as ``(Q[j] - Q[i]) - ‖S[j] - S[i]‖² / (j - i)``
    with ``S`` the prefix sums of the (mean-centred) rows and ``Q`` those of
    their squared norms: the same quantity, never an N×N matrix. Time is
    O(N² d) in BLAS plus O(m N²) in the compiled DP; memory is O(N d + m N).
    Centring does not change any scatter but keeps the prefix sums small, so
    less is lost to cancellation than in the reference's double cumulative sum.

    References
    ----------
    D. Potapov, M. Douze, Z. Harchaoui, C. Schmid, "Category-specific video
    summarization", ECCV 2014.
    """
    x = _check_features(features)
    if int(max_change_points) != max_change_points or max_change_points < 0:
        raise ValueError(f"max_change_points must be an integer >= 0, got "
                         f"{max_change_points!r}")
    if not (math.isfinite(vmax) and vmax >= 0):
        raise ValueError(f"vmax must be a finite number >= 0, got {vmax!r}")
    if device == "cuda":
        return kernels(device).shots.change_points(x, int(max_change_points), vmax)
    n = x.shape[0]
    m = min(int(max_change_points), n - 1)

    x = x - x.mean(axis=0)
    prefix = np.zeros((n + 1, x.shape[1]))
    np.cumsum(x, axis=0, out=prefix[1:])
    sq_prefix = np.zeros(n + 1)
    np.cumsum(np.einsum("ij,ij->i", x, x), out=sq_prefix[1:])
    del x
    norms = np.einsum("ij,ij->i", prefix, prefix)

    cost = np.full((m + 1, n + 1), np.inf)
    back = np.zeros((m + 1, n + 1), dtype=np.int64)
    rows = max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // (n + 1))
    kts_block = kernels(device).shots.kts_block
    for first in range(1, n + 1, rows):
        last = min(first + rows, n + 1)
        # Inner products of the block's ends with every start before them.
        gram = prefix[first:last] @ prefix[:last].T
        kts_block(gram, first, norms, sq_prefix, cost, back)

    scores = cost[:, n]
    counts = np.arange(1, m + 1)
    penalties = np.zeros(m + 1)
    penalties[1:] = vmax * counts / (2.0 * n) * (np.log(n / counts) + 1.0)
    best = int(np.argmin(scores / n + penalties))
    log.debug("KTS on %d frames: scores/N + penalty = %s, %d change points",
              n, scores / n + penalties, best)

    change_points = np.zeros(best, dtype=np.int64)
    end = n
    for k in range(best, 0, -1):
        end = back[k, end]
        change_points[k - 1] = end
    return change_points


def detect_shots(features: np.ndarray, config: UNLCConfig) -> list[tuple[int, int]]:
    """Cut a video into shots by KTS with the configured parameters.

    Parameters
    ----------
    features : (N, d) float ndarray
        Per-frame features (:func:`shot_features`), N >= 1.
    config : UNLCConfig
        Uses ``max_shots`` (at most ``max_shots - 1`` change points), ``kts_vmax`` and
        ``device``.

    Returns
    -------
    shots : list of (start, end) tuples of int
        Frame ranges, ``end`` exclusive, in order, covering ``[0, N)`` without gaps.
    """
    cuts = kts_change_points(features, config.max_shots - 1, config.kts_vmax,
                             device=config.device).tolist()
    bounds = [0, *cuts, features.shape[0]]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def shot_frames(start: int, end: int, config: UNLCConfig) -> np.ndarray | None:
    """Frames of the shot ``[start, end)`` that the pipeline processes.

    Parameters
    ----------
    start, end : int
        First frame and one past the last frame of the shot (``0 <= start <= end``).
    config : UNLCConfig
        Uses ``min_shot`` and ``max_shot`` (frames).

    Returns
    -------
    frames : (k,) int64 ndarray or None
        None when the shot has fewer than ``min_shot`` frames; every frame when it
        has at most ``max_shot``; otherwise every ``L // max_shot + 1``-th frame
        from ``start`` (``L = end - start``), which leaves between about
        ``max_shot / 2`` and ``max_shot`` frames.

    Raises
    ------
    ValueError
        If the range is not a valid frame range.
    """
    if int(start) != start or int(end) != end or not 0 <= start <= end:
        raise ValueError(f"a shot needs integer frames 0 <= start <= end, got [{start!r}, "
                         f"{end!r})")
    length = int(end) - int(start)
    if length < config.min_shot:
        return None
    step = 1 if length <= config.max_shot else length // config.max_shot + 1
    return np.arange(int(start), int(end), step, dtype=np.int64)


def _check_features(features: np.ndarray) -> np.ndarray:
    """Validate KTS features and return them as a C-contiguous float64 array."""
    if not isinstance(features, np.ndarray):
        raise TypeError(f"features must be a real ndarray, got {_describe(features)}")
    if features.dtype.kind not in "fiu":
        raise ValueError(f"features must be a real ndarray, got {_describe(features)}")
    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"features must have shape (N, d) with N >= 1, got "
                         f"{features.shape}")
    x = np.ascontiguousarray(features, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("features must be finite (found NaN or inf)")
    return x


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray of {value.dtype} with shape {value.shape}"
    return type(value).__name__
