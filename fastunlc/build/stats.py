"""What a build reports: ``failures.jsonl`` and ``stats.json``, from the whole manifest."""

from __future__ import annotations

import json
from typing import Any

from .. import dataset
from ..storage import Storage, Traffic

VERDICT_COLUMNS = {"ok": "kept", "too little foreground": "too_little_foreground",
                   "too much foreground": "too_much_foreground",
                   "foreground on the border": "foreground_on_the_border"}
"""Pruning verdict (:attr:`fastunlc.pruning.Verdict.reason`) -> the videos manifest's
column counting the processed frames that got it."""


def summarise(storage: Storage, missing: list[tuple[str, str]], run_seconds: float,
              run_frames: int, run_videos: int, run_traffic: Traffic) -> dict[str, Any]:
    """Write ``failures.jsonl`` and ``stats.json`` from the whole manifest; return the stats.

    ``missing`` are the inputs that are no videos (``(input, reason)``); ``run_*`` describe
    this run only (seconds of wall-clock time, frames processed, videos processed, and the
    storage traffic of the driver and all workers, these two files' own writes excepted).
    """
    videos = dataset.read_manifest(storage, "videos").to_pylist()
    failures = [{"video": v["video"], "reason": v["reason"]} for v in videos
                if v["status"] == "failed"]
    failures += [{"video": path, "reason": reason} for path, reason in missing]
    storage.write("failures.jsonl", "".join(json.dumps(f) + "\n" for f in failures))
    outcomes = {status: sum(v["status"] == status for v in videos)
                for status in ("ok", "empty", "failed")}
    outcomes["missing"] = len(missing)
    stats = {
        "videos": len(videos) + len(missing),
        "shards": len(dataset.committed_shards(storage)),
        "outcomes": outcomes,
        "samples": sum(v["samples"] for v in videos),
        "frames_processed": sum(v["frames_processed"] for v in videos),
        "pruning": {column: sum(v[column] for v in videos)
                    for column in VERDICT_COLUMNS.values()},
        "this_run": {
            "videos": run_videos, "frames_processed": run_frames,
            "seconds": round(run_seconds, 3),
            "frames_per_second": round(run_frames / run_seconds, 3) if run_seconds else 0.0,
            "videos_per_hour": round(run_videos * 3600 / run_seconds, 1) if run_seconds else 0.0,
            "storage": run_traffic.to_dict(),
        },
    }
    storage.write("stats.json", json.dumps(stats, indent=1) + "\n")
    return stats
