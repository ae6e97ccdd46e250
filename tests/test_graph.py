"""Neighbour graph (spec section 5): the sparse transition matrix of the windowed k-NN kernel
(csrc/graph/) against the dense oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastunlc.config import UNLCConfig
from fastunlc.graph import knn_graph, transition_matrix
from fastunlc.reference import graph as reference

from .helpers import read_video_frames

# The kernel ranks by float32 |x|² + |y|² - 2 x·y: a candidate may swap with one whose
# squared distance to the query is this close (relative) to the oracle's M-th.
TIE_RTOL = 1e-4
# Where neighbour sets agree, float32 distances give T within this: measured 4e-5 on
# 176-d descriptors of vtest.avi's superpixels.
T_RTOL = 2e-4

SMALL = UNLCConfig(temporal_radius=2, neighbours_per_frame=4)  # M = 20


def offsets_of(counts) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def frame_of(offsets: np.ndarray, k: int) -> np.ndarray:
    return np.searchsorted(offsets, np.arange(k), side="right") - 1


def compare_with_oracle(descriptors, offsets, config) -> float:
    """Assert the fast T equals the oracle's up to near-ties; return the fraction of rows
    whose neighbour sets are identical."""
    fast = transition_matrix(descriptors, offsets, config)
    dense = reference.transition_matrix(descriptors, offsets, config)
    fast_dense = fast.toarray()
    x = np.asarray(descriptors, dtype=np.float64)
    identical = 0
    for r in range(x.shape[0]):
        mine = set(np.flatnonzero(fast_dense[r]))
        theirs = set(np.flatnonzero(dense[r]))
        assert len(mine) == len(theirs)
        if mine == theirs:
            identical += 1
            np.testing.assert_allclose(fast_dense[r], dense[r], rtol=T_RTOL, atol=1e-12)
            continue
        sq = ((x - x[r]) ** 2).sum(axis=1)
        kth = sq[sorted(theirs)].max()
        tol = TIE_RTOL * kth + 1e-9
        for c in mine ^ theirs:
            assert abs(sq[c] - kth) <= tol, f"row {r}: candidate {c} is no near-tie"
    return identical / x.shape[0]


def patch_descriptors(path: Path, n_frames: int, counts, seed: int = 0) -> np.ndarray:
    """Colour histograms (3 x 20 bins, L1-normalised) plus location of random 15x15
    patches of real video frames: many near-duplicates on static background."""
    rng = np.random.default_rng(seed)
    frames = read_video_frames(path, 0, n_frames)
    assert len(frames) == n_frames, f"{path} has fewer than {n_frames} frames"
    rows = []
    for f, rgb in enumerate(frames):
        h, w, _ = rgb.shape
        ys = rng.integers(0, h - 15, counts[f])
        xs = rng.integers(0, w - 15, counts[f])
        for y, x in zip(ys, xs, strict=True):
            patch = rgb[y:y + 15, x:x + 15].reshape(-1, 3)
            hists = [np.histogram(patch[:, c], 20, (0, 255))[0] / 225.0 for c in range(3)]
            rows.append(np.concatenate([*hists, [y / h, x / w]]))
    return np.array(rows)


@pytest.mark.parametrize(
    "counts",
    [
        [2, 3, 4, 30, 25, 6, 12, 40, 3, 9],  # frame 0's window holds 9 < M candidates
        [30, 3, 25, 12],  # frames 1 and 2 both see frames 0..3
        [5, 0, 7, 0, 0, 9, 4],  # frames without superpixels
    ],
)
def test_random_descriptors_match_oracle(counts):
    rng = np.random.default_rng(0)
    offsets = offsets_of(counts)
    x = rng.normal(size=(offsets[-1], 12))
    assert compare_with_oracle(x, offsets, SMALL) > 0.99


def test_default_config_windows_wider_than_m_match_oracle():
    # 176-d descriptors, frames whose sizes are no multiple of the kernel's 6 x 16 tiles,
    # windows of up to 5 x 75 candidates for M = 62.
    rng = np.random.default_rng(4)
    offsets = offsets_of([75, 61, 70, 67, 73])
    x = rng.random((offsets[-1], 176))
    assert compare_with_oracle(x, offsets, UNLCConfig()) > 0.99


def test_distances_symmetric_self_zero_and_ties_by_index():
    rng = np.random.default_rng(5)
    offsets = offsets_of([13, 9, 17, 11])
    x = rng.normal(size=(offsets[-1], 7))
    x[20:23] = x[5]  # exact duplicates of superpixel 5 in frames 1 and 2
    indices, sq = knn_graph(x, offsets, SMALL)
    k = offsets[-1]
    duplicates = [5, 20, 21, 22]
    others = np.setdiff1d(np.arange(k), duplicates)
    assert np.all(indices[others, 0] == others) and np.all(sq[:, 0] == 0.0)
    pairs = {(r, int(c)): d for r in range(k) for c, d in zip(indices[r], sq[r], strict=True)}
    shared = [(r, c) for (r, c) in pairs if (c, r) in pairs]
    assert len(shared) > k
    for r, c in shared:  # the same bits both ways
        assert pairs[r, c] == pairs[c, r]
    # Equal distances rank by index, the row itself included.
    for r in duplicates:
        assert [int(c) for c in indices[r][sq[r] == 0.0]] == duplicates


def test_default_config_few_candidates_keeps_all():
    rng = np.random.default_rng(1)
    offsets = offsets_of([5, 7, 6, 4, 8])  # 30 superpixels < M = 62: complete graph
    x = rng.random((offsets[-1], 176))
    T = transition_matrix(x, offsets)
    assert np.all(np.diff(T.indptr) == 30)
    compare_with_oracle(x, offsets, UNLCConfig())


def test_real_descriptors_match_oracle(opencv_data):
    counts = [60, 45, 70, 50, 65, 55, 40, 60]
    x = patch_descriptors(opencv_data / "vtest.avi", len(counts), counts)
    assert compare_with_oracle(x, offsets_of(counts), SMALL) > 0.95


def test_structure_row_sums_window_and_self_weight():
    rng = np.random.default_rng(2)
    counts = rng.integers(1, 30, 12)
    offsets = offsets_of(counts)
    k = offsets[-1]
    x = rng.random((k, 8))
    config = SMALL
    T = transition_matrix(x, offsets, config)
    assert isinstance(T, sp.csr_matrix) and T.shape == (k, k) and T.dtype == np.float64
    assert T.has_canonical_format
    np.testing.assert_allclose(np.asarray(T.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    frame = frame_of(offsets, k)
    n = len(counts)
    window = np.array([offsets[min(n, f + 3)] - offsets[max(0, f - 2)] for f in range(n)])
    np.testing.assert_array_equal(np.diff(T.indptr), np.minimum(20, window[frame]))
    coo = T.tocoo()
    assert np.all(np.abs(frame[coo.row] - frame[coo.col]) <= config.temporal_radius)
    # Self weight 1 before normalisation: T[r, r] = 1 / sum_j exp(-d_rj^2 / 0.1).
    indices, sq = knn_graph(x, offsets, config)
    valid = indices >= 0
    w = np.where(valid, np.exp(-sq.astype(np.float64) / 0.1), 0.0)
    w[indices == np.arange(k)[:, None]] = 1.0
    np.testing.assert_allclose(T.diagonal(), 1.0 / w.sum(axis=1), rtol=1e-12)
    assert np.all(T.diagonal() >= T.max(axis=1).toarray().ravel())


def test_knn_graph_shapes_and_padding():
    rng = np.random.default_rng(3)
    offsets = offsets_of([3, 4, 30])
    x = rng.random((offsets[-1], 5)).astype(np.float32)
    indices, sq = knn_graph(x, offsets, SMALL)
    assert indices.shape == sq.shape == (37, 20)
    assert indices.dtype == np.int64 and sq.dtype == np.float32
    assert np.all(indices[:, 0] == np.arange(37))  # itself first: distance 0
    assert np.all(np.diff(sq, axis=1)[np.isfinite(sq[:, 1:])] >= -1e-6)  # nearest first
    # Frame 0's window is all 37 superpixels; with radius 2 every frame sees all.
    assert np.all(indices >= 0) and np.all(np.isfinite(sq))
    far = UNLCConfig(temporal_radius=1, neighbours_per_frame=4)  # M = 12, frame 0 sees 7
    indices, sq = knn_graph(x, offsets, far)
    assert np.all(indices[:3, 7:] == -1) and np.all(np.isinf(sq[:3, 7:]))
    assert np.all(indices[:3, :7] >= 0) and np.all(indices[:3, :7] < 7)


def test_identical_descriptors_keep_their_edges():
    # The reference drops neighbours at distance exactly 0; fastunlc keeps them at weight 1.
    x = np.zeros((6, 4))
    x[3:] = 5.0  # far away: weight exp(-100 / 0.1) underflows to 0
    T = transition_matrix(x, offsets_of([2, 4]), SMALL).toarray()
    np.testing.assert_allclose(T[:3, :3], 1.0 / 3.0, rtol=1e-12)
    np.testing.assert_allclose(T[3:, 3:], 1.0 / 3.0, rtol=1e-12)


def test_more_duplicates_than_neighbours_still_includes_self():
    x = np.ones((40, 3))
    offsets = offsets_of([40])
    config = UNLCConfig(temporal_radius=1, neighbours_per_frame=3)  # M = 9
    indices, _ = knn_graph(x, offsets, config)
    assert np.all(np.any(indices == np.arange(40)[:, None], axis=1))
    T = transition_matrix(x, offsets, config)
    assert np.all(np.diff(T.indptr) == 9)
    np.testing.assert_allclose(T.diagonal(), 1.0 / 9.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("descriptors", "offsets", "message"),
    [
        (np.zeros(10), [0, 10], "descriptors must be"),
        (np.zeros((10, 3)), [0, 4, 9], "frame_offsets must rise"),
        (np.zeros((10, 3)), [0, 6, 4, 10], "decreasing"),
        (np.zeros((10, 3)), [[0, 10]], "frame_offsets must be a 1-D"),
        (np.full((10, 3), np.nan), [0, 10], "NaN"),
        (np.zeros((10, 3), dtype=int), [0, 10], "floating point"),
    ],
)
def test_bad_input(descriptors, offsets, message):
    with pytest.raises(ValueError, match=message):
        transition_matrix(descriptors, np.asarray(offsets))


_GRAPH_DIGEST = """
import hashlib, sys
import numpy as np
from fastunlc.graph import transition_matrix
data = np.load(sys.argv[1])
t = transition_matrix(data["descriptors"], data["offsets"])
print(hashlib.sha1(t.data.tobytes() + t.indices.tobytes() + t.indptr.tobytes()).hexdigest())
"""


def test_graph_does_not_depend_on_the_thread_counts(opencv_data, tmp_path):
    """Same bits with 1 or 2 OpenMP threads: every distance is one fixed sequence of fused
    multiply-adds, whichever thread computes it."""
    import os
    import subprocess
    import sys

    from fastunlc.descriptors import superpixel_descriptors_batch
    from fastunlc.superpixels import slic_superpixels_batch


    frames = read_video_frames(opencv_data / "vtest.avi", 0, 12)
    labels, counts = slic_superpixels_batch(frames)
    descriptors, offsets = superpixel_descriptors_batch(frames, labels, counts)
    path = tmp_path / "shot.npz"
    np.savez(path, descriptors=descriptors, offsets=offsets)
    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", _GRAPH_DIGEST, str(path)], env=env,
                                capture_output=True, text=True, timeout=300, check=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1
