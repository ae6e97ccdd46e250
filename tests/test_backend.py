"""The backend switch: one place resolves a device to its kernels; stages never branch."""

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


def test_cpu_resolves_to_the_numba_kernels_once():
    from fastunlc._kernels.cpu import colour, descriptors, histograms, kts, saliency, slic, voting

    k = backend.kernels("cpu")
    assert k.device == "cpu"
    assert (k.colour, k.descriptors, k.histograms, k.kts, k.saliency, k.slic, k.voting) == (
        colour, descriptors, histograms, kts, saliency, slic, voting)
    assert backend.kernels("cpu") is k and backend.kernels() is k  # cached


def test_cpu_flow_is_the_compiled_extension():
    _C = pytest.importorskip("fastunlc._C", reason="compiled extension fastunlc._C is not built")
    assert backend.kernels("cpu").flow is _C


@pytest.mark.parametrize("device, message", [
    ("cuda", r"^device 'cuda': the CUDA backend is not built yet; use device='cpu'$"),
    ("tpu", r"^device must be one of 'cpu', 'cuda', got 'tpu'$"),
    (None, r"^device must be one of 'cpu', 'cuda', got None$"),
])
def test_unbuilt_and_unknown_devices_are_refused_in_one_line(device, message):
    with pytest.raises(ValueError, match=message):
        backend.kernels(device)
    with pytest.raises(ValueError, match=message.replace("^", "")):
        UNLCConfig(device=device)


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
