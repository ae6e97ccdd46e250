"""CUDA motion saliency and initial votes against the CPU backend.

Without a GPU these run on Numba's CUDA simulator, which executes the kernels as
Python: the same IEEE float64 operations in the same order as the CPU kernels, so the
agreement asserted here is bit for bit. On a GPU only CUDA's ``atan2`` (within 2 ulp,
the CPU's within 1) can move a translating pair's deviation, by about 1e-15 relative
(see :mod:`fastunlc._kernels.cuda.saliency`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache

import cv2
import numpy as np
import pytest

from fastunlc import descriptors, flow, superpixels
from fastunlc._kernels.cuda import saliency as gpu
from fastunlc.config import REFERENCE, UNLCConfig
from fastunlc.saliency import motion_saliency, superpixel_saliency

from .helpers import VTEST, read_video_frames

TINY = UNLCConfig(n_segments=6, flow="dis")
"""SLIC with about 6 superpixels per frame; DIS flow (needs frames of 12 px or more)."""

_PTX_SCRIPT = """
import json, re, sys
import numpy as np
from numba import cuda, typeof, types
module = __import__(sys.argv[1], fromlist=["_"])
scalars = {"float": types.float64, "int": types.int64, "bool": types.boolean}
fused = {}
for name, args in json.loads(sys.argv[2]).items():
    kernel = eval(name, vars(module))
    signature = tuple(scalars[a] if isinstance(a, str) else typeof(np.zeros(a[1], a[0]))
                      for a in args)
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(9, 0))
    fused[name] = len(re.findall(r"fma\\.rn\\.f64", ptx))
print(json.dumps(fused))
"""


def compile_for_gpu(module: str, kernels: dict[str, list]) -> dict[str, int]:
    """Compile kernels of ``module`` to sm_90 PTX with NVVM, as on a GPU (the simulator
    never types them for the CUDA target); returns each kernel's count of float64
    fused multiply-adds. ``kernels`` maps a name (or factory call) to its arguments:
    ``(dtype, shape)`` for an array, "float" / "int" / "bool" for a scalar."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    proc = subprocess.run([sys.executable, "-c", _PTX_SCRIPT, module, json.dumps(kernels)],
                          capture_output=True, text=True, env=env, timeout=300)
    if "libNVVM cannot be found" in proc.stderr or "No module named 'numba.cuda'" in proc.stderr:
        pytest.skip("NVVM (numba-cuda's nvidia-nvvm) is not installed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@cache
def tiny_real_shot(size: tuple[int, int] = (16, 20), n_segments: int = 6
                   ) -> dict[str, np.ndarray]:
    """The CPU stages on 3 real frames: vtest.avi's street, cropped by a window that pans
    6 px per frame. Flow at 12 x 12 (DIS), labels and descriptors at ``size``, SLIC
    asked for ``n_segments`` superpixels.

    Keys: ``frames`` (3, h, w, 3) uint8, ``pairs`` (6, 2), ``flows`` (6, 12, 12, 2),
    ``saliency`` (3, 12, 12) float64 (the CPU's motion saliency), ``labels`` (3, h, w)
    int32, ``offsets`` (4,), ``descriptors`` (k, 176)."""
    if not VTEST.exists():
        pytest.skip("Debian's opencv-doc samples are not installed (apt-get install opencv-doc)")
    big = read_video_frames(VTEST, 0, 3, size=(120, 160))
    crops = np.stack([big[i, 20:84, 10 + 6 * i:90 + 6 * i] for i in range(3)])
    pairs = flow.flow_pairs(3, TINY.flow_radius)
    flows = flow.optical_flow(flow.resize_for_flow(crops, 12), pairs, TINY)
    frames = np.stack([cv2.resize(c, size[::-1], interpolation=cv2.INTER_AREA) for c in crops])
    config = TINY.replace(n_segments=n_segments)
    labels, counts = superpixels.slic_superpixels_batch(frames, config)
    features, offsets = descriptors.superpixel_descriptors_batch(frames, labels, counts, config)
    return {"frames": frames, "pairs": pairs, "flows": flows,
            "saliency": motion_saliency(flows, pairs, 3, TINY).saliency,
            "labels": labels.astype(np.int32), "offsets": offsets, "descriptors": features}


def random_flows(rng, n_pairs: int, h: int = 10, w: int = 10) -> np.ndarray:
    """Flow fields cycling through the three regimes: a static camera with a moving block,
    a panning camera with a block moving against it, and no dominant motion."""
    flows = np.zeros((n_pairs, h, w, 2), np.float32)
    for p in range(n_pairs):
        regime = p % 3
        if regime == 0:
            flows[p] = rng.normal(0, 0.2, (h, w, 2))
            flows[p, 2:5, 3:6, 0] += 3.0
        elif regime == 1:
            angle = rng.uniform(-np.pi, np.pi)
            flows[p, ..., 0] = 4 * np.cos(angle)
            flows[p, ..., 1] = 4 * np.sin(angle)
            flows[p] += rng.normal(0, 0.3, (h, w, 2))
            flows[p, 6:8, 2:4] *= -1
        else:
            flows[p] = rng.normal(0, 3.0, (h, w, 2))
    return flows


def random_labels(rng, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocky labels, contiguous per frame (merged cells make superpixels of odd shapes)."""
    frames = []
    for _ in range(n):
        coarse = rng.integers(0, 5, (4, 5))
        cells = coarse[np.arange(h) * 4 // h][:, np.arange(w) * 5 // w]
        frames.append(np.unique(cells, return_inverse=True)[1].reshape(h, w).astype(np.int32))
    counts = [f.max() + 1 for f in frames]
    return np.stack(frames), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def assert_same_motion(flows, pairs, n, config=REFERENCE):
    """Both backends' MotionSaliency, bit for bit; returns the CPU's pair kinds."""
    fast = gpu.motion_saliency(flows, pairs, n, config)
    cpu = motion_saliency(flows, pairs, n, config)
    np.testing.assert_array_equal(fast.pair_kinds, cpu.pair_kinds)
    np.testing.assert_array_equal(fast.dominant, cpu.dominant)
    assert fast.dominant_fraction == cpu.dominant_fraction
    np.testing.assert_array_equal(fast.saliency.copy_to_host(), cpu.saliency)
    assert fast.peak == cpu.saliency.max()  # the CPU pipeline's motionless test
    return cpu.pair_kinds


def test_motion_saliency_random_flows_match_cpu():
    pairs = flow.flow_pairs(3, 3)
    kinds = assert_same_motion(random_flows(np.random.default_rng(3), len(pairs)), pairs, 3)
    assert set(kinds) == {gpu.STATIC, gpu.TRANSLATING, gpu.NOT_DOMINANT}


def test_median_at_the_threshold_and_ties_match_cpu():
    """Magnitudes set exactly (u = m, v = 0, half the pixels rounded up at ``low``, the
    rest at ``high``) so that the median lands on, just under and just over 1 px, with
    an even and an odd pixel count and many equal values."""
    levels = ((0.5, 1.5), (0.5, 1.49), (1.0, 1.0), (0.999, 1.001), (0.0, 2.0))
    for h, w in ((4, 5), (3, 5)):  # 20 and 15 pixels
        n = h * w
        stack = np.zeros((len(levels), h, w, 2), np.float32)
        for p, (low, high) in enumerate(levels):
            m = np.where(np.arange(n) < (n + 1) // 2, low, high)
            np.random.default_rng(n + p).shuffle(m)
            stack[p, ..., 0] = m.reshape(h, w)
        pairs = np.stack([np.zeros(len(stack), np.int32), np.ones(len(stack), np.int32)], 1)
        kinds = assert_same_motion(stack, pairs, 2)
        # Even count: medians 1.0 (not < 1), 0.995, 1.0, 1.0, 1.0; odd: the low value.
        expected = [2, 1, 2, 2, 2] if n % 2 == 0 else [1, 1, 2, 1, 1]
        np.testing.assert_array_equal(kinds, expected)


def test_other_parameters_and_odd_sizes_match_cpu():
    config = UNLCConfig(direction_bins=10, dominant_direction=0.5, static_magnitude=2.0,
                        saliency_patch=3)
    pairs = flow.flow_pairs(3, 2)
    assert_same_motion(random_flows(np.random.default_rng(4), len(pairs), 7, 9), pairs, 3,
                       config)
    # A 1 x 1 patch leaves the deviation as it is (SciPy skips size-1 axes).
    assert_same_motion(random_flows(np.random.default_rng(5), len(pairs), 6, 5), pairs, 3,
                       UNLCConfig(saliency_patch=1))


def test_frames_without_pairs_stay_zero():
    pairs = np.array([[0, 1], [0, 2]], np.int32)  # frames 1 and 2 get no pair
    flows = random_flows(np.random.default_rng(6), 2)
    assert_same_motion(flows, pairs, 3)
    empty = gpu.motion_saliency(flows[:0], pairs[:0], 2)
    assert not empty.dominant.any() and empty.dominant_fraction == 0.0
    assert np.all(empty.saliency.copy_to_host() == 0.0) and empty.peak == 0.0


def test_motion_saliency_real_flows_match_cpu():
    shot = tiny_real_shot()
    kinds = assert_same_motion(shot["flows"], shot["pairs"], 3, TINY)
    assert {gpu.STATIC, gpu.TRANSLATING} <= set(kinds)


def assert_same_votes(saliency, labels, offsets, config=REFERENCE):
    votes, peak = gpu.superpixel_saliency(saliency, labels, offsets, config)
    cpu_votes, cpu_peak = superpixel_saliency(saliency, labels, offsets, config)
    assert peak == cpu_peak
    np.testing.assert_array_equal(votes.copy_to_host(), cpu_votes)
    return cpu_votes


def test_superpixel_saliency_random_matches_cpu():
    rng = np.random.default_rng(7)
    labels, offsets = random_labels(rng, 3, 16, 20)
    saliency = rng.random((3, 10, 10)) ** 3
    votes = assert_same_votes(saliency, labels, offsets)
    assert 0.0 < votes.max() <= 1.0 and votes.min() >= 0.0
    # Without a border (every pixel counts) and with a wide one.
    assert_same_votes(saliency, labels, offsets, UNLCConfig(border_fraction=0.0))
    assert_same_votes(saliency, labels, offsets, UNLCConfig(border_fraction=0.3))


def test_superpixel_saliency_real_matches_cpu():
    shot = tiny_real_shot()
    votes = assert_same_votes(shot["saliency"], shot["labels"], shot["offsets"])
    assert votes.max() > 0


def test_zero_saliency_gives_zero_votes_and_peak():
    labels, offsets = random_labels(np.random.default_rng(8), 2, 8, 9)
    votes, peak = gpu.superpixel_saliency(np.zeros((2, 5, 5)), labels, offsets)
    assert peak == 0.0 and np.all(votes.copy_to_host() == 0.0)


def test_superpixel_layout_counts_and_boxes():
    labels, offsets = random_labels(np.random.default_rng(9), 2, 8, 10)
    layout = gpu.superpixel_layout(labels, offsets)
    boxes = layout.boxes.copy_to_host()
    counts = layout.counts.copy_to_host()
    for f in range(2):
        for label in range(offsets[f + 1] - offsets[f]):
            ys, xs = np.nonzero(labels[f] == label)
            s = offsets[f] + label
            assert counts[s] == ys.size
            assert tuple(boxes[s]) == (ys.min(), ys.max(), xs.min(), xs.max())
    np.testing.assert_array_equal(layout.frame.copy_to_host(),
                                  np.repeat([0, 1], np.diff(offsets)))


@pytest.mark.parametrize(("change", "message"), [
    (lambda labels, offsets: (labels + 1, offsets), "must lie in 0.."),
    (lambda labels, offsets: (labels, offsets + np.array([0, 0, 1])), "has no pixels"),
    (lambda labels, offsets: (labels, offsets[:2]), "shape \\(3,\\)"),
    (lambda labels, offsets: (labels.astype(np.int64), offsets), "int32"),
])
def test_bad_labels(change, message):
    labels, offsets = random_labels(np.random.default_rng(10), 2, 6, 7)
    labels, offsets = change(labels, offsets)
    with pytest.raises(ValueError, match=message):
        gpu.superpixel_saliency(np.zeros((2, 4, 4)), labels, offsets)


def test_kernels_compile_for_a_gpu_without_fused_sums():
    """Every kernel types and compiles for sm_90; none fuses a product into a sum (which
    would round differently from the CPU) except ``_polar``, whose fused multiply-adds
    are libdevice's ``atan2`` (its magnitude goes through ``mul_rn``)."""
    f8, i8, i4, b1 = "float64", "int64", "int32", "int8"
    fused = compile_for_gpu("fastunlc._kernels.cuda.saliency", {
        "_polar": [["float32", [2, 3, 3, 2]], [f8, [5]], [f8, [2, 9]], [f8, [2, 9]],
                   [i4, [2, 9]]],
        "_classify": [[f8, [2, 9]], [i8, [2, 9]], [i4, [2, 9]], [f8, [5]], "float", "float",
                      [f8, [2, 4]], [b1, [2]], [f8, [2]]],
        "_deviation": [[f8, [2, 9]], [f8, [2, 9]], [b1, [2]], [f8, [2]], [f8, [2, 3, 3]]],
        "_box_lines": [[f8, [2, 3, 3]], [f8, [2, 3, 3]], [b1, [2]], "int", "bool"],
        "_frame_means": [[f8, [2, 3, 3]], [b1, [2]], [i8, [3]], [i8, [2]], [f8, [2, 3, 3]]],
        "_frame_peaks": [[f8, [2, 3, 3]], [f8, [2]]],
        "_pixel_stats": [[i4, [2, 3, 3]], [i8, [3]], [i4, [4, 4]], [i8, [4]], [i4, [2]]],
        "_superpixel_means": [[f8, [2, 3, 3]], [i4, [2, 3, 3]], [i8, [3]], [i4, [4]],
                              [i4, [4, 4]], [i8, [4]], "float", "float", "int", [f8, [4]],
                              [f8, [2]]],
        "_scale": [[f8, [4]], "float"],
    })
    assert fused.pop("_polar") > 0 and not any(fused.values()), fused


def test_bad_flows():
    pairs = np.array([[0, 1]], np.int32)
    with pytest.raises(ValueError, match="float32"):
        gpu.motion_saliency(np.zeros((1, 4, 4, 2)), pairs, 2)
    with pytest.raises(ValueError, match="pairs"):
        gpu.motion_saliency(np.zeros((2, 4, 4, 2), np.float32), pairs, 2)
    with pytest.raises(ValueError, match="first frames"):
        gpu.motion_saliency(np.zeros((1, 4, 4, 2), np.float32), pairs + 2, 2)
