"""Record the ORIGINAL uNLC's stage outputs on two short clips for tests/test_reference_recorded.py.

Needs the original built as the README's "Benchmarks" section says (videoseg + pyflow). Runs
benchmarks/reference_driver.py --record on each clip's frames, then keeps a compact subset
(see ``trim``) so that both recordings together stay about 2 MB:

    python tests/data/record_reference.py --reference /tmp/ref

Clips: vtest.avi frames 0-9 (opencv-doc), shrunk to 128x96 with cv2.INTER_AREA, and
``fastunlc.synthetic.make_clip(10, (96, 128), camera="pan", seed=3)``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: tests.helpers lives at the repository root

from fastunlc.synthetic import make_clip  # noqa: E402
from tests.helpers import VTEST, read_video_frames  # noqa: E402

DRIVER = ROOT / "benchmarks" / "reference_driver.py"
N_FRAMES = 10
SIZE = (96, 128)  # (height, width)


def clip_frames(name: str) -> np.ndarray:
    """The (N_FRAMES, 96, 128, 3) uint8 RGB frames of clip ``name`` ("vtest" or "synthetic")."""
    if name == "synthetic":
        return make_clip(N_FRAMES, SIZE, camera="pan", seed=3).frames
    frames = read_video_frames(VTEST, count=N_FRAMES, size=SIZE)
    if len(frames) < N_FRAMES:
        raise RuntimeError(f"{VTEST}: fewer than {N_FRAMES} frames")
    return frames


def original_pairs(n: int, radius: int = 3) -> np.ndarray:
    """(P, 2) frame pairs in the order the original's compute_saliency calls pyflow."""
    return np.array([(i, i + j) for i in range(n) for j in range(-radius, radius + 1)
                     if j != 0 and 0 <= i + j < n])


def trim(full: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Keep every stage, but flows and descriptors only for a few frames, in float32."""
    pairs = original_pairs(n)
    keep_pairs = np.flatnonzero(np.isin(pairs[:, 0], (0, n // 2)))
    ends = full["descriptors_frame_end"].astype(np.int64)  # last row index of each frame
    starts = np.concatenate([[0], ends[:-1] + 1])
    keep_frames = np.array([0, n // 2, n - 1])
    rows = np.concatenate([np.arange(starts[f], ends[f] + 1) for f in keep_frames])
    return {
        "frames": full["frames"],
        "flow_pairs": pairs[keep_pairs],
        "flow_u": full["flow_u"][keep_pairs].astype(np.float32),
        "flow_v": full["flow_v"][keep_pairs].astype(np.float32),
        "saliency": full["saliency"].astype(np.float32),
        "superpixels": full["superpixels"].astype(np.int16),
        "descriptor_frames": keep_frames,
        "descriptors": full["descriptors"][rows].astype(np.float32),
        "votes_initial": full["votes_initial"][0],
        "masks": full["masks"].astype(np.float32),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="videoseg checkout")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for name in ("vtest", "synthetic"):
        frames = clip_frames(name)
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "frames.npy", frames)
            record = Path(tmp) / "full.npz"
            subprocess.run([sys.executable, str(DRIVER), "--reference", str(args.reference),
                            "--frames", str(Path(tmp) / "frames.npy"), "--out", tmp,
                            "--record", str(record)], check=True, stdout=subprocess.DEVNULL)
            full = dict(np.load(record))
        if len(full["frame_indices"]) != len(frames):
            raise RuntimeError(f"{name}: the original split or skipped frames")
        np.savez_compressed(args.out / f"reference_{name}.npz", **trim(full, len(frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
