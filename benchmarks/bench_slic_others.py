"""Milliseconds per frame of other SLIC implementations on the frames bench_slic.py uses:
OpenCV's ``cv2.ximgproc`` and fast-slic.

``cv2.ximgproc`` ships only in the opencv-contrib wheels, which must not be installed
beside fastunlc's opencv-python-headless (two wheels of one ``cv2`` break each other).
This script therefore needs nothing of fastunlc: run it with another interpreter,

    python -m venv /tmp/contrib && /tmp/contrib/bin/pip install numpy opencv-contrib-python-headless
    /tmp/contrib/bin/pip install cython setuptools && \
        /tmp/contrib/bin/pip install --no-build-isolation fast-slic    # optional
    /tmp/contrib/bin/python benchmarks/bench_slic_others.py

and compare with ``slic_superpixels, one call per frame`` (one thread) from
``python benchmarks/bench_slic.py``. Each frame is resized as fastunlc resizes it (longer
side 650 px, ``INTER_AREA``), then timed through the same steps as fastunlc's SLIC: CIELAB
conversion, Gaussian smoothing (sigma 5), 10 iterations with a region size giving 400
superpixels and ruler (compactness) 10, then connectivity enforcement. OpenCV runs on one
thread (``cv2.setNumThreads(1)``). fast-slic (when installed) runs on one thread on the
RGB frame with 400 components, compactness 10 and 10 iterations, converting to CIELAB
itself and without pre-smoothing (it has none). Each time is the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import cv2
import numpy as np

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
MAX_SIDE = 650
N_SEGMENTS = 400
SIGMA = 5.0
ITERATIONS = 10
RULER = 10.0


def read_frames(video: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames, BGR uint8, longer side shrunk to MAX_SIDE."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        scale = min(MAX_SIDE / h, MAX_SIDE / w, 1.0)
        size = (max(1, int(w * scale)), max(1, int(h * scale)))  # fastunlc.video.working_size
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise SystemExit(f"{video}: no frames could be read")
    return frames


def segment(frame: np.ndarray, algorithm: int, region_size: int) -> int:
    """Superpixels of one BGR frame; returns their number."""
    lab = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    lab = cv2.GaussianBlur(lab, (0, 0), SIGMA)
    slic = cv2.ximgproc.createSuperpixelSLIC(lab, algorithm=algorithm,
                                             region_size=region_size, ruler=RULER)
    slic.iterate(ITERATIONS)
    slic.enforceLabelConnectivity()
    return slic.getNumberOfSuperpixels()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VTEST)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not hasattr(cv2, "ximgproc"):
        raise SystemExit("cv2.ximgproc is missing: run this with an interpreter that has "
                         "opencv-contrib-python-headless (see the docstring)")
    cv2.setNumThreads(1)
    frames = read_frames(args.video, args.frames)
    h, w = frames[0].shape[:2]
    region_size = round(math.sqrt(h * w / N_SEGMENTS))
    print(f"{args.video.name}: {len(frames)} frames of {w}x{h}; OpenCV {cv2.__version__}, "
          f"1 thread, {platform.processor() or platform.machine()}; region size "
          f"{region_size} px\n")
    print("| algorithm | ms / frame | superpixels (mean) |")
    print("| --- | ---: | ---: |")
    for name in ("SLIC", "SLICO", "MSLIC"):
        algorithm = getattr(cv2.ximgproc, name)
        segment(frames[0], algorithm, region_size)  # warm-up
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            counts = [segment(frame, algorithm, region_size) for frame in frames]
            best = min(best, time.perf_counter() - began)
        print(f"| cv2.ximgproc {name} | {best / len(frames) * 1e3:.1f} | {np.mean(counts):.0f} |")
    try:
        from fast_slic import Slic
        from fast_slic.avx2 import SlicAvx2
    except ImportError:
        print("| fast-slic | not measured (not installed) | |")
        return
    rgb = [np.ascontiguousarray(frame[:, :, ::-1]) for frame in frames]
    for name, cls in (("fast-slic", Slic), ("fast-slic AVX2", SlicAvx2)):
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            counts = [len(np.unique(cls(num_components=N_SEGMENTS, compactness=RULER,
                                        num_threads=1).iterate(f, max_iter=ITERATIONS)))
                      for f in rgb]
            best = min(best, time.perf_counter() - began)
        print(f"| {name} | {best / len(frames) * 1e3:.1f} | {np.mean(counts):.0f} |")


if __name__ == "__main__":
    main()
