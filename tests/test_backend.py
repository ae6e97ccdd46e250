"""The backend switch: one place resolves a device to its kernels."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastunlc
from fastunlc import backend
from fastunlc.config import REFERENCE, UNLCConfig

PACKAGE = Path(fastunlc.__file__).parent
STAGES = ("colour", "descriptors", "flow", "saliency", "shots", "superpixels", "voting")


def test_cpu_resolves_to_the_compiled_kernels_once():
    from fastunlc._kernels.cpu import colour, descriptors, histograms, saliency, shots, slic, voting

    k = backend.kernels("cpu")
    assert k.device == "cpu"
    assert (k.colour, k.descriptors, k.histograms, k.saliency, k.shots, k.slic, k.voting) == (
        colour, descriptors, histograms, saliency, shots, slic, voting)
    assert backend.kernels("cpu") is k and backend.kernels() is k  # cached


def test_cpu_flow_is_the_compiled_extension():
    _C = pytest.importorskip("fastunlc._C", reason="compiled extension fastunlc._C is not built")
    assert backend.kernels("cpu").flow is _C


@pytest.mark.parametrize("device", ["tpu", None, 0])
def test_unknown_devices_are_refused_in_one_line(device):
    message = rf"^device must be one of 'cpu', 'cuda', got {device!r}$"
    with pytest.raises(ValueError, match=message):
        backend.kernels(device)
    with pytest.raises(ValueError, match=message):
        UNLCConfig(device=device)


def test_cuda_resolves_lazily_to_the_numba_cuda_kernels():
    # The tests run with Numba's CUDA simulator where there is no GPU (conftest.py).
    k = backend.kernels("cuda")
    assert k.device == "cuda" and backend.kernels("cuda") is k
    from fastunlc._kernels.cuda import arrays

    assert k.arrays is arrays
    with pytest.raises(AttributeError, match="the cuda backend has no 'histograms' kernels"):
        k.histograms  # noqa: B018


NO_GPU = {"NUMBA_ENABLE_CUDASIM": "0", "CUDA_VISIBLE_DEVICES": ""}


def _without_gpu(code: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **NO_GPU})


def test_cuda_without_a_gpu_is_one_line_when_the_kernels_are_asked_for():
    # A config may name cuda anywhere (a Ray head node has no GPU); the kernels may not.
    out = _without_gpu(
        "from fastunlc.config import UNLCConfig; from fastunlc.backend import kernels\n"
        "from fastunlc.errors import BackendUnavailable\n"
        "config = UNLCConfig(device='cuda')\n"
        "try:\n    kernels(config.device)\n"
        "except BackendUnavailable as err:\n    print(err)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "device 'cuda': no CUDA GPU is visible to Numba (check nvidia-smi, the driver and "
        "CUDA_VISIBLE_DEVICES, and install fastunlc[gpu]); use device 'cpu'"]


@pytest.mark.parametrize("command", ["segment", "build", "demo"])
def test_cli_device_cuda_without_a_gpu_says_so_in_one_line(tmp_path, command):
    clip = tmp_path / "clip"
    clip.mkdir()  # never read: the device is checked first
    inputs = [] if command == "demo" else [str(clip)]
    out = _without_gpu(f"import sys; from fastunlc.cli import main; sys.exit(main("
                       f"[{command!r}, *{inputs!r}, '--out', {str(tmp_path / 'out')!r}, "
                       "'--device', 'cuda', '--quiet']))")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: device 'cuda': no CUDA GPU is visible to Numba (check nvidia-smi, the driver "
        "and CUDA_VISIBLE_DEVICES, and install fastunlc[gpu]); use device 'cpu'"]


def test_stage_modules_reach_kernels_only_through_the_backend():
    # A stage that imported fastunlc._kernels or fastunlc._C itself could pick its
    # kernels without looking at config.device.
    for stage in STAGES:
        tree = ast.parse((PACKAGE / f"{stage}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module or ''}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not [n for n in names if "_kernels" in n or n.endswith("_C")], (stage, names)


def test_backend_and_config_import_no_numba_or_torch():
    code = ("import sys, fastunlc.backend, fastunlc.config; "
            "print(sorted(m for m in ('numba', 'torch', 'fastunlc._kernels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_stages_on_the_cpu_backend_match_the_default():
    # Naming the device must not change a result: the default config is device="cpu".
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    explicit = REFERENCE.replace(device="cpu", n_segments=30)
    from fastunlc import shots, superpixels

    np.testing.assert_array_equal(shots.shot_features(frames, device="cpu"),
                                  shots.shot_features(frames))
    labels, counts = superpixels.slic_superpixels_batch(frames, explicit)
    default_labels, default_counts = superpixels.slic_superpixels_batch(
        frames, UNLCConfig(n_segments=30))
    np.testing.assert_array_equal(labels, default_labels)
    np.testing.assert_array_equal(counts, default_counts)


def test_cpu_threads_can_be_set_and_are_checked():
    before = backend.cpu_threads()
    try:
        backend.set_cpu_threads(1)
        assert backend.cpu_threads() == 1
    finally:
        backend.set_cpu_threads(before)
    assert backend.cpu_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        backend.set_cpu_threads(0)


def test_cuda_on_a_real_gpu_warns_that_its_masks_differ(monkeypatch, caplog):
    # Measured on an H200: the CUDA SLIC does not give the CPU's labels there, so a real
    # GPU (not the simulator) says so once, when the kernels are first resolved.
    from numba import config

    monkeypatch.setattr(backend, "require_gpu", lambda: None)
    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)
    backend._load.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="fastunlc.backend"):
            assert backend.kernels("cuda").device == "cuda"
            backend.kernels("cuda")
    finally:
        backend._load.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.name == "fastunlc.backend"]
    assert len(warnings) == 1 and "device 'cuda' is experimental" in warnings[0]
