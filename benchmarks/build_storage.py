"""``fastunlc build`` on local disk against object storage: the same videos built from and
to a local folder, and from and to an S3 API (moto's server on this machine), with the
local engine and the Ray engine; throughput and the storage traffic each run reports.

Each configuration runs the real CLI in a fresh process, timed from start to exit. The S3
server runs in this process, on the same cores as the build (so the S3 rows include its
CPU time, which a real object store does not take from the build), and keeps objects in
memory. The S3 builds must write the same dataset (they read the same URLs) and process
the same frames as the local one (whose samples differ: a video's key hashes its path or
URL, and the frames drawn depend on the key).

    python benchmarks/build_storage.py                      # real clips + 4 synthetic ones
    python benchmarks/build_storage.py --max-frames 60 --flow dis

Default videos as in ``build_throughput.py``. Prints a Markdown table. Not part of the
test run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.build_throughput import default_videos, digest, parse_arguments  # noqa: E402


def main() -> None:
    args = parse_arguments(__doc__)

    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://{host}:{port}")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("bench")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="fastunlc-storage-bench-") as tmp:
        tmp = Path(tmp)
        videos = args.video or default_videos(tmp)
        megabytes = sum(v.stat().st_size for v in videos) / 1e6
        urls = []
        for video in videos:
            fs.put_file(str(video), f"bench/videos/{video.name}")
            urls.append(f"s3://bench/videos/{video.name}")
        common = ["--flow", args.flow, "--max-frames", str(args.max_frames), "--quiet"]
        configs = [
            (f"local disk -> local disk, {cores} workers", list(map(str, videos)),
             str(tmp / "local"), ["--workers", str(cores)]),
            (f"S3 -> S3, local engine, {cores} workers", urls, "s3://bench/d-local",
             ["--workers", str(cores)]),
            (f"S3 -> S3, Ray, a local instance ({cores} CPUs)", urls, "s3://bench/d-ray",
             ["--engine", "ray"]),
        ]
        rows, digests = [], []
        for name, inputs, out, extra in configs:
            load = os.getloadavg()[0]
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fastunlc", "build", *inputs, "--out", out,
                            *common, *extra], check=True)
            wall = time.perf_counter() - began
            if out.startswith("s3://"):
                fs.invalidate_cache()
                local = tmp / out.rsplit("/", 1)[1]
                fs.get(out.removeprefix("s3://") + "/", str(local) + "/", recursive=True)
                digests.append(digest(local))
            else:
                local = Path(out)
            stats = json.loads((local / "stats.json").read_text())
            rows.append((name, wall, stats, load))
            print(f"done: {name} in {wall:.1f} s", file=sys.stderr)
    server.stop()

    print(f"machine: {platform.machine()}, {cores} cores; date: {time.strftime('%Y-%m-%d')}; "
          f"{len(videos)} videos ({megabytes:.1f} MB), "
          f"--flow {args.flow}, --max-frames {args.max_frames}\n")
    print("| configuration | process wall s | videos/hour | frames/s | samples | shards | "
          "MB read | MB written | requests | load before |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, wall, stats, load in rows:
        io = stats["this_run"]["storage"]
        print(f"| {name} | {wall:.1f} | {len(videos) * 3600 / wall:.0f} | "
              f"{stats['frames_processed'] / wall:.2f} | {stats['samples']} | "
              f"{stats['shards']} | {io['bytes_read'] / 1e6:.1f} | "
              f"{io['bytes_written'] / 1e6:.1f} | {io['requests']} | {load:.2f} |")
    same = all(d == digests[0] for d in digests)
    work = {json.dumps([stats["frames_processed"], stats["outcomes"]]) for _, _, stats, _ in rows}
    print(f"\nS3 builds wrote the same dataset: {same}; every build processed the same "
          f"frames with the same outcomes: {len(work) == 1}")


if __name__ == "__main__":
    main()
