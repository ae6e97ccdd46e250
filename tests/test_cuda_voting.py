"""CUDA consensus voting and connected components against the CPU backend.

The GPU sums every vote, product and superpixel mean in the CPU's order and rounds each
product on its own, so the masks must equal the CPU's bit for bit (here, under the
simulator, and on a GPU too). The one order-dependent sum, a component's energy in
low-energy removal (a float64 atomic), could only flip a component whose energy lies
within ~1e-12 relative of the bound; the random inputs here have none.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fastunlc._kernels.cuda import graph as gpu_graph
from fastunlc._kernels.cuda import voting as gpu
from fastunlc.config import UNLCConfig
from fastunlc.graph import transition_matrix
from fastunlc.reference.voting import superpixel_means
from fastunlc.saliency import superpixel_saliency
from fastunlc.voting import consensus_voting

from .test_cuda_saliency import compile_for_gpu, random_labels, tiny_real_shot

# Two frames either side, M = 15; 3 rounds of 2 iterations keep the simulator quick.
SMALL = UNLCConfig(temporal_radius=2, neighbours_per_frame=3, voting_iterations=6,
                   voting_rounds=3)
# Energy fraction above the threshold, so low-energy removal labels and removes blobs.
ACTING = SMALL.replace(low_energy_fraction=0.9)
# Another threshold, and small blobs kept down to 0.3 x the largest.
LOWER = SMALL.replace(foreground_threshold=0.5, low_energy_fraction=0.8,
                      relative_blob_size=0.3)


def random_shot(seed: int, n: int = 3, h: int = 16, w: int = 20):
    """Labels, offsets, the CPU's transition matrix and smooth initial votes."""
    rng = np.random.default_rng(seed)
    labels, offsets = random_labels(rng, n, h, w)
    T = transition_matrix(rng.random((offsets[-1], 6)), offsets, SMALL)
    saliency = ndimage.gaussian_filter(rng.random((n, h, w)), (0, 3, 3))
    saliency = ((saliency - saliency.min()) / np.ptp(saliency)) ** 3
    return labels, offsets, T, superpixel_means(saliency, labels, offsets)


def assert_same_masks(votes, T, labels, offsets, config) -> np.ndarray:
    fast = gpu.consensus_voting(votes, gpu_graph.rows_from_csr(T), labels, offsets, config)
    cpu = consensus_voting(votes, T, labels, offsets, config)
    fast = fast.copy_to_host()
    assert fast.dtype == np.float32 and fast.shape == labels.shape
    np.testing.assert_array_equal(fast, cpu)
    return fast


@pytest.mark.parametrize("config", [SMALL, ACTING, LOWER],
                         ids=["reference", "low-energy-acting", "lower-threshold"])
def test_consensus_voting_matches_cpu(config):
    labels, offsets, T, votes = random_shot(5)  # a seed where both blob removals act
    masks = assert_same_masks(votes, T, labels, offsets, config)
    threshold = config.foreground_threshold
    assert 0.0 <= masks.min() and masks.max() <= 1.0 and np.any(masks > threshold)
    # Small-blob removal acted: some pixels sit just under the threshold.
    assert np.any(masks == np.float32(threshold - config.small_blob_margin))


def test_low_energy_removal_changes_the_masks():
    """ACTING differs from SMALL only in low-energy removal, which must then act."""
    labels, offsets, T, votes = random_shot(5)
    rows = gpu_graph.rows_from_csr(T)
    plain, acting = (gpu.consensus_voting(votes, rows, labels, offsets, c).copy_to_host()
                     for c in (SMALL, ACTING))
    assert np.any(plain != acting)


def test_reference_schedule_matches_cpu():
    """The reference's 5 rounds of 10 iterations."""
    labels, offsets, T, votes = random_shot(10)
    assert_same_masks(votes, T, labels, offsets,
                      SMALL.replace(voting_iterations=50, voting_rounds=5))


def test_real_shot_matches_cpu():
    """Real labels, saliency and descriptors (:func:`tiny_real_shot`): the CPU's graph fed
    to both backends, then the GPU's own graph fed to both."""
    shot = tiny_real_shot()
    labels, offsets = shot["labels"], shot["offsets"]
    votes, _ = superpixel_saliency(shot["saliency"], labels, offsets)
    config = SMALL.replace(temporal_radius=1, neighbours_per_frame=2)
    T = transition_matrix(shot["descriptors"], offsets, config)
    for c in (config, config.replace(low_energy_fraction=0.9)):
        masks = assert_same_masks(votes, T, labels, offsets, c)
        assert np.any(masks > c.foreground_threshold)
    rows = gpu_graph.transition(shot["descriptors"], offsets, config)
    fast = gpu.consensus_voting(votes, rows, labels, offsets, config)
    cpu = consensus_voting(votes, gpu_graph.to_csr(rows), labels, offsets, config)
    np.testing.assert_array_equal(fast.copy_to_host(), cpu)


def test_components_match_ndimage():
    """One superpixel per pixel makes the painted votes any mask: random blobs and a
    serpentine that takes many merges, against scipy's 4-connected labelling."""
    rng = np.random.default_rng(6)
    n, h, w = 3, 12, 15
    masks = ndimage.gaussian_filter(rng.random((n, h, w)), (0, 1, 1)) > 0.5
    masks[2] = False
    masks[2, ::2, 1:-1] = True  # rows joined at alternating ends
    masks[2, 1::4, -2] = True
    masks[2, 3::4, 1] = True
    labels = np.broadcast_to(np.arange(h * w, dtype=np.int32).reshape(h, w), (n, h, w))
    offsets = np.arange(n + 1, dtype=np.int64) * h * w
    roots, sizes = gpu.components(masks.ravel().astype(np.float64), labels, offsets, 0.5)
    roots, sizes = roots.copy_to_host(), sizes.copy_to_host()
    expected = np.full((n, h, w), -1)
    expected_sizes = np.zeros(n * h * w, np.int64)
    for f in range(n):
        components, count = ndimage.label(masks[f])
        for c in range(1, count + 1):
            flat = np.flatnonzero(components.ravel() == c) + f * h * w
            expected.reshape(n, -1)[f, flat - f * h * w] = flat.min()
            expected_sizes[flat.min()] = flat.size
    assert ndimage.label(masks[2])[1] == 1 and np.count_nonzero(masks[2]) > 60
    np.testing.assert_array_equal(roots, expected)
    np.testing.assert_array_equal(sizes, expected_sizes)


def test_zero_votes_stay_zero_and_zero_frames_are_left_alone():
    labels, offsets, T, votes = random_shot(7)
    assert_same_masks(np.zeros(offsets[-1]), T, labels, offsets, SMALL)
    out = gpu.consensus_voting(np.zeros(offsets[-1]), gpu_graph.rows_from_csr(T), labels,
                               offsets, SMALL).copy_to_host()
    assert np.all(out == 0.0)
    # A frame without any vote and no edge to the others stays zero.
    T = T.tolil()
    frame1 = slice(offsets[1], offsets[2])
    T[frame1, :] = 0
    T[:, frame1] = 0
    T[frame1, frame1] = np.eye(offsets[2] - offsets[1])
    votes[frame1] = 0.0
    masks = assert_same_masks(votes, T.tocsr(), labels, offsets, SMALL)
    assert np.all(masks[1] == 0.0) and masks[0].max() > 0.0


def test_tiny_negative_votes_read_as_zero():
    labels, offsets, T, votes = random_shot(8)
    votes[0] = -1e-12
    assert_same_masks(votes, T, labels, offsets, SMALL)


def test_bad_inputs():
    labels, offsets, T, votes = random_shot(9)
    rows = gpu_graph.rows_from_csr(T)

    def vote(v=votes, idx=rows.indices, labels=labels, offsets=offsets):
        return gpu.consensus_voting(v, rows._replace(indices=idx), labels, offsets, SMALL)

    bad = votes.copy()
    bad[1] = -0.1
    with pytest.raises(ValueError, match="finite and >= 0"):
        vote(bad)
    bad[1] = np.nan
    with pytest.raises(ValueError, match="finite and >= 0"):
        vote(bad)
    with pytest.raises(ValueError, match="votes must have shape"):
        vote(votes[:-1])
    with pytest.raises(ValueError, match="indices and weights must be"):
        vote(idx=rows.indices.copy_to_host()[:-1])
    with pytest.raises(ValueError, match=r"must lie in 0\.\."):
        vote(labels=labels + 1)


def test_kernels_compile_for_a_gpu_without_fused_sums():
    """Every kernel types and compiles for sm_90, and no product is fused into a sum: the
    bit-for-bit agreement holds on a GPU too."""
    f8, i8, i4 = "float64", "int64", "int32"
    pixels = [i4, [18]]
    frame = [[i4, [2, 3, 3]], [i8, [3]]]
    fused = compile_for_gpu("fastunlc._kernels.cuda.voting", {
        "_clip_votes": [[f8, [4]], "float", [f8, [4]], [i4, [1]]],
        "_propagate": [[i8, [4, 3]], [f8, [4, 3]], [f8, [4]], [f8, [2]], [i4, [4]], [f8, [4]],
                       [f8, [2]]],
        "_normalise": [[f8, [4]], [f8, [2]], [i4, [4]], [f8, [4]]],
        "_foreground": [[f8, [4]], *frame, "float", pixels, pixels, [f8, [18]]],
        "_merge": [pixels, "int", "int"],
        "_flatten": [pixels, [f8, [4]], *frame, pixels, [f8, [18]]],
        "_round_means": [[f8, [4]], *frame, [i4, [4]], [i4, [4, 4]], [i8, [4]], pixels,
                         pixels, [f8, [18]], "float", "float", [f8, [4]]],
        "_largest": [pixels, pixels, "int", "int", [i4, [2]]],
        "_paint": [[f8, [4]], *frame, pixels, pixels, [i4, [2]], "float", "float",
                   ["float32", [2, 3, 3]]],
    })
    assert not any(fused.values()), fused
