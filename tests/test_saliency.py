"""Motion saliency: the dominant-motion test, pair maps, frame means, upsampling."""

from __future__ import annotations

import numpy as np
import pytest

from fastunlc.config import UNLCConfig
from fastunlc.reference import saliency as oracle
from fastunlc.saliency import motion_saliency, superpixel_saliency


def _flows(rng, n_pairs, size=100):
    """A mix of the three regimes: static, translating, no dominant motion."""
    flows = np.zeros((n_pairs, size, size, 2), np.float32)
    for p in range(n_pairs):
        regime = p % 3
        if regime == 0:  # static camera: tiny noise, a moving block
            flows[p] = rng.normal(0, 0.2, (size, size, 2))
            flows[p, 30:50, 40:60, 0] += 3.0
        elif regime == 1:  # camera pans right/down, object moves the other way
            angle = rng.uniform(-np.pi, np.pi)
            flows[p, ..., 0] = 4 * np.cos(angle)
            flows[p, ..., 1] = 4 * np.sin(angle)
            flows[p] += rng.normal(0, 0.3, (size, size, 2))
            flows[p, 60:80, 20:45] *= -1
        else:  # chaos
            flows[p] = rng.normal(0, 3.0, (size, size, 2))
    return flows


def _pairs(n, radius=3):
    return np.array([(i, i + j) for i in range(n) for j in range(-radius, radius + 1)
                     if j and 0 <= i + j < n], dtype=np.int32)


def test_motion_saliency_matches_oracle_on_random_flows():
    rng = np.random.default_rng(0)
    n = 8
    pairs = _pairs(n)
    flows = _flows(rng, len(pairs))
    fast = motion_saliency(flows, pairs, n)
    sal, dominant, kinds = oracle.motion_saliency(flows, pairs, n)
    names = {0: "none", 1: "static", 2: "translating"}
    assert [names[k] for k in fast.pair_kinds] == kinds
    assert set(kinds) == {"none", "static", "translating"}
    np.testing.assert_array_equal(fast.dominant, dominant)
    np.testing.assert_allclose(fast.saliency, sal, rtol=1e-12, atol=1e-12)


def test_non_default_bins_and_thresholds_match_oracle():
    rng = np.random.default_rng(1)
    config = UNLCConfig(direction_bins=10, dominant_direction=0.5, static_magnitude=2.0,
                        saliency_patch=3)
    pairs = _pairs(5, 2)
    flows = _flows(rng, len(pairs), size=40)
    fast = motion_saliency(flows, pairs, 5, config)
    sal, dominant, _ = oracle.motion_saliency(flows, pairs, 5, config)
    np.testing.assert_allclose(fast.saliency, sal, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(fast.dominant, dominant)


def test_moving_block_on_static_camera_is_salient():
    flows = np.zeros((2, 100, 100, 2), np.float32)
    flows[:, 30:50, 40:60, 0] = 3.0
    pairs = np.array([[0, 1], [1, 0]], np.int32)
    result = motion_saliency(flows, pairs, 2)
    assert list(result.pair_kinds) == [1, 1]
    s = result.saliency[0]
    assert s[35:45, 45:55].min() == pytest.approx(9.0)  # m² inside, far from the block edge
    assert s[:20].max() == 0.0
    assert result.dominant_fraction == 1.0


def test_object_against_panning_camera_is_salient():
    flows = np.zeros((1, 100, 100, 2), np.float32)
    flows[..., 0] = 5.0  # camera pans: everything moves right
    flows[0, 40:60, 40:60, 0] = -5.0  # the object moves left
    result = motion_saliency(flows, np.array([[0, 1]]), 2)
    assert result.pair_kinds[0] == 2
    # The dominant bin is [0, pi/10): its centre pi/20 is the camera's direction.
    assert result.saliency[0, 50, 50] == pytest.approx((np.pi - np.pi / 20) ** 2, rel=1e-6)
    assert result.saliency[0, 10, 10] == pytest.approx((np.pi / 20) ** 2, rel=1e-6)
    assert list(result.dominant) == [True, False]


def test_no_dominant_motion_contributes_nothing():
    rng = np.random.default_rng(3)
    flows = rng.normal(0, 5, (2, 50, 50, 2)).astype(np.float32)
    result = motion_saliency(flows, np.array([[0, 1], [1, 0]]), 2)
    assert list(result.pair_kinds) == [0, 0]
    assert not result.saliency.any() and not result.dominant.any()


def _pixel_labels(n, h, w):
    """Every pixel its own superpixel: the votes are then the upsampled shot itself."""
    labels = np.broadcast_to(np.arange(h * w, dtype=np.int32).reshape(h, w), (n, h, w))
    return np.ascontiguousarray(labels), np.arange(n + 1) * (h * w)


def test_superpixel_saliency_normalises_the_shot_and_zeroes_the_border():
    rng = np.random.default_rng(4)
    small = rng.random((3, 100, 100)) * 5
    small[1] *= 0.1  # a weak frame stays weak: one maximum for the whole shot
    labels, offsets = _pixel_labels(3, 487, 650)
    votes, peak = superpixel_saliency(small, labels, offsets)
    ours = votes.reshape(3, 487, 650)
    np.testing.assert_allclose(ours, oracle.upsample_saliency(small, (487, 650)), rtol=1e-12,
                               atol=1e-12)
    assert ours.max() == pytest.approx(1.0)
    assert ours[1].max() < 0.2
    b = int(487 * 0.125)
    assert not ours[:, :b].any() and not ours[:, :, -b:].any()
    assert peak > 4.0  # the maximum before normalisation, in the input's units


def test_superpixel_saliency_all_zero_stays_zero():
    labels, offsets = _pixel_labels(2, 64, 80)
    votes, peak = superpixel_saliency(np.zeros((2, 100, 100)), labels, offsets)
    assert peak == 0.0 and not votes.any() and np.isfinite(votes).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(P, h, w, 2\)"):
        motion_saliency(np.zeros((2, 10, 10, 3), np.float32), np.zeros((2, 2), int), 2)


def test_motion_saliency_matches_oracle_on_real_flows(opencv_data):
    from fastunlc.config import REFERENCE
    from fastunlc.flow import flow_pairs, optical_flow, resize_for_flow

    from .helpers import read_video_frames

    frames = resize_for_flow(read_video_frames(opencv_data / "vtest.avi", 0, 8), 100)
    pairs = flow_pairs(len(frames), 3)
    flows = optical_flow(frames, pairs, REFERENCE.replace(flow="dis"))
    fast = motion_saliency(flows, pairs, len(frames))
    sal, dominant, kinds = oracle.motion_saliency(flows, pairs, len(frames))
    assert "static" in kinds  # a fixed camera: the test exercises the real regime
    np.testing.assert_array_equal(fast.dominant, dominant)
    np.testing.assert_allclose(fast.saliency, sal, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("size", "small"), [((487, 650), (100, 100)), ((97, 61), (100, 100)),
                                             ((240, 320), (37, 53))])
def test_superpixel_saliency_matches_oracle_upsampling(size, small):
    """The compiled kernel against the oracle's ``ndimage.zoom`` path, upsampling and
    downsampling, non-square inputs, border zeroed, at 1e-12."""
    from fastunlc.reference.voting import superpixel_means

    rng = np.random.default_rng(sum(size))
    h, w = size
    saliency = rng.random((4, *small)) ** 3 * 2.5
    blocks = (np.arange(h)[:, None] // 13) * 1000 + np.arange(w)[None, :] // 11
    labels, offsets = [], [0]
    for _ in range(4):
        _, frame_labels = np.unique(np.roll(blocks, rng.integers(0, 9)), return_inverse=True)
        labels.append(frame_labels.reshape(h, w).astype(np.int32))
        offsets.append(offsets[-1] + int(frame_labels.max()) + 1)
    labels, offsets = np.stack(labels), np.array(offsets)
    votes, peak = superpixel_saliency(saliency, labels, offsets)
    full = oracle.upsample_saliency(saliency, size)
    raw_peak = max(float(np.max(ndimage_zoom(f, size))) for f in saliency)
    np.testing.assert_allclose(votes, superpixel_means(full, labels, offsets),
                               rtol=1e-12, atol=1e-15)
    assert votes.max() > 0.1 and votes.min() == 0.0  # the zeroed border is in the votes
    assert peak == pytest.approx(raw_peak, rel=1e-12)


def ndimage_zoom(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The oracle's upsampling of one frame with the spec's border zeroed, unnormalised."""
    from scipy import ndimage

    h, w = size
    out = ndimage.zoom(frame, (h / frame.shape[0], w / frame.shape[1]), order=1)[:h, :w]
    b = int(min(h, w) * 0.125)
    out[:b], out[h - b:], out[:, :b], out[:, w - b:] = 0, 0, 0, 0
    return out


def test_superpixel_saliency_rejects_labels_outside_or_missing():
    small = np.ones((2, 10, 10))
    labels = np.zeros((2, 40, 40), np.int32)
    labels[:, 20:] = 1
    assert superpixel_saliency(small, labels, np.array([0, 2, 4]))[0].shape == (4,)
    bad = labels.copy()
    bad[1, 0, 0] = 2  # outside frame 1's range
    with pytest.raises(ValueError, match="frame 1 must be contiguous"):
        superpixel_saliency(small, bad, np.array([0, 2, 4]))
    with pytest.raises(ValueError, match=r"frame 0 must be contiguous 0\.\.2"):
        superpixel_saliency(small, labels, np.array([0, 3, 5]))  # label 2 has no pixel
