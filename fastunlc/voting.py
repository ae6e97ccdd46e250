"""Consensus voting with blob removal (spec section 6).

Votes live on superpixels: one value per superpixel of the shot, numbered frame by
frame (frame f owns ``frame_offsets[f] .. frame_offsets[f + 1] - 1``). Starting from
each superpixel's mean saliency, votes are propagated through the row-stochastic
transition matrix T of :mod:`fastunlc.graph` (``v <- T v``) and renormalised per frame
so that each frame's best superpixel has vote 1. Between rounds of iterations the
votes are painted onto pixels, blobs of the foreground that hold too little energy
are suppressed, and votes are re-read from the edited mask. The final mask drops
blobs much smaller than each frame's largest one to just under the threshold.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import scipy.sparse as sp

from .backend import kernels
from .config import REFERENCE, UNLCConfig

logger = logging.getLogger(__name__)

NEGATIVE_VOTE_TOLERANCE = 1e-9
"""Initial votes down to ``-NEGATIVE_VOTE_TOLERANCE`` are rounding noise and read as 0."""


def _check_offsets(frame_offsets: np.ndarray, n: int) -> np.ndarray:
    offsets = np.asarray(frame_offsets)
    if offsets.shape != (n + 1,) or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(f"frame_offsets must be an integer array of shape ({n + 1},) for {n} "
                         f"frames, got shape {offsets.shape} and dtype {offsets.dtype}")
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or np.any(np.diff(offsets) < 1):
        raise ValueError("frame_offsets must start at 0 and rise strictly (every frame has at "
                         f"least one superpixel), got {offsets[:8]}...")
    return offsets


def _check_labels(labels: np.ndarray, frame_offsets: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels (n, h, w) against frame_offsets; return int32 C-contiguous labels
    and int64 offsets. Guarantees ``0 <= labels[f] < n_f``, which the kernels rely on.
    The labels are on the host whatever the device, so the CPU's kernel checks them."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer) or labels.size == 0:
        raise ValueError(f"labels must be a non-empty integer array (n, h, w), got shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    offsets = _check_offsets(frame_offsets, labels.shape[0])
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    lo, hi = kernels("cpu").voting.label_ranges(labels)
    bad = np.flatnonzero((lo < 0) | (hi >= np.diff(offsets)))
    if bad.size:
        f = bad[0]
        raise ValueError(f"labels of frame {f} span {lo[f]}..{hi[f]} but frame_offsets give it "
                         f"{offsets[f + 1] - offsets[f]} superpixels (labels must be 0..n_f-1)")
    return labels, offsets


def _check_no_empty(counts: np.ndarray, offsets: np.ndarray) -> None:
    """Raise if a superpixel has no pixels (``counts`` (k,) pixels per superpixel)."""
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        f = np.searchsorted(offsets, empty[0], side="right") - 1
        raise ValueError(f"superpixel {empty[0] - offsets[f]} of frame {f} has no pixels "
                         "(labels must be contiguous 0..n_f-1 in every frame)")


def _components(binary: np.ndarray) -> tuple[int, np.ndarray]:
    """4-connected components of one uint8 (h, w) frame: their count (background
    included) and int32 labels, background 0."""
    # Without stats: OpenCV's statistics pass costs several times the labelling itself.
    return cv2.connectedComponents(binary, connectivity=4, ltype=cv2.CV_32S)


def _energy_can_be_low(threshold: float, energy_fraction: float) -> bool:
    """Whether some component of ``mask > threshold`` could sum below ``energy_fraction``
    x its size. Its pixels all exceed ``threshold``, so not when ``energy_fraction`` is
    below ``threshold``; the 1e-6 margin covers float rounding of sums of up to 1e9
    pixels (all positive when ``threshold > 0``). The reference's 0.6 < 0.7 makes
    low-energy removal a no-op."""
    return threshold <= 0 or energy_fraction >= threshold * (1.0 - 1e-6)


def _vote(votes: np.ndarray, transition: sp.csr_matrix, offsets: np.ndarray,
          iterations: int) -> np.ndarray:
    """``iterations`` times: ``v <- T v``, then divide each frame by its maximum if > 0.

    The compiled kernel runs scipy's ``T @ v`` row by row and NumPy's per-frame maximum
    and division, bit for bit, over the rows and frames in parallel."""
    return kernels("cpu").voting.propagate(votes, transition.indptr, transition.indices,
                                           transition.data, offsets, iterations)


def _final_masks(votes: np.ndarray, labels: np.ndarray, offsets: np.ndarray,
                 config: UNLCConfig) -> np.ndarray:
    """Painted float32 (n, h, w) masks with the blobs smaller than ``relative_blob_size``
    x each frame's largest set to ``threshold - small_blob_margin``: painting in float64,
    editing and rounding once to float32, in one pass per frame without the float64
    frame."""
    kernel = kernels("cpu").voting
    threshold = config.foreground_threshold
    binary = np.empty(labels.shape, dtype=np.uint8)
    kernel.foreground(votes, labels, offsets, threshold, binary)
    masks = np.empty(labels.shape, dtype=np.float32)
    count = np.ones(1, dtype=np.int64)
    for f in range(labels.shape[0]):
        # The frame's components only: labelling all frames first would hold an int32
        # (n, h, w) array (140 MB for a 110-frame 650-px shot).
        count[0], components = (_components(binary[f]) if binary[f].any()
                                else (1, np.zeros((0, 0), np.int32)))
        kernel.paint_masks(votes, labels[f:f + 1], offsets[f:f + 2], components[None], count,
                           config.relative_blob_size, threshold - config.small_blob_margin,
                           masks[f:f + 1])
    return masks


def consensus_voting(
    initial_votes: np.ndarray, transition: sp.spmatrix, labels: np.ndarray,
    frame_offsets: np.ndarray, config: UNLCConfig = REFERENCE
) -> np.ndarray:
    """Soft foreground masks of a shot by consensus voting.

    ``config.voting_rounds`` rounds of ``voting_iterations / voting_rounds`` iterations
    (``v <- T v``, then each frame divided by its maximum vote when that is > 0). After
    each round the votes are painted, low-energy blobs removed and the votes recomputed
    as superpixel means of that mask. Finally the votes are painted and small blobs
    removed. ``fastunlc.reference.voting`` holds each of these steps on its own.

    Parameters
    ----------
    initial_votes : (k,) float ndarray
        Initial vote per superpixel, >= 0: the mean saliency of its pixels
        (:func:`fastunlc.saliency.superpixel_saliency`). Rounding noise down to -1e-9
        is clipped to 0.
    transition : (k, k) scipy sparse matrix
        Row-stochastic transition matrix (:func:`fastunlc.graph.transition_matrix`).
    labels : (n, h, w) int ndarray
        Superpixel labels, contiguous ``0 .. n_f - 1`` in frame f.
    frame_offsets : (n + 1,) int ndarray
        Frame f owns superpixels ``frame_offsets[f] .. frame_offsets[f + 1] - 1``.
    config : UNLCConfig
        Uses ``voting_iterations``, ``voting_rounds``, ``foreground_threshold``,
        ``low_energy_fraction``, ``low_energy_value``, ``relative_blob_size`` and
        ``small_blob_margin``.

    Returns
    -------
    (n, h, w) float32
        Soft masks in [0, 1] (each frame's votes peak at 1 after an iteration; blob
        edits write ``low_energy_value`` and ``threshold - small_blob_margin``); foreground is
        ``mask > config.foreground_threshold``. A frame whose votes are all zero stays
        zero. Everything up to the last step runs in float64: the masks are the float64
        result rounded once to float32.

    Raises
    ------
    ValueError
        On mismatched shapes, labels outside ``0 .. n_f - 1``, an empty superpixel, or
        negative or non-finite votes.

    Notes
    -----
    The rounds never build the float masks: the foreground components and the
    superpixel means of the edited mask are computed from the votes and the labels
    directly, with the same sums in the same order as painting, removing and
    averaging, so the result is the same to the bit. With the reference's parameters
    no blob can be low-energy (its pixels all exceed the threshold 0.7, so it cannot
    sum below 0.6 x its size) and the components are not labelled at all.
    """
    device = config.device
    kernel = kernels(device).voting
    labels, offsets = _check_labels(labels, frame_offsets)
    k = offsets[-1]
    votes = np.array(initial_votes, dtype=np.float64)
    if votes.shape != (k,):
        raise ValueError(f"initial_votes must have shape ({k},) = frame_offsets[-1], got "
                         f"{votes.shape}")
    if not np.all(np.isfinite(votes)) or np.any(votes < -NEGATIVE_VOTE_TOLERANCE):
        raise ValueError("initial_votes must be finite and >= 0 (mean saliency in [0, 1]), got "
                         f"range {votes.min()}..{votes.max()}")
    # Box filters with running sums leave values like -1e-17 where saliency is 0.
    np.maximum(votes, 0.0, out=votes)
    if not sp.issparse(transition) or transition.shape != (k, k):
        shape = getattr(transition, "shape", None)
        raise ValueError(f"transition must be a scipy sparse ({k}, {k}) matrix, got "
                         f"{type(transition).__name__} of shape {shape}")
    transition = sp.csr_matrix(transition, dtype=np.float64)
    if device == "cuda":
        rows = kernels(device).graph.rows_from_csr(transition)
        return kernels(device).voting.consensus_voting(votes, rows, labels, offsets,
                                                       config).copy_to_host()
    counts = np.zeros(k, dtype=np.int64)
    kernel.pixel_counts(labels, offsets, counts)
    _check_no_empty(counts, offsets)
    per_round = config.voting_iterations // config.voting_rounds
    threshold = config.foreground_threshold
    # With n_components all 1 (nothing labelled) the round kernel only averages.
    label_blobs = _energy_can_be_low(threshold, config.low_energy_fraction)
    binary = np.empty(labels.shape if label_blobs else (0, 0, 0), dtype=np.uint8)
    components = np.zeros(binary.shape, dtype=np.int32)
    n_components = np.ones(labels.shape[0], dtype=np.int64)
    for r in range(config.voting_rounds):
        votes = _vote(votes, transition, offsets, per_round)
        if label_blobs:
            kernel.foreground(votes, labels, offsets, threshold, binary)
            for f in range(labels.shape[0]):
                n_components[f] = 1
                if binary[f].any():
                    n_components[f], components[f] = _components(binary[f])
        means = np.empty(k)
        kernel.low_energy_means(votes, labels, offsets, counts, components, n_components,
                                config.low_energy_fraction, config.low_energy_value, means)
        votes = means
        logger.debug("voting round %d: %d superpixels above %.2f", r + 1,
                     int(np.count_nonzero(votes > threshold)), threshold)
    return _final_masks(votes, labels, offsets, config)
