"""Oracle of consensus voting with blob removal (spec section 6), dense and plain."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..config import REFERENCE, UNLCConfig


def superpixel_means(values: np.ndarray, labels: np.ndarray,
                     frame_offsets: np.ndarray) -> np.ndarray:
    """(k,) mean of ``values`` (n, h, w) over each superpixel, frame by frame."""
    out = []
    for f in range(labels.shape[0]):
        n_f = frame_offsets[f + 1] - frame_offsets[f]
        flat = labels[f].ravel()
        sums = np.bincount(flat, weights=values[f].ravel().astype(np.float64), minlength=n_f)
        counts = np.bincount(flat, minlength=n_f)
        out.append(sums / counts)
    return np.concatenate(out)


def paint(votes: np.ndarray, labels: np.ndarray, frame_offsets: np.ndarray) -> np.ndarray:
    """(n, h, w) float64 with each pixel set to its superpixel's vote."""
    return np.stack([votes[frame_offsets[f]:frame_offsets[f + 1]][labels[f]]
                     for f in range(labels.shape[0])]).astype(np.float64)


def remove_low_energy_blobs(mask: np.ndarray, threshold: float = 0.7,
                            energy_fraction: float = 0.6, value: float = 0.175) -> np.ndarray:
    """Components of ``mask > threshold`` (4-connected) whose summed mask is below
    ``energy_fraction`` x their size are set to ``value``; returns a new array."""
    out = np.array(mask, dtype=np.float64)
    for f in range(out.shape[0]):
        components, count = ndimage.label(out[f] > threshold)  # default: 4-connected cross
        if count == 0:
            continue
        size = np.bincount(components.ravel(), minlength=count + 1)
        energy = np.bincount(components.ravel(), weights=out[f].ravel(), minlength=count + 1)
        low = energy < energy_fraction * size
        low[0] = False
        out[f][low[components]] = value
    return out


def remove_small_blobs(mask: np.ndarray, threshold: float = 0.7,
                       relative_size: float = 0.6) -> np.ndarray:
    """Components of ``mask > threshold`` (4-connected) smaller than ``relative_size`` x the
    frame's largest one are set to ``threshold - 1e-5``; returns a new array."""
    out = np.array(mask, dtype=np.float64)
    for f in range(out.shape[0]):
        components, count = ndimage.label(out[f] > threshold)
        if count == 0:
            continue
        size = np.bincount(components.ravel(), minlength=count + 1)
        small = size < relative_size * size[1:].max()
        small[0] = False
        out[f][small[components]] = threshold - 1e-5
    return out


def consensus_voting(initial_votes: np.ndarray, transition: np.ndarray, labels: np.ndarray,
                     frame_offsets: np.ndarray, config: UNLCConfig = REFERENCE) -> np.ndarray:
    """Soft masks (n, h, w) from a dense (k, k) ``transition``, step by step as in the spec."""
    votes = np.array(initial_votes, dtype=np.float64)
    transition = np.asarray(transition, dtype=np.float64)
    n = labels.shape[0]
    for _ in range(config.voting_rounds):
        for _ in range(config.voting_iterations // config.voting_rounds):
            votes = np.dot(transition, votes)
            for f in range(n):
                frame = slice(frame_offsets[f], frame_offsets[f + 1])
                peak = votes[frame].max()
                if peak > 0:
                    votes[frame] /= peak
        mask = paint(votes, labels, frame_offsets)
        mask = remove_low_energy_blobs(mask, config.foreground_threshold,
                                       config.low_energy_fraction, config.low_energy_value)
        votes = superpixel_means(mask, labels, frame_offsets)
    mask = paint(votes, labels, frame_offsets)
    return remove_small_blobs(mask, config.foreground_threshold, config.relative_blob_size)
