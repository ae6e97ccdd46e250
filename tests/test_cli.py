"""The command line on good and bad input: outputs, reports, one-line errors."""

from __future__ import annotations

import argparse
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


def make_config(*argv):
    """The config ``fastunlc segment X --out Y *argv`` would run with, in-process."""
    from fastunlc.cli import _build_parser, _make_config

    args = _build_parser().parse_args(["segment", "x.mp4", "--out", "y", *map(str, argv)])
    return _make_config(args, flow=args.flow)


def test_config_file_shortcuts_and_set_apply_in_that_order(tmp_path):
    from fastunlc.config import REFERENCE

    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"flow": "dis", "n_segments": 300, "kts_vmax": 1}))
    assert make_config("--config", bare) == REFERENCE.replace(flow="dis", n_segments=300,
                                                              kts_vmax=1.0)
    assert make_config("--config", bare, "--flow", "c2f").flow == "c2f"
    assert make_config("--config", bare, "--flow", "c2f", "--set", "flow=dis").flow == "dis"
    assert make_config("--set", "n_segments=500", "--set", "n_segments=600").n_segments == 600
    build = tmp_path / "build.json"
    build.write_text(json.dumps({"format": 1, "options": {
        "seed": 3, "config": REFERENCE.replace(max_foreground=0.7).to_dict()}}))
    assert make_config("--config", build) == REFERENCE.replace(max_foreground=0.7)


def test_preset_comes_first_then_config_shortcuts_and_set(tmp_path):
    from fastunlc.config import PRESETS, REFERENCE, preset

    fast = make_config("--preset", "fast")
    assert fast == preset("fast") == REFERENCE.replace(**PRESETS["fast"])
    assert fast != REFERENCE and make_config("--preset", "reference") == REFERENCE
    changed = make_config("--preset", "fast", "--set", "c2f_sor_iterations=12")
    assert (changed.c2f_sor_iterations, changed.c2f_precision) == (12, "float32")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"c2f_outer_iterations": 5}))
    from_file = make_config("--preset", "fast", "--config", bare)
    assert (from_file.c2f_outer_iterations, from_file.c2f_precision) == (5, "float32")
    with pytest.raises(ValueError, match="unknown preset 'quick'; choose one of reference, fast"):
        preset("quick")


def test_unknown_preset_is_one_line_and_exit_2(tmp_path):
    proc = run_cli("segment", tmp_path / "in.mp4", "--out", tmp_path / "out", "--preset", "quick")
    assert proc.returncode == 2
    assert "--preset: invalid choice: 'quick'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_numba_driver_logs_stay_out_of_the_one_line_errors(tmp_path):
    # On a machine with a driver but no visible GPU, numba-cuda logs its failed cuInit at
    # ERROR before it raises; the CLI's own one-line error must be the only line (seen on
    # an H200 machine with CUDA_VISIBLE_DEVICES="", where this test's twin in
    # test_backend.py failed before the fix).
    code = ("import logging, sys\nfrom fastunlc.cli import main\n"
            f"status = main(['segment', {str(tmp_path / 'in.mp4')!r}, '--out', "
            f"{str(tmp_path / 'out')!r}])\n"
            "logging.getLogger('numba.cuda.cudadrv.driver').error('Call to cuInit failed')\n"
            "sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "cuInit" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'in.mp4'}: no such file or folder"]


def test_replaying_a_report_reproduces_its_config(inputs, tmp_path):
    first = run_cli("segment", inputs / "frames_clip", "--out", tmp_path / "a", "--flow", "dis",
                    "--set", "n_segments=150", "--set", "slic_compactness=20",
                    "--set", "voting_rounds=10", "--max-frames", 12, "--no-preview", "--quiet")
    assert first.returncode == 0, first.stderr
    report = tmp_path / "a" / "frames_clip" / "report.json"
    recorded = json.loads(report.read_text())["config"]
    assert (recorded["n_segments"], recorded["slic_compactness"]) == (150, 20.0)
    again = run_cli("segment", inputs / "frames_clip", "--out", tmp_path / "b", "--config",
                    report, "--max-frames", 12, "--no-preview", "--quiet")
    assert again.returncode == 0, again.stderr
    replayed = json.loads((tmp_path / "b" / "frames_clip" / "report.json").read_text())
    assert replayed["config"] == recorded
    for a, b in zip(sorted((tmp_path / "a" / "frames_clip" / "masks").iterdir()),
                    sorted((tmp_path / "b" / "frames_clip" / "masks").iterdir()), strict=True):
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("command", ["segment", "build"])
@pytest.mark.parametrize("options, message", [
    (["--set", "voting_round=5"], "error: --set voting_round=5: unknown config field "
                                  "'voting_round'; did you mean voting_rounds"),
    (["--set", "voting_rounds=0"], "error: voting_rounds must be an integer >= 1, got 0"),
    (["--set", "voting_rounds=ten"], "error: --set voting_rounds=ten: voting_rounds must be "
                                     "an integer, got 'ten'"),
    (["--set", "n_segments"], "error: --set 'n_segments': expected NAME=VALUE"),
    (["--set", "device=tpu"], "error: device must be one of 'cpu', 'cuda', got 'tpu'"),
    (["--config", "{missing}"], "error: --config {missing}: "),
    (["--config", "{notjson}"], "error: --config {notjson}: not JSON"),
    (["--config", "{badfield}"], "error: --config {badfield}: hog_cell must be an integer >= 1"),
])
def test_bad_config_or_set_is_one_line_and_exit_2(tmp_path, command, options, message):
    files = {"missing": tmp_path / "missing.json", "notjson": tmp_path / "notjson.json",
             "badfield": tmp_path / "badfield.json"}
    files["notjson"].write_text("{not json")
    files["badfield"].write_text(json.dumps({"config": {"hog_cell": 0}}))
    options = [o.format(**files) for o in options]
    proc = run_cli(command, tmp_path / "in.mp4", "--out", tmp_path / "out", *options)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message.format(**files)), proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["segment", "build"])
def test_help_says_how_to_set_parameters(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    for words in ("--config FILE", "--set NAME=VALUE", "report.json", "build.json",
                  "--set n_segments=800"):
        assert words in proc.stdout


def test_shard_size_takes_units_and_refuses_nonsense():
    from fastunlc.cli import _byte_size

    assert _byte_size("512MB") == 512 * 10**6 and _byte_size("1.5GiB") == 3 * 2**29
    assert _byte_size("4096") == 4096 and _byte_size("64 kib") == 65536
    for bad in ("12XB", "MB", "-1GB", "0"):
        with pytest.raises(argparse.ArgumentTypeError, match="size"):
            _byte_size(bad)
    result = subprocess.run([sys.executable, "-m", "fastunlc", "build", "x.mp4", "--out", "d",
                             "--shard-size", "lots"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "expected a size such as 512MB" in result.stderr
