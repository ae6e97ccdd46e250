"""Shot detection (KTS) and shot subsampling: known answers, bad input, and agreement
with the dense oracle in ``fastunlc.reference.shots`` (exact: binning and change
points are discrete)."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from skimage.color import rgb2lab

from fastunlc import shots
from fastunlc.config import UNLCConfig
from fastunlc.errors import InputError
from fastunlc.reference import shots as ref

from .helpers import read_video_frames

CONFIG = UNLCConfig()


@pytest.fixture(scope="module")
def vtest_frames(opencv_data: Path) -> np.ndarray:
    return read_video_frames(opencv_data / "vtest.avi", 0, 200, size=(144, 192))


@pytest.fixture(scope="module")
def vtest_features(vtest_frames: np.ndarray) -> np.ndarray:
    return shots.shot_features(vtest_frames)


def planted(n: int, cuts: list[int], d: int, noise: float, seed: int) -> np.ndarray:
    """Piecewise-constant random means (a new one at each cut) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((len(cuts) + 1, d))
    segment = np.searchsorted(cuts, np.arange(n), side="right")
    return means[segment] + noise * rng.standard_normal((n, d))


# -- shot_features -------------------------------------------------------------------


def test_features_shape_and_normalisation() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 17, 23, 3), dtype=np.uint8)
    features = shots.shot_features(frames, bins=7)
    assert features.shape == (3, 42)
    assert features.dtype == np.float64
    np.testing.assert_allclose(features.reshape(3, 6, 7).sum(axis=2), 1.0, rtol=1e-12)


def test_features_known_answer_solid_colours() -> None:
    frames = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    frames[0] = (255, 0, 128)
    frames[1] = 255
    h = shots.shot_features(frames, bins=40).reshape(2, 6, 40)
    assert h[0, 0, 39] == 1.0 and h[0, 1, 0] == 1.0 and h[0, 2, 20] == 1.0
    assert h[0, 0].sum() == h[0, 1].sum() == h[0, 2].sum() == 1.0
    assert h[1, 0, 39] == h[1, 1, 39] == h[1, 2, 39] == 1.0
    # Pure white's L is 100 or, with some scikit-image versions, 100.00000000000001:
    # then np.histogram drops it and the L histogram stays all zero.
    white_l = rgb2lab(frames[1])[0, 0, 0]
    expected = np.zeros(40)
    if white_l <= 100.0:
        expected[39] = 1.0
    np.testing.assert_array_equal(h[1, 3], expected)


def test_features_equal_oracle_on_random_frames() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(5, 31, 29, 3), dtype=np.uint8)
    frames[0, :8] = 255
    frames[1, :8] = 0
    frames[2] = 255
    frames[3, ::2] = (0, 0, 255)
    for bins in (40, 20, 3):
        np.testing.assert_array_equal(
            shots.shot_features(frames, bins), ref.shot_features(frames, bins)
        )


def test_features_equal_oracle_on_every_colour() -> None:
    """All 2^24 colours, shuffled into 4,096 frames of 64 x 64: a colour whose CIELAB
    fell in another bin than skimage's would change its frame's histograms."""
    codes = np.random.default_rng(0).permutation(1 << 24).astype(np.uint32)
    frames = np.stack([codes >> 16, codes >> 8, codes], axis=-1).astype(np.uint8)
    frames = frames.reshape(4096, 64, 64, 3)
    np.testing.assert_array_equal(shots.shot_features(frames), ref.shot_features(frames))


def test_features_equal_oracle_on_real_frames(opencv_data: Path) -> None:
    frames = np.concatenate([
        read_video_frames(opencv_data / "vtest.avi", 0, 2)[:, :528, :720],
        read_video_frames(opencv_data / "Megamind.avi", 0, 2, size=(528, 720)),
    ])
    np.testing.assert_array_equal(shots.shot_features(frames), ref.shot_features(frames))


def test_features_stream_in_chunks(vtest_frames: np.ndarray, vtest_features: np.ndarray) -> None:
    chunks = [shots.shot_features(vtest_frames[s : s + 64]) for s in range(0, 200, 64)]
    np.testing.assert_array_equal(np.concatenate(chunks), vtest_features)
    assert shots.shot_features(vtest_frames[:0]).shape == (0, 240)


@pytest.mark.parametrize(
    ("frames", "bins", "match"),
    [
        (np.zeros((2, 4, 4, 3)), 40, "uint8"),
        (np.zeros((4, 4, 3), dtype=np.uint8), 40, r"\(n, h, w, 3\)"),
        (np.zeros((2, 4, 4, 4), dtype=np.uint8), 40, r"\(n, h, w, 3\)"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), 0, "positive integer"),
    ],
)
def test_features_bad_input(frames: np.ndarray, bins: int, match: str) -> None:
    # A broken array contract is the caller's bug, not the video's fault: no InputError.
    with pytest.raises(ValueError, match=match) as err:
        shots.shot_features(frames, bins)
    assert not isinstance(err.value, InputError)


def test_non_arrays_are_type_errors() -> None:
    with pytest.raises(TypeError, match="frames must be a uint8 ndarray, got list"):
        shots.shot_features([[0]])
    with pytest.raises(TypeError, match="features must be a real ndarray, got list"):
        shots.kts_change_points([[0.0]], 4, 0.6)


# -- kts_change_points ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "cuts", "d", "seed"),
    [(200, [40, 90, 150], 32, 0), (400, [100, 101, 300, 350], 240, 1), (150, [70], 8, 2)],
)
def test_kts_finds_planted_change_points(n: int, cuts: list[int], d: int, seed: int) -> None:
    x = planted(n, cuts, d, noise=0.1, seed=seed)
    found = shots.kts_change_points(x, 4, 0.6)
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, cuts)
    np.testing.assert_array_equal(found, ref.kts_change_points(x, 4, 0.6))


@pytest.mark.parametrize("seed", range(6))
def test_kts_equals_oracle_on_noisy_features(seed: int) -> None:
    # Noise as large as the jumps: the chosen count and positions are not obvious.
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(30, 300))
    cuts = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(1, 6)), replace=False))
    x = planted(n, cuts.tolist(), d=int(rng.integers(2, 40)), noise=1.0, seed=seed)
    for m, vmax in ((4, 0.6), (8, 0.1), (2, 3.0)):
        np.testing.assert_array_equal(
            shots.kts_change_points(x, m, vmax), ref.kts_change_points(x, m, vmax)
        )


def test_kts_equals_oracle_on_real_video(vtest_features: np.ndarray) -> None:
    for m, vmax in ((4, 0.6), (8, 0.05), (8, 0.005)):
        fast = shots.kts_change_points(vtest_features, m, vmax)
        np.testing.assert_array_equal(fast, ref.kts_change_points(vtest_features, m, vmax))
    # One static street camera: no cut at the reference's vmax, some at a tiny one.
    assert shots.kts_change_points(vtest_features, 4, 0.6).size == 0
    assert len(fast) > 0


def test_kts_finds_the_cut_between_two_real_clips(
    opencv_data: Path, vtest_features: np.ndarray
) -> None:
    # Megamind's first frame is a cut of its own (KTS separates it), so start at 1.
    megamind = shots.shot_features(read_video_frames(opencv_data / "Megamind.avi", 0, 70,
                                                         size=(144, 192))[1:])
    for first, second in ((vtest_features[:90], megamind), (megamind, vtest_features[:90])):
        features = np.concatenate([first, second])
        fast = shots.kts_change_points(features, 4, 0.6)
        np.testing.assert_array_equal(fast, [len(first)])
        np.testing.assert_array_equal(fast, ref.kts_change_points(features, 4, 0.6))
        assert shots.detect_shots(features, CONFIG) == [(0, len(first)), (len(first), 159)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_kts_few_frames(n: int) -> None:
    x = np.random.default_rng(n).standard_normal((n, 5)) * 10
    for vmax in (0.6, 0.0):
        fast = shots.kts_change_points(x, 4, vmax)
        np.testing.assert_array_equal(fast, ref.kts_change_points(x, 4, vmax))
        assert len(fast) <= min(4, n - 1)
    if n > 1:
        # Without a penalty every extra cut lowers the scatter: all n - 1 or 4 are used.
        assert len(shots.kts_change_points(x, 4, 0.0)) == min(4, n - 1)


def test_kts_identical_frames_and_zero_change_points() -> None:
    x = np.tile(np.random.default_rng(0).random(240), (500, 1))
    assert shots.kts_change_points(x, 4, 0.6).size == 0
    assert ref.kts_change_points(x, 4, 0.6).size == 0
    assert shots.kts_change_points(planted(100, [50], 4, 0.1, 0), 0, 0.6).size == 0
    assert shots.kts_change_points(np.zeros((300, 3)), 4, 0.6).size == 0


def test_kts_does_not_allocate_n_by_n() -> None:
    n = 3000
    x = planted(n, [700, 1800, 2500], d=64, noise=0.1, seed=3)
    shots.kts_change_points(x[:10], 4, 0.6)  # compile / load the kernel outside the trace
    tracemalloc.start()
    try:
        found = shots.kts_change_points(x, 4, 0.6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(found, [700, 1800, 2500])
    assert peak < n * n * 8 / 4, f"peak {peak / 1e6:.1f} MB is N×N-sized"


@pytest.mark.parametrize(
    ("features", "m", "vmax", "match"),
    [
        (np.zeros(10), 4, 0.6, r"\(N, d\)"),
        (np.zeros((0, 3)), 4, 0.6, "N >= 1"),
        (np.array([[0.0, np.nan]]), 4, 0.6, "finite"),
        (np.array([["a"]]), 4, 0.6, "real ndarray"),
        (np.zeros((5, 3)), -1, 0.6, "max_change_points"),
        (np.zeros((5, 3)), 4, -0.1, "vmax"),
        (np.zeros((5, 3)), 4, float("inf"), "vmax"),
    ],
)
def test_kts_bad_input(features: np.ndarray, m: int, vmax: float, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        shots.kts_change_points(features, m, vmax)
    assert not isinstance(err.value, InputError)


# -- detect_shots and shot_frames ----------------------------------------------------------


def test_detect_shots_covers_the_video() -> None:
    x = planted(300, [60, 200], d=16, noise=0.1, seed=5)
    assert shots.detect_shots(x, CONFIG) == [(0, 60), (60, 200), (200, 300)]
    assert shots.detect_shots(x, CONFIG) == ref.detect_shots(x, CONFIG)
    assert shots.detect_shots(x, CONFIG.replace(max_shots=1)) == [(0, 300)]
    assert shots.detect_shots(x[:1], CONFIG) == [(0, 1)]


def test_detect_shots_on_real_video(vtest_features: np.ndarray) -> None:
    for config in (CONFIG, CONFIG.replace(kts_vmax=0.005, max_shots=9)):
        shot_list = shots.detect_shots(vtest_features, config)
        assert shot_list[0][0] == 0 and shot_list[-1][1] == len(vtest_features)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(shot_list))
        assert all(s < e for s, e in shot_list)
        assert len(shot_list) <= config.max_shots


@pytest.mark.parametrize(
    ("length", "step", "count"),
    [(9, None, None), (10, 1, 10), (110, 1, 110), (111, 2, 56), (250, 3, 84), (1000, 10, 100)],
)
def test_shot_frames(length: int, step: int | None, count: int | None) -> None:
    start = 37
    frames = shots.shot_frames(start, start + length, CONFIG)
    expected = ref.shot_frames(start, start + length, CONFIG)
    if step is None:
        assert frames is None and expected is None
        return
    assert frames.dtype == np.int64 and len(frames) == count
    np.testing.assert_array_equal(frames, np.arange(start, start + length, step))
    np.testing.assert_array_equal(frames, expected)
    if length > CONFIG.max_shot:
        assert CONFIG.max_shot // 2 <= len(frames) <= CONFIG.max_shot


def test_shot_frames_bad_range() -> None:
    for start, end in ((10, 5), (-1, 5)):
        with pytest.raises(ValueError, match="start <= end") as err:
            shots.shot_frames(start, end, CONFIG)
        assert not isinstance(err.value, InputError)
