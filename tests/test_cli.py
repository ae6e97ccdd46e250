"""The command line on good and bad input: outputs, reports, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fastunlc.synthetic import make_clip, write_frames, write_video


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastunlc", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def test_help_is_there_for_newcomers():
    top = run_cli("--help")
    assert top.returncode == 0 and "segment" in top.stdout
    seg = run_cli("segment", "--help")
    assert seg.returncode == 0
    for words in ("INPUT", "--out", "--flow", "--max-frames", "--start", "report.json",
                  "masks/00042.png", "examples:"):
        assert words in seg.stdout
    bare = run_cli()
    assert bare.returncode == 2 and "segment" in bare.stdout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    clip = make_clip(14, (96, 128), camera="static", seed=3)
    write_frames(root / "frames_clip", clip.frames, ext="png")
    write_video(root / "video_clip.mp4", clip.frames)
    still = np.repeat(clip.frames[:1], 12, axis=0)
    write_frames(root / "static", still)
    write_frames(root / "black", np.zeros((12, 64, 64, 3), np.uint8))
    write_frames(root / "one", clip.frames[:1])
    write_frames(root / "five", clip.frames[:5])
    write_frames(root / "tiny", np.zeros((12, 20, 24, 3), np.uint8))
    mixed = root / "mixed"
    write_frames(mixed, clip.frames[:11])
    cv2.imwrite(str(mixed / "00011.png"), np.zeros((50, 60, 3), np.uint8))
    (root / "empty").mkdir()
    (root / "text.mp4").write_text("not a video\n" * 100)
    return root


def test_segment_writes_masks_report_and_preview(inputs, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("segment", inputs / "frames_clip", inputs / "video_clip.mp4", "--out", out,
                   "--flow", "dis", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet
    for name in ("frames_clip", "video_clip"):
        folder = out / name
        report = json.loads((folder / "report.json").read_text())
        masks = sorted((folder / "masks").iterdir())
        assert [int(p.stem) for p in masks] == report["processed_frames"] == list(range(14))
        m = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
        assert m.dtype == np.uint8 and m.shape == (96, 128)
        assert report["shots"][0]["saliency"] in ("motion", "appearance")
        assert report["shots"][0]["reason"]
        for stage in ("decode", "shots", "flow", "saliency", "superpixels", "descriptors",
                      "graph", "voting", "write"):
            assert report["seconds"][stage] >= 0
        assert report["peak_memory_mb"] > 0
        assert report["source"]["width"] == 128 and report["flow"] == "dis"
        preview = cv2.imread(str(folder / "preview.png"))
        assert preview is not None and preview.shape[1] >= 320
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_start_and_max_frames_keep_source_numbering(inputs, tmp_path):
    proc = run_cli("segment", inputs / "frames_clip", "--out", tmp_path, "--flow", "dis",
                   "--start", 2, "--max-frames", 11, "--no-preview", "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "frames_clip" / "report.json").read_text())
    assert report["processed_frames"] == list(range(2, 13))
    assert report["shots"][0]["start"] == 2 and report["shots"][0]["end"] == 13
    assert not (tmp_path / "frames_clip" / "preview.png").exists()


@pytest.mark.parametrize("name", ["static", "black"])
def test_motionless_videos_give_empty_masks_and_say_why(inputs, tmp_path, name):
    proc = run_cli("segment", inputs / name, "--out", tmp_path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / name / "report.json").read_text())
    assert report["shots"][0]["saliency"] == "none"
    assert "no motion" in report["shots"][0]["reason"]
    masks = list((tmp_path / name / "masks").iterdir())
    assert len(masks) == 12
    assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).max() == 0 for p in masks)


def test_bad_inputs_get_one_line_each_and_do_not_stop_the_good_one(inputs, tmp_path):
    bad = {
        "missing.mp4": "no such file or folder",
        "text.mp4": "not a decodable video",
        "empty": "folder holds no image files",
        "one": "only one frame",
        "five": "5 frames, fewer than the 10",
        "tiny": "both sides must be at least 32 px",
        "mixed": "differs from the first frame",
    }
    args = [inputs / name for name in bad] + [inputs / "frames_clip"]
    proc = run_cli("segment", *args, "--out", tmp_path, "--flow", "dis", "--quiet")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    for name, reason in bad.items():
        [line] = [ln for ln in lines if f"{inputs / name}" in ln]  # the input or its file
        assert line.startswith("error: ") and reason in line
    assert lines[-1] == f"{len(bad)} of {len(bad) + 1} inputs failed"
    assert (tmp_path / "frames_clip" / "report.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames_clip"]


def test_same_stem_inputs_get_distinct_folders(inputs, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "frames_clip").symlink_to(inputs / "frames_clip")
    proc = run_cli("segment", inputs / "frames_clip", other / "frames_clip",
                   "--out", tmp_path / "out", "--flow", "dis", "--quiet", "--no-preview")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frames_clip",
                                                                     "frames_clip_2"]
