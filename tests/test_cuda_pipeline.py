"""A whole shot on the GPU (fastunlc.resident) against the CPU pipeline, through the CLI.

Without a GPU these run on Numba's CUDA simulator (conftest.py), which executes every
simulated thread in Python: a 3-frame 32 x 40 clip with few iterations and superpixels
takes 40-50 s, so the parameters below are cut down from the reference's (the
stage tests, tests/test_cuda_*.py, check each kernel at its own edge cases).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from fastunlc import resident
from fastunlc.config import REFERENCE
from fastunlc.dataset import PseudoGTDataset
from fastunlc.pipeline import ShotSegmentation, segment_shot
from fastunlc.synthetic import make_clip, write_frames, write_video

SMALL = {"min_shot": 2, "flow_radius": 1, "c2f_min_width": 8,
         "c2f_outer_iterations": 2, "c2f_sor_iterations": 4, "n_segments": 8,
         "slic_sigma": 1.0, "voting_iterations": 10, "voting_rounds": 2}


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    """3 frames of a static-camera clip with one moving object, shrunk to 32 x 40."""
    clip = make_clip(3, (96, 120), camera="static", n_objects=1, seed=2)
    frames = np.stack([cv2.resize(f, (40, 32), interpolation=cv2.INTER_AREA)
                       for f in clip.frames])
    folder = tmp_path_factory.mktemp("clip") / "frames"
    write_frames(folder, frames)
    return folder


def segment(folder, out, device, flow, flow_size):
    settings = [a for name, value in {**SMALL, "flow_size": flow_size}.items()
                for a in ("--set", f"{name}={value}")]
    proc = subprocess.run([sys.executable, "-m", "fastunlc", "segment", str(folder), "--out",
                           str(out), "--device", device, "--flow", flow, "--quiet",
                           "--no-preview", *settings], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = out / folder.name
    masks = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                      for p in sorted((result / "masks").iterdir())])
    return masks, json.loads((result / "report.json").read_text())


# The GPU c2f costs the simulator most (about 40 s at 16 x 16); DIS, on the CPU, finds
# nothing moving at 16 x 16 on this clip and needs 24 x 24.
@pytest.mark.parametrize("flow, flow_size", [("c2f", 16), ("dis", 24)])
def test_segment_on_the_gpu_gives_the_cpu_masks(small_clip, tmp_path, flow, flow_size):
    """Every stage on the GPU (c2f) or all but the flow (dis, OpenCV's, on the CPU).

    Tolerance: with dis the inputs of every GPU stage equal the CPU's and the masks are
    equal (the stages are exact in the simulator). With c2f the red-black relaxation
    moves the flow by hundredths of a pixel at these few sweeps, which moves soft mask
    values by at most 2/255 here (measured) and no pixel across the 0.7 threshold.
    """
    cpu, cpu_report = segment(small_clip, tmp_path / "cpu", "cpu", flow, flow_size)
    gpu, gpu_report = segment(small_clip, tmp_path / "gpu", "cuda", flow, flow_size)
    assert gpu_report["config"]["device"] == "cuda"
    assert gpu_report["processed_frames"] == cpu_report["processed_frames"]
    foreground = cpu > round(255 * 0.7)
    assert 0.02 < foreground.mean() < 0.5  # an object was found: the comparison means something
    difference = np.abs(cpu.astype(int) - gpu.astype(int)).max()
    assert difference <= (0 if flow == "dis" else 3), difference
    np.testing.assert_array_equal(gpu > round(255 * 0.7), foreground)
    cpu_shot, gpu_shot = cpu_report["shots"][0], gpu_report["shots"][0]
    assert (gpu_shot["saliency"], gpu_shot["superpixels"]) == (cpu_shot["saliency"],
                                                             cpu_shot["superpixels"])


def test_build_on_the_gpu_gives_the_cpu_dataset(small_clip, tmp_path):
    """``fastunlc build --device cuda``: a worker process pinned to the (simulated) GPU
    builds the same samples as the CPU, masks within the whole-shot tolerance above."""
    frames = np.stack([cv2.imread(str(p))[:, :, ::-1] for p in sorted(small_clip.iterdir())])
    video = write_video(tmp_path / "clip.mp4", frames)
    # The object of a 32 x 40 frame reaches into the 5 % border band: keep such frames.
    settings = [a for name, value in {**SMALL, "flow_size": 24,
                                      "max_border_foreground": 1.0}.items()
                for a in ("--set", f"{name}={value}")]
    datasets = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        proc = subprocess.run([sys.executable, "-m", "fastunlc", "build", str(video), "--out",
                               str(out), "--device", device, "--flow", "dis", "--quiet",
                               "--frames-per-shot", "3", *settings],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        datasets[device] = PseudoGTDataset(out)
    cpu, gpu = datasets["cpu"], datasets["cuda"]
    assert len(cpu) == len(gpu) > 0
    for i in range(len(cpu)):
        assert gpu.row(i)["frame"] == cpu.row(i)["frame"]
        np.testing.assert_array_equal(gpu[i].mask, cpu[i].mask)


def test_each_stage_function_takes_device_cuda_to_its_kernels():
    """The public functions of every stage, device="cuda" against device="cpu" on one
    tiny shot, each given the CPU's output of the stage before; tolerances are those
    the kernel tests (tests/test_cuda_*.py) state: exact where the stage is exact on the
    simulator, the graph's weights to 2e-4 (the CPU's distances are float32), the flow
    to a few hundredths of a pixel (red-black against Gauss-Seidel, 4 sweeps)."""
    from fastunlc import colour, descriptors, flow, graph, saliency, shots, superpixels, voting

    frames = make_clip(2, (64, 64), camera="pan", n_objects=1, seed=3).frames[:, ::3, ::3]
    cpu = REFERENCE.replace(**{**SMALL, "flow_size": 10, "n_segments": 6})
    gpu = cpu.replace(device="cuda")
    small = flow.resize_for_flow(frames, 10)
    np.testing.assert_array_equal(flow.resize_for_flow(frames, 10, device="cuda"), small)
    pairs = flow.flow_pairs(2, 1)
    flows = flow.optical_flow(small, pairs, cpu)
    assert np.abs(flow.optical_flow(small, pairs, gpu) - flows).max() < 0.05
    motion = saliency.motion_saliency(flows, pairs, 2, cpu)
    on_gpu = saliency.motion_saliency(flows, pairs, 2, gpu)
    np.testing.assert_array_equal(on_gpu.saliency, motion.saliency)
    np.testing.assert_array_equal(on_gpu.pair_kinds, motion.pair_kinds)
    labels, counts = superpixels.slic_superpixels_batch(frames, cpu)
    for got, want in zip(superpixels.slic_superpixels_batch(frames, gpu), (labels, counts),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    features, offsets = descriptors.superpixel_descriptors_batch(frames, labels, counts, cpu)
    got, got_offsets = descriptors.superpixel_descriptors_batch(frames, labels, counts, gpu)
    np.testing.assert_array_equal(got_offsets, offsets)
    np.testing.assert_allclose(got, features, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(graph.knn_graph(features, offsets, gpu)[0],
                                  graph.knn_graph(features, offsets, cpu)[0])
    transition = graph.transition_matrix(features, offsets, cpu)
    on_gpu = graph.transition_matrix(features, offsets, gpu)
    np.testing.assert_array_equal(on_gpu.indices, transition.indices)
    np.testing.assert_allclose(on_gpu.data, transition.data, rtol=0, atol=2e-4)
    votes, peak = saliency.superpixel_saliency(motion.saliency, labels, offsets, cpu)
    got, got_peak = saliency.superpixel_saliency(motion.saliency, labels, offsets, gpu)
    np.testing.assert_array_equal(got, votes)
    assert got_peak == peak
    np.testing.assert_array_equal(
        voting.consensus_voting(votes, transition, labels, offsets, gpu),
        voting.consensus_voting(votes, transition, labels, offsets, cpu))
    features = shots.shot_features(frames, 8)
    np.testing.assert_array_equal(shots.shot_features(frames, 8, device="cuda"), features)
    np.testing.assert_array_equal(shots.kts_change_points(features, 1, 0.6, device="cuda"),
                                  shots.kts_change_points(features, 1, 0.6))
    np.testing.assert_allclose(colour.rgb2lab(frames, device="cuda"), colour.rgb2lab(frames),
                               rtol=0, atol=1e-12)


def test_the_appearance_fallback_on_the_gpu_gives_the_cpu_masks():
    """Blurred noise has no dominant camera motion (a third of its frames), so the shot
    falls back to appearance saliency, computed on the CPU and uploaded; with the CPU's
    DIS flow every GPU stage gets the CPU's inputs, so the masks are equal."""
    rng = np.random.default_rng(0)
    frames = np.stack([cv2.GaussianBlur(f, (5, 5), 2)
                       for f in rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)])
    config = REFERENCE.replace(**SMALL, flow="dis", flow_size=24, appearance_n_segments=20)
    cpu = segment_shot(frames, config)
    gpu = segment_shot(frames, config.replace(device="cuda"))
    assert cpu.saliency == gpu.saliency == "appearance" and gpu.reason == cpu.reason
    np.testing.assert_array_equal(gpu.masks, cpu.masks)
    assert gpu.n_superpixels == cpu.n_superpixels


def test_shots_in_flight_come_back_in_order_on_their_own_streams(monkeypatch):
    seen = []

    def fake_segment_shot(frames, config, *, stream):
        seen.append((int(frames[0, 0, 0, 0]), stream, threading.current_thread().name))
        time.sleep(0.05 * (3 - int(frames[0, 0, 0, 0]) % 3))  # later shots finish first
        return ShotSegmentation(frames[..., 0].astype(np.float32), "motion", "", 1.0, 0)

    monkeypatch.setattr(resident, "segment_shot", fake_segment_shot)
    shots = [np.full((2, 4, 4, 3), i, np.uint8) for i in range(7)]
    results = list(resident.segment_shots(iter(shots), REFERENCE.replace(device="cuda"),
                                          in_flight=3))
    assert [int(r.masks[0, 0, 0]) for r in results] == list(range(7))
    streams = {stream for _, stream, _ in seen}
    assert len(streams) == 3 and len({thread for _, _, thread in seen}) == 3
    with pytest.raises(ValueError, match="in_flight must be >= 1, got 0"):
        next(resident.segment_shots(shots, REFERENCE, in_flight=0))
