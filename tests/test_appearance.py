"""Tests of the manifold-ranking appearance saliency (the motion fallback)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from skimage.segmentation import slic

from fastunlc.appearance import _edges, appearance_saliency
from fastunlc.synthetic import make_clip

from .helpers import OPENCV_DATA


@pytest.fixture(scope="module")
def fruits() -> np.ndarray:
    path = OPENCV_DATA / "fruits.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found (install opencv-doc for the real-image tests)")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (100, 100), interpolation=cv2.INTER_AREA)


def centred_object(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 100 x 100 frame: smooth textured background, an irregular blob of another colour
    in the centre, noise. Returns the frame (uint8) and the object mask (bool)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:100, :100] - 49.5
    theta = np.arctan2(yy, xx)
    radius = 17 * (1 + 0.2 * np.cos(3 * theta + rng.uniform(0, 6)) + 0.1 * np.sin(5 * theta))
    mask = np.hypot(yy, xx) <= radius
    texture = cv2.GaussianBlur(rng.normal(0, 1, (100, 100, 3)), (0, 0), 3)
    texture /= texture.std()
    background = np.array([70, 110, 60]) + 18 * texture
    foreground = np.array([200, 60, 150]) + 12 * texture[::-1]
    frame = np.where(mask[..., None], foreground, background) + rng.normal(0, 3, (100, 100, 3))
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8), mask


@pytest.mark.parametrize(("seed", "blur"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0)])
def test_range_shape_dtype_on_random_images(seed, blur):
    noise = np.random.default_rng(seed).normal(0, 1, (100, 100, 3))
    noise = cv2.GaussianBlur(noise, (0, 0), blur)
    frame = np.clip(128 + 60 * noise / noise.std(), 0, 255).astype(np.uint8)
    saliency = appearance_saliency(frame)
    assert saliency.shape == (100, 100) and saliency.dtype == np.float64
    assert np.isfinite(saliency).all()
    assert saliency.min() >= 0.0 and saliency.max() == 1.0


@pytest.mark.parametrize("value", [0, 128, 255])
def test_constant_image_gives_zeros_without_warnings(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saliency = appearance_saliency(np.full((100, 100, 3), value, np.uint8))
    assert saliency.dtype == np.float64
    np.testing.assert_array_equal(saliency, np.zeros((100, 100)))


@pytest.mark.parametrize("seed", range(4))
def test_centred_object_is_salient(seed):
    """High = salient: the reference's fallback had this backwards."""
    frame, mask = centred_object(seed)
    saliency = appearance_saliency(frame)
    inside, outside = saliency[mask].mean(), saliency[~mask].mean()
    # Measured over seeds 0-7: inside 0.97-0.998, outside 0.001-0.006 (margin >= 0.96).
    assert inside - outside > 0.6, (inside, outside)


@pytest.mark.parametrize("seed", range(3))
def test_synthetic_clip_object_is_salient_at_flow_size(seed):
    """What the pipeline's fallback sees: a synthetic frame squeezed to 100 x 100."""
    clip = make_clip(1, camera="static", seed=seed)
    frame = cv2.resize(clip.frames[0], (100, 100), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(clip.masks[0].astype(np.uint8), (100, 100),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    saliency = appearance_saliency(frame)
    # Measured over seeds 0-9: margin 0.86-0.97.
    assert saliency[mask].mean() - saliency[~mask].mean() > 0.6


def test_distinct_region_along_a_side_is_background():
    """The boundary prior: a region filling one side is background, however distinct."""
    frame, mask = centred_object(0)
    frame[:, :25] = (230, 220, 40)
    saliency = appearance_saliency(frame)
    # Measured: 0.0002 on the strip, 0.996 on the object.
    assert saliency[:, :25].mean() < 0.05 and saliency[mask].mean() > 0.9


def test_white_noise_has_no_superpixels_to_rank():
    """SLIC merges white noise into one superpixel: nothing stands out, all zeros."""
    frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    np.testing.assert_array_equal(appearance_saliency(frame), np.zeros((100, 100)))


def test_real_photo(fruits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saliency = appearance_saliency(fruits)
    assert saliency.shape == (100, 100) and saliency.dtype == np.float64
    assert np.isfinite(saliency).all()
    assert saliency.min() == 0.0 and saliency.max() == 1.0
    np.testing.assert_array_equal(saliency, appearance_saliency(fruits))  # deterministic


def test_non_square_frame(fruits):
    saliency = appearance_saliency(np.ascontiguousarray(fruits[:, :60]))
    assert saliency.shape == (100, 60)
    assert 0.0 <= saliency.min() and saliency.max() == 1.0


def _edges_by_loops(labels: np.ndarray, n: int) -> np.ndarray:
    """Plain-Python graph from the paper's description, to check ``_edges``."""
    h, w = labels.shape
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for y in range(h):
        for x in range(w):
            for yy, xx in ((y + 1, x), (y, x + 1)):
                if yy < h and xx < w and labels[y, x] != labels[yy, xx]:
                    neighbours[labels[y, x]].add(int(labels[yy, xx]))
                    neighbours[labels[yy, xx]].add(int(labels[y, x]))
    border = set(labels[0]) | set(labels[-1]) | set(labels[:, 0]) | set(labels[:, -1])
    edges = np.zeros((n, n), bool)
    for i in range(n):
        linked = set(neighbours[i])
        for j in neighbours[i]:
            linked |= neighbours[j]
        if i in border:
            linked |= border
        linked.discard(i)
        edges[i, sorted(linked)] = True
    return edges


def test_graph_matches_the_papers_description(fruits):
    labels = slic(fruits / 255.0, n_segments=200, compactness=10.0, start_label=0)
    n = int(labels.max()) + 1
    np.testing.assert_array_equal(_edges(labels, n), _edges_by_loops(labels, n))


@pytest.mark.parametrize(("frame", "message"), [
    (np.zeros((100, 100, 3), np.float64), "uint8"),
    (np.zeros((100, 100), np.uint8), r"\(h, w, 3\)"),
    (np.zeros((100, 100, 4), np.uint8), r"\(h, w, 3\)"),
    (np.zeros((4, 100, 3), np.uint8), "at least 8 x 8"),
])
def test_bad_frames_raise(frame, message):
    with pytest.raises(ValueError, match=message):
        appearance_saliency(frame)


def test_bad_parameters_raise():
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="alpha"):
        appearance_saliency(frame, alpha=1.0)
    with pytest.raises(ValueError, match="sigma2"):
        appearance_saliency(frame, sigma2=0.0)
