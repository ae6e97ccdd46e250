"""Consensus voting and blob removal (spec section 6) against the plain oracle.

The blob removals and superpixel means exist on their own only in the oracle
(``fastunlc.reference.voting``): their known answers are checked there, and the fast
path, which fuses them into ``consensus_voting``, against the oracle's composition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fastunlc.config import UNLCConfig
from fastunlc.graph import transition_matrix
from fastunlc.reference import voting as reference
from fastunlc.reference.voting import (
    remove_low_energy_blobs,
    remove_small_blobs,
    superpixel_means,
)
from fastunlc.voting import consensus_voting

from .helpers import read_video_frames

# Sparse (CSR) and dense (BLAS) mat-vecs sum in different orders: ~1e-16 per step.
VOTING_ATOL = 1e-12
# Small graph for small shots: 2 frames either side, M = 3 x 5 = 15 neighbours.
SMALL = UNLCConfig(temporal_radius=2, neighbours_per_frame=3)
# Energy fraction above the threshold, so low-energy removal actually removes blobs.
ACTING = SMALL.replace(low_energy_fraction=0.9)
# Another threshold, and small blobs kept down to 0.3 x the largest.
LOWER = SMALL.replace(foreground_threshold=0.5, low_energy_fraction=0.8,
                      relative_blob_size=0.3)


def random_labels(rng, n, h, w, cells=(3, 9)) -> tuple[np.ndarray, np.ndarray]:
    """Blocky random label maps, contiguous 0..n_f-1 per frame, with their offsets."""
    frames = []
    for _ in range(n):
        gy, gx = rng.integers(*cells, size=2)
        coarse = rng.integers(0, gy * gx, size=(gy, gx))
        ys = np.minimum(np.arange(h) * gy // h, gy - 1)
        xs = np.minimum(np.arange(w) * gx // w, gx - 1)
        # Relabel so that labels are contiguous; equal coarse values merge across cells.
        _, inverse = np.unique(coarse[ys][:, xs], return_inverse=True)
        frames.append(inverse.reshape(h, w).astype(np.int32))
    counts = [f.max() + 1 for f in frames]
    return np.stack(frames), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def smooth_mask(rng, n, h, w, sigma=2.0) -> np.ndarray:
    """Random soft masks in [0, 1] with blobs of many sizes."""
    noise = ndimage.gaussian_filter(rng.random((n, h, w)), (0, sigma, sigma))
    noise -= noise.min(axis=(1, 2), keepdims=True)
    return noise / noise.max(axis=(1, 2), keepdims=True)


def random_shot(rng, n=6, h=40, w=50):
    labels, offsets = random_labels(rng, n, h, w)
    x = rng.random((offsets[-1], 6))
    return labels, offsets, transition_matrix(x, offsets, SMALL)


def test_remove_small_blobs_known_answer():
    mask = np.zeros((2, 20, 20))
    mask[0, 2:12, 2:12] = 0.9  # 100 px: the largest blob
    mask[0, 15:18, 15:18] = 0.8  # 9 px < 0.6 x 100: dropped to just under 0.7
    mask[0, 12, 12] = 0.95  # touches the big blob only at a corner: its own 1 px blob
    mask[1, 5:10, 5:10] = 0.75  # a frame's only blob is its largest: kept
    out = remove_small_blobs(mask)
    expected = mask.copy()
    expected[0, 15:18, 15:18] = 0.7 - 1e-5
    expected[0, 12, 12] = 0.7 - 1e-5
    np.testing.assert_array_equal(out, expected)
    assert mask[0, 12, 12] == 0.95  # input untouched


def test_remove_low_energy_blobs_known_answer():
    mask = np.zeros((1, 10, 12))
    mask[0, 1:4, 1:4] = 0.6  # above 0.5 but energy 0.6 x 9 < 0.8 x 9: suppressed
    mask[0, 6:9, 6:11] = 0.95  # energy 0.95 x 15 >= 0.8 x 15: kept
    mask[0, 6, 1] = 0.81  # single pixel, 0.81 >= 0.8: kept
    out = remove_low_energy_blobs(mask, threshold=0.5, energy_fraction=0.8, value=0.125)
    expected = mask.copy()
    expected[0, 1:4, 1:4] = 0.125
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("config", [SMALL, ACTING, LOWER],
                         ids=["reference", "low-energy-acting", "lower-threshold"])
def test_consensus_voting_matches_oracle(config):
    rng = np.random.default_rng(4)
    labels, offsets, T = random_shot(rng)
    saliency = smooth_mask(rng, *labels.shape, sigma=4.0) ** 3
    votes = superpixel_means(saliency, labels, offsets)
    fast = consensus_voting(votes, T, labels, offsets, config)
    slow = reference.consensus_voting(votes, T.toarray(), labels, offsets, config)
    assert fast.shape == labels.shape and fast.dtype == np.float32
    # float64 throughout, rounded once to float32 at the end.
    np.testing.assert_allclose(fast, slow.astype(np.float32), rtol=0, atol=VOTING_ATOL)
    assert fast.min() >= 0.0 and fast.max() <= 1.0
    assert np.any(fast > config.foreground_threshold)


def test_consensus_voting_real_frames_match_oracle(opencv_data):
    from skimage.segmentation import slic

    frames = read_video_frames(opencv_data / "vtest.avi", 0, 8, size=(72, 96))
    frames = frames.astype(np.float64) / 255.0
    labels = np.stack([slic(f, n_segments=60, compactness=10, start_label=0) for f in frames])
    offsets = np.concatenate([[0], np.cumsum(labels.reshape(8, -1).max(axis=1) + 1)])
    # Saliency stand-in: temporal change of brightness (people walking), in [0, 1].
    grey = frames.mean(axis=-1)
    change = np.abs(grey - np.roll(grey, 1, axis=0))
    saliency = ndimage.uniform_filter(change, (1, 5, 5))
    saliency /= saliency.max()
    # Descriptors: mean colour and centroid of each superpixel.
    ys, xs = np.indices(labels.shape[1:])
    channels = (*np.moveaxis(frames, -1, 0), np.broadcast_to(ys / 72.0, labels.shape),
                np.broadcast_to(xs / 96.0, labels.shape))
    features = np.stack([superpixel_means(c, labels, offsets) for c in channels], axis=1)
    T = transition_matrix(features, offsets, SMALL)
    votes = superpixel_means(saliency, labels, offsets)
    for config in (SMALL, ACTING):
        fast = consensus_voting(votes, T, labels, offsets, config)
        slow = reference.consensus_voting(votes, T.toarray(), labels, offsets, config)
        np.testing.assert_allclose(fast, slow.astype(np.float32), rtol=0, atol=VOTING_ATOL)
        assert 0.0 <= fast.min() and fast.max() <= 1.0


def test_all_zero_votes_stay_zero():
    labels, offsets, T = random_shot(np.random.default_rng(5))
    out = consensus_voting(np.zeros(offsets[-1]), T, labels, offsets, SMALL)
    assert np.all(out == 0.0)


def test_zero_frame_stays_zero_and_frames_are_normalised():
    # Block-diagonal T: frames do not talk, so a frame starting at zero stays at zero.
    import scipy.sparse as sp

    labels, offsets = random_labels(np.random.default_rng(6), 3, 30, 30)
    votes = np.random.default_rng(7).random(offsets[-1]) * 0.3
    votes[offsets[1]:offsets[2]] = 0.0
    keep_blobs = SMALL.replace(relative_blob_size=0.0)
    out = consensus_voting(votes, sp.identity(offsets[-1], format="csr"), labels, offsets,
                           keep_blobs)
    assert np.all(out[1] == 0.0)
    # Each frame is divided by its maximum: votes / max, up to the superpixel means' rounding.
    for f in (0, 2):
        frame = votes[offsets[f]:offsets[f + 1]]
        expected = reference.paint(frame / frame.max(), labels[f:f + 1], offsets[:2])
        np.testing.assert_allclose(out[f:f + 1], expected.astype(np.float32), rtol=1e-7)


def test_tiny_negative_votes_read_as_zero():
    labels, offsets, T = random_shot(np.random.default_rng(8))
    votes = np.full(offsets[-1], -1e-17)
    assert np.all(consensus_voting(votes, T, labels, offsets, SMALL) == 0.0)


def test_bad_inputs():
    labels, offsets, T = random_shot(np.random.default_rng(9), n=3)
    k = offsets[-1]
    with pytest.raises(ValueError, match="initial_votes must be finite and >= 0"):
        consensus_voting(np.full(k, -0.5), T, labels, offsets)
    with pytest.raises(ValueError, match="initial_votes must have shape"):
        consensus_voting(np.zeros(k + 1), T, labels, offsets)
    with pytest.raises(ValueError, match="transition must be a scipy sparse"):
        consensus_voting(np.zeros(k), T.toarray(), labels, offsets)
    with pytest.raises(ValueError, match="frame_offsets must be an integer array of shape"):
        consensus_voting(np.zeros(k), T, labels, offsets[:-1])
    bad = labels.copy()
    bad[1, 0, 0] = offsets[2] - offsets[1]  # one past frame 1's last superpixel
    with pytest.raises(ValueError, match="labels of frame 1 span"):
        consensus_voting(np.zeros(k), T, bad, offsets)
    gap = labels.copy()
    gap[0][gap[0] == 0] = 1  # superpixel 0 of frame 0 has no pixels
    with pytest.raises(ValueError, match="superpixel 0 of frame 0 has no pixels"):
        consensus_voting(np.zeros(k), T, gap, offsets)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_propagation_is_scipys_matvec_and_normalisation_bit_for_bit(index_dtype):
    from fastunlc.voting import _vote

    rng = np.random.default_rng(10)
    _, offsets, T = random_shot(rng)
    T = T.tocsr()
    T.indptr, T.indices = T.indptr.astype(index_dtype), T.indices.astype(index_dtype)
    votes = rng.random(offsets[-1])
    votes[offsets[1]:offsets[2]] = 0.0  # an all-zero frame stays zero, no NaN
    expected = votes.copy()
    for _ in range(7):
        expected = T @ expected
        peak = np.maximum.reduceat(expected, offsets[:-1])
        expected /= np.repeat(np.where(peak > 0, peak, 1.0), np.diff(offsets))
    np.testing.assert_array_equal(_vote(votes, T, offsets, 7), expected, strict=True)


def test_round_means_equal_bincount_of_the_painted_votes_bit_for_bit():
    # The kernel adds each superpixel's vote once per pixel without walking the pixels:
    # the same sums as np.bincount's raster-order walk over the painted frame.
    from fastunlc.backend import kernels

    rng = np.random.default_rng(11)
    labels, offsets = random_labels(rng, 4, 60, 70)
    k = offsets[-1]
    votes = rng.random(k)
    flat = (labels + offsets[:-1, None, None]).ravel()
    counts = np.bincount(flat, minlength=k)
    means = np.empty(k)
    kernels("cpu").voting.low_energy_means(
        votes, labels, offsets, counts, np.zeros((0, 0, 0), np.int32),
        np.ones(len(labels), np.int64), 0.6, 0.0, means)
    np.testing.assert_array_equal(means, np.bincount(flat, weights=votes[flat]) / counts)
